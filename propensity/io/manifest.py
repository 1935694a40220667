"""``manifest.json``: the index of a trained model folder, written, read and verified here.

The training run writes it last (:func:`write`): the best model, each model's files and
validation figures, the SHA-256 of every file, the package version and the training
data's fingerprint. The predictor reads it (:func:`read`) and checks a file against it
before loading (:func:`verified_path`).
"""
import datetime
import json
import os

from .fileio import atomic_write_bytes, file_sha256
from ..errors import ModelIntegrityError, ModelNotFoundError

MANIFEST_NAME = "manifest.json"
FORMAT = "propensity-manifest"
VERSION = 1
UNHASHED = (MANIFEST_NAME, "ml_pipeline.log")  # the log is written after the manifest


def model_files(family):
    """The model document and pickle of one model family."""
    return {"model_file": f"{family}_model.propmodel", "pickle_file": f"{family}_model.pkl"}


def build(folder, *, best_model, models, training_data, created=None, digests=None):
    """The manifest of the files now in ``folder``. ``models`` maps each family to its
    validation figures (f1, roc_auc, threshold); ``training_data`` describes the data.
    ``digests`` maps names of files already hashed (complete, not written since) to their
    SHA-256 or to a future of it (:func:`hash_early`); the other files are hashed here."""
    from .. import __version__

    created = created or datetime.datetime.now(datetime.timezone.utc)
    return {
        "format": FORMAT, "format_version": VERSION, "package_version": __version__,
        "created": created.isoformat(timespec="seconds"), "best_model": best_model,
        "models": {fam: {**model_files(fam), "f1": rec["f1"], "roc_auc": rec["roc_auc"],
                         "threshold": rec["threshold"]} for fam, rec in models.items()},
        "files": _checksums(folder, digests or {}),
        "training_data": dict(training_data),
    }


def hash_early(pool, folder, names):
    """{name: future of its SHA-256} for files of ``folder`` that are complete, hashed on
    ``pool`` while the run goes on (hashlib and file reads release the GIL): a training run
    hashes its model files and test predictions, 400 MB on the 10M-row file, while it draws
    its figures, instead of after them."""
    return {name: pool.submit(file_sha256, os.path.join(folder, name)) for name in names}


def _checksums(folder, known):
    """sha256 of every file of ``folder`` but the unhashed ones: from ``known`` (a digest
    or a future of one) where given, else the files hashed side by side."""
    from concurrent.futures import Future, ThreadPoolExecutor

    names = [name for name in sorted(os.listdir(folder)) if name not in UNHASHED]
    rest = [name for name in names if name not in known]
    with ThreadPoolExecutor(max(1, min(len(rest), os.cpu_count() or 1))) as pool:
        digests = dict(zip(rest, pool.map(lambda name: file_sha256(os.path.join(folder, name)),
                                          rest)))
    for name in names:
        if name in known:
            d = known[name]
            digests[name] = d.result() if isinstance(d, Future) else d
    return {name: digests[name] for name in names}


def write(folder, manifest):
    atomic_write_bytes(os.path.join(folder, MANIFEST_NAME),
                       json.dumps(manifest, indent=2).encode("utf-8") + b"\n")


def read(model_dir):
    """The validated manifest of ``model_dir``; ModelNotFoundError / ModelIntegrityError."""
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
        raise ModelNotFoundError(f"model folder {model_dir!r} is a file, not a folder of "
                                 f"trained models")
    if not os.path.isdir(model_dir):
        raise ModelNotFoundError(
            f"model folder {model_dir!r} does not exist; train first with "
            f"`python -m propensity.train` or pass --model_dir")
    path = os.path.join(model_dir, MANIFEST_NAME)
    if not os.path.isfile(path):
        raise ModelNotFoundError(
            f"{path} not found: {model_dir!r} holds no trained models "
            f"(run `python -m propensity.train --output-dir {model_dir}`)")
    try:
        with open(path, "rb") as f:
            manifest = json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelIntegrityError(f"{path} is not a valid manifest: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelIntegrityError(f"{path} is not a propensity manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ModelIntegrityError(f"{path} has an invalid format_version {version!r}")
    if version > VERSION:
        raise ModelIntegrityError(
            f"{path} has format version {version}, newer than this propensity reads "
            f"({VERSION}); upgrade propensity to use these models")
    if not isinstance(manifest.get("models"), dict) or not isinstance(manifest.get("files"), dict):
        raise ModelIntegrityError(f"{path} lacks the 'models' or 'files' table")
    return manifest


def verified_path(model_dir, manifest, filename, what):
    """The path of ``filename`` after checking its SHA-256 against the manifest."""
    if not isinstance(filename, str) or os.path.basename(filename) != filename or \
            filename in ("", ".", ".."):
        raise ModelIntegrityError(f"manifest names an invalid {what} {filename!r}")
    path = os.path.join(model_dir, filename)
    if not os.path.isfile(path):
        raise ModelNotFoundError(f"{what} {path} listed in the manifest is missing")
    expected = manifest["files"].get(filename)
    if not isinstance(expected, str):
        raise ModelIntegrityError(f"manifest lists no sha256 checksum for {filename}")
    actual = file_sha256(path)
    if actual != expected.lower():
        raise ModelIntegrityError(
            f"checksum mismatch for {path}: the manifest records sha256 {expected[:16]}..., "
            f"the file has {actual[:16]}...; the file was modified or corrupted")
    return path
