"""Scoring: the whole fitted model (:class:`~propensity.scoring.model.PropensityModel`) and
the batch predictor that streams files through the C reader and writer."""
