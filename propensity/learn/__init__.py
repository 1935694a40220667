"""The learners: estimators with scikit-learn's interface on the C core (random forest,
gradient boosting, logistic regression), the interaction features, binning, distinct
rows, calibration, metrics and folds. Nothing here reads or writes files."""
