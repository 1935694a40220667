"""The training run (``python -m propensity.train``): model selection on distinct rows,
the pipeline of steps from data to the output folder, and its plots."""
