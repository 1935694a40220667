import hashlib, json, os, pickle
import numpy as np
from propensity._base import BaseEstimator, register_estimator
FEATURES = ["basket_icon_click","basket_add_list","basket_add_detail","sort_by","image_picker","account_page_click","promo_banner_click","detail_wishlist_add","list_size_dropdown","closed_minibasket_click","checked_delivery_detail","checked_returns_detail","sign_in","saw_checkout","saw_sizecharts","saw_delivery","saw_account_upgrade","saw_homepage","device_mobile","device_computer","device_tablet","returning_user","loc_uk"]

@register_estimator
class StandinModel(BaseEstimator):
    def __init__(self, *, seed=0):
        self.seed = seed
    def fit(self):
        rng = np.random.default_rng(self.seed)
        self.w_ = rng.normal(size=len(FEATURES)); self.classes_ = np.array([0, 1])
        self.input_columns_ = list(FEATURES); self.binary_columns_ = list(FEATURES)
        self.encoding_ = {}; self.model_name_ = "random_forest"; self.threshold_ = 0.43
        self.training_profile_ = {"features": {c: {"edges": [-0.5, 0.5, 1.5], "fractions": [0.8, 0.2]} for c in FEATURES},
                                  "score": {"edges": list(np.linspace(0, 1, 11)), "fractions": [0.1]*10}}
        return self
    def predict_proba(self, X):
        if hasattr(X, "columns"): X = X[self.input_columns_].to_numpy()
        z = np.asarray(X, dtype=float) @ self.w_ - 1
        p = 1 / (1 + np.exp(-z)); return np.column_stack([1 - p, p])
    def predict(self, X, threshold=None):
        return (self.predict_proba(X)[:, 1] >= (self.threshold_ if threshold is None else threshold)).astype(int)
    def _to_document(self):
        return {k: getattr(self, k) for k in ("input_columns_", "binary_columns_", "encoding_", "model_name_", "threshold_", "training_profile_")}, {"w": self.w_}
    @classmethod
    def _from_document(cls, params, meta, arrays):
        m = cls(**params); m.__dict__.update(meta); m.w_ = arrays["w"]; m.classes_ = np.array([0, 1]); return m

def make_dir(d):
    os.makedirs(d, exist_ok=True)
    m = StandinModel().fit()
    m.save(os.path.join(d, "random_forest_model.propmodel"))
    with open(os.path.join(d, "random_forest_model.pkl"), "wb") as f: pickle.dump(m, f)
    files = {fn: hashlib.sha256(open(os.path.join(d, fn), "rb").read()).hexdigest() for fn in ("random_forest_model.propmodel", "random_forest_model.pkl")}
    man = {"format": "propensity-manifest", "format_version": 1, "package_version": "0.1.0", "created": "x", "best_model": "random_forest",
           "models": {"random_forest": {"model_file": "random_forest_model.propmodel", "pickle_file": "random_forest_model.pkl", "f1": 0.9, "roc_auc": 0.99, "threshold": 0.43}},
           "files": files, "training_data": {}}
    json.dump(man, open(os.path.join(d, "manifest.json"), "w"))
    return m

def make_csv(path, n, seed=1, ids=True):
    rng = np.random.default_rng(seed)
    X = (rng.random((n, 23)) < 0.15).astype(np.uint8)
    with open(path, "w") as f:
        f.write(("UserID," if ids else "") + ",".join(FEATURES) + ",ordered\n")
        for i, row in enumerate(X):
            f.write((f"{i:06d}-ab," if ids else "") + ",".join(map(str, row)) + ",0\n")
    return X
