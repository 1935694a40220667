"""Shared fixtures: one small trained model folder for the predictor tests.

The folder is produced by the real training pipeline (``propensity.train.main``) once
per session, on small stand-in data.
"""
import os

import numpy as np
import pytest

FEATURES = ["basket_icon_click", "basket_add_list", "basket_add_detail", "sort_by",
            "image_picker", "account_page_click", "promo_banner_click", "detail_wishlist_add",
            "list_size_dropdown", "closed_minibasket_click", "checked_delivery_detail",
            "checked_returns_detail", "sign_in", "saw_checkout", "saw_sizecharts",
            "saw_delivery", "saw_account_upgrade", "saw_homepage", "device_mobile",
            "device_computer", "device_tablet", "returning_user", "loc_uk"]


def _train(out_dir):
    try:
        from propensity import train
    except ImportError:  # the pipeline has not landed yet: a stand-in model folder
        import _standin
        _standin.make_dir(out_dir)
        return
    train.main(["--output-dir", out_dir, "--quiet"])


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("ml_outputs"))
    _train(out)
    return out


def session_rows(n, seed=0, p=0.15):
    rng = np.random.default_rng(seed)
    return (rng.random((n, len(FEATURES))) < p).astype(np.uint8)


def write_sessions_csv(path, X, ids=None, extra=True, newline="\n"):
    with open(path, "w", newline="") as f:
        cols = (["UserID"] if ids is not None else []) + FEATURES + (["ordered"] if extra else [])
        f.write(",".join(cols) + newline)
        for i, row in enumerate(X):
            cells = ([ids[i]] if ids is not None else []) + [str(v) for v in row]
            if extra:
                cells.append("0")
            f.write(",".join(cells) + newline)
    return path
