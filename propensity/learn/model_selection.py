"""Stratified splits (no scikit-learn at run time): an 80/20 train/validation split and
k folds that keep the class ratio of ``y`` in every part."""
import numpy as np

__all__ = ["stratified_split", "stratified_kfold"]


def _class_indices(y, rng):
    y = np.asarray(y).ravel()
    out = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        out.append(idx[rng.permutation(idx.size)])
    return out


def stratified_split(y, test_size=0.2, seed=42):
    """Return ``(train_idx, test_idx)`` (sorted): ``round(test_size * n_c)`` rows of every
    class c go to the test part, drawn at random with ``seed``."""
    if not 0.0 < float(test_size) < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for idx in _class_indices(y, rng):
        k = int(round(float(test_size) * idx.size))
        if idx.size >= 2:
            k = min(max(k, 1), idx.size - 1)
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def stratified_kfold(y, n_splits=3, seed=42):
    """Return a list of ``(train_idx, val_idx)`` pairs. Every class is dealt over the
    folds as evenly as possible; raises when a class has fewer rows than folds."""
    n_splits = int(n_splits)
    if n_splits < 2:
        raise ValueError(f"cv folds must be at least 2, got {n_splits}")
    y = np.asarray(y).ravel()
    rng = np.random.default_rng(seed)
    fold_of = np.empty(y.shape[0], dtype=np.int64)
    for idx in _class_indices(y, rng):
        if idx.size < n_splits:
            raise ValueError(
                f"class {y[idx[0]]!r} has only {idx.size} row(s), fewer than the {n_splits} "
                f"cross-validation folds: every fold needs positives and negatives")
        fold_of[idx] = np.arange(idx.size) % n_splits
    all_idx = np.arange(y.shape[0])
    return [(all_idx[fold_of != f], all_idx[fold_of == f]) for f in range(n_splits)]
