#!/usr/bin/env bash
# Run the Python tests that reach the C core against an ASan+UBSan build of the extension.
#
#   scripts/sanitized_pytest.sh              the default subset (below)
#   scripts/sanitized_pytest.sh tests/x.py   any pytest arguments instead
#
# Recipe: copy the sources to a scratch folder, build propensity._core in place there
# with PROPENSITY_SANITIZE=1 (setup.py: -O1 -g -fsanitize=address,undefined), then run
# pytest from that copy with gcc's libasan preloaded (python itself is not
# instrumented, so the ASan runtime must come first) and leak detection off (CPython
# and NumPy keep allocations alive until exit by design). UBSan halts on the first
# report; any ASan report aborts the process, so a clean run means no memory error
# was seen on these paths. Needs gcc, and numpy + scipy-openblas32 in this python.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

mkdir -p "$WORK/src"
cp -r "$ROOT/csrc" "$ROOT/propensity" "$ROOT/tests" "$ROOT/fuzz" "$ROOT/setup.py" \
      "$ROOT/pyproject.toml" "$WORK/src/"
rm -f "$WORK/src/propensity/"_core*.so
cd "$WORK/src"
echo "== building the sanitized extension"
PROPENSITY_SANITIZE=1 "$PY" setup.py -q build_ext --inplace 2>&1 | grep -Ev "^(copying|creating|gcc|running)" || true
SO=$(ls propensity/_core*.so)
# (not `ldd | grep -q`: grep -q exits at the first match, ldd then dies of SIGPIPE and
# pipefail turns that into a failure)
if ! ldd "$SO" | grep libasan >/dev/null; then
  echo "error: $SO is not linked with libasan (was PROPENSITY_SANITIZE honoured?)" >&2
  exit 1
fi

LIBASAN=$(gcc -print-file-name=libasan.so)
LIBUBSAN=$(gcc -print-file-name=libubsan.so)
if [ $# -eq 0 ]; then
  set -- tests/test_binning.py tests/test_compress.py tests/test_linear.py \
         tests/test_predictor.py tests/test_predict_cli.py tests/test_bad_inputs.py \
         tests/test_fuzz_regressions.py tests/test_concurrency.py
  for extra in tests/test_binding.py tests/test_forest.py tests/test_gbdt.py tests/test_tree_properties.py \
               tests/test_plan.py tests/test_features.py tests/test_schema.py tests/test_table.py \
               tests/test_csv_property.py tests/test_input_formats.py; do
    [ -f "$extra" ] && set -- "$@" "$extra"
  done
fi
echo "== pytest $* (ASan+UBSan, LD_PRELOAD=$LIBASAN)"
export PYTHONPATH="$WORK/src${PYTHONPATH:+:$PYTHONPATH}"
LD_PRELOAD="$LIBASAN $LIBUBSAN" \
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
OMP_NUM_THREADS=2 \
  "$PY" -m pytest -q -p no:cacheprovider -x "$@"
