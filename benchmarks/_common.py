"""Shared helpers of the benchmarks: timing, peak memory, peers' versions, JSON results.

Every benchmark runs our code and its peers in one process run, on the same data and
configuration, and saves ratios with accuracy beside them in benchmarks/results/.
Speed is measured here, never asserted in tests.
"""
import datetime
import glob
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# An in-place build of the package (python setup.py build_ext --inplace) wins over an
# installed one, so a benchmark measures the working tree it sits in.
if glob.glob(os.path.join(ROOT, "propensity", "_core*.so")) and ROOT not in sys.path:
    sys.path.insert(1, ROOT)


def best_of(fn, repeat=3):
    """Run ``fn()`` ``repeat`` times; return (best seconds, last result)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def peak_rss_mb():
    """Peak resident memory of this process in MB.

    VmHWM (Linux) belongs to the process's own address space. ru_maxrss is not usable in
    a spawned child: Linux keeps it across fork+exec, so the child would start from the
    parent's resident size."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child(conn, fn, args, kwargs):
    t0 = time.perf_counter()
    try:
        out = fn(*args, **kwargs)
        err = None
    except BaseException as exc:  # report, do not hang the parent
        out, err = None, f"{type(exc).__name__}: {exc}"
    secs = time.perf_counter() - t0
    peak_mb = peak_rss_mb()
    conn.send((out, err, secs, peak_mb))
    conn.close()
    # Leave at once: exit handlers would join worker pools a peer library keeps alive
    # (joblib/loky's reusable executor), which can hold this process for minutes.
    os._exit(0)


def start_child(fn, args, kwargs):
    """Start ``fn(*args, **kwargs)`` in a fresh (spawned) process that imports what this
    process imports (e.g. an in-place build of the package); returns ``(process, the end
    of the pipe its (result, error, seconds, peak_rss_mb) arrives on)``."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args, kwargs))
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
    try:
        proc.start()
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    child.close()
    return proc, parent


def command_main(module, argv):
    """``python -m <module> <argv>`` run in this fresh process as the command's own process
    runs: the package sees the command line a shell gives it (its commands keep
    scikit-learn out, propensity._sklearn), so the timing is the user's."""
    import importlib
    if "propensity" in sys.modules:
        raise RuntimeError("propensity was imported before the command line was set")
    sys.orig_argv = [sys.executable, "-m", module, *argv]
    return importlib.import_module(module).main(argv)


def run_isolated(fn, *args, **kwargs):
    """Run a module-level ``fn(*args, **kwargs)`` in a fresh (spawned) process.

    Returns ``(result, seconds, peak_rss_mb)``: the child's own peak resident memory,
    start-up (interpreter + imports) included, so compare peers measured the same way.
    """
    proc, parent = start_child(fn, args, kwargs)
    out, err, secs, peak = parent.recv()
    proc.join()
    if err is not None:
        raise RuntimeError(f"isolated run of {fn.__name__} failed: {err}")
    return out, secs, peak


def versions(*modules):
    out = {"python": sys.version.split()[0]}
    for name in modules:
        try:
            mod = __import__(name)
            out[name] = getattr(mod, "__version__", "?")
        except ImportError:
            out[name] = None
    return out


def machine():
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count()}


def save_results(name, payload):
    """Write ``benchmarks/results/<name>.json`` (with date and machine) and return its path."""
    os.makedirs(RESULTS_DIR, exist_ok=True)
    payload = dict(payload)
    payload.setdefault("benchmark", name)
    payload["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    payload["machine"] = machine()
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")
    return path


def print_table(rows, columns):
    """Print a list of dicts as an aligned text table."""
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in columns))


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def session_matrix(n_rows=455401, seed=0):
    """The benchmarks' data: stand-in sessions (propensity.datasets.make_sessions) plus the
    10 interaction features of SPEC.md (the package's InteractionFeatureTransformer).

    Returns ``(X uint8 (n, 33) C-contiguous, y int64 (n,), feature names)``.
    """
    import numpy as np

    from propensity.datasets import FEATURES, TARGET, make_sessions
    from propensity.learn.features import InteractionFeatureTransformer

    df = make_sessions(n_rows=n_rows, seed=seed)
    tr = InteractionFeatureTransformer().fit(df[FEATURES])
    X = np.ascontiguousarray(np.asarray(tr.transform(df[FEATURES]), dtype=np.uint8))
    return X, df[TARGET].to_numpy().astype(np.int64), list(tr.get_feature_names_out())
