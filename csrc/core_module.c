/* core_module.c - the one file of the core that includes Python.h and NumPy.
 *
 * It parses arguments, checks dtypes and shapes, allocates outputs, releases
 * the GIL around each C call and maps prop_status to a Python exception in one
 * helper (raise_status). The algorithms live in the other C files of csrc/,
 * which are plain C11 and are tested without Python (csrc/tests/).
 *
 * Layout: shared helpers first, then one section per concept (each with its
 * own method table fragment), then the module definition.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define PY_ARRAY_UNIQUE_SYMBOL propensity_ARRAY_API
#include <numpy/arrayobject.h>

#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "propensity/status.h"
#include "propensity/types.h"

/* ------------------------------------------------------------------ */
/* Shared helpers                                                      */
/* ------------------------------------------------------------------ */

/* Map a failed status to the matching Python exception; always returns NULL. */
static PyObject *raise_status(prop_status st, const prop_error *err)
{
    const char *msg = (err != NULL && err->msg[0]) ? err->msg : prop_status_name(st);
    switch (st) {
    case PROP_INVALID_ARG:
    case PROP_FORMAT:
        PyErr_SetString(PyExc_ValueError, msg);
        break;
    case PROP_NOMEM:
        PyErr_SetString(PyExc_MemoryError, msg);
        break;
    default:
        PyErr_SetString(PyExc_RuntimeError, msg);
        break;
    }
    return NULL;
}

/* Bit flags for the dtypes an argument accepts. */
enum { ACCEPT_F64 = 1, ACCEPT_F32 = 2, ACCEPT_U8 = 4, ACCEPT_I64 = 8, ACCEPT_I32 = 16,
       ACCEPT_U64 = 32 };

static int accepted_typenum(int typenum, int accept)
{
    return ((accept & ACCEPT_F64) && typenum == NPY_FLOAT64) ||
           ((accept & ACCEPT_F32) && typenum == NPY_FLOAT32) ||
           ((accept & ACCEPT_U8) && typenum == NPY_UINT8) ||
           ((accept & ACCEPT_I64) && typenum == NPY_INT64) ||
           ((accept & ACCEPT_I32) && typenum == NPY_INT32) ||
           ((accept & ACCEPT_U64) && typenum == NPY_UINT64);
}

/* Return a new reference to a C-contiguous, aligned, native-order array view of
 * `obj` with exactly `ndim` dimensions and one of the accepted dtypes (no
 * casting: a wrong dtype is a TypeError naming the argument). Non-contiguous
 * input is copied. On error sets an exception and returns NULL. */
static PyArrayObject *get_array(PyObject *obj, const char *name, int ndim, int accept)
{
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a numpy.ndarray, got %s", name,
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    PyArrayObject *arr = (PyArrayObject *)obj;
    int typenum = PyArray_TYPE(arr);
    if (!accepted_typenum(typenum, accept)) {
        PyObject *d = PyObject_Str((PyObject *)PyArray_DESCR(arr));
        PyErr_Format(PyExc_TypeError, "%s has dtype %S, which this routine does not accept",
                     name, d ? d : Py_None);
        Py_XDECREF(d);
        return NULL;
    }
    if (PyArray_NDIM(arr) != ndim) {
        PyErr_Format(PyExc_ValueError, "%s must be %d-dimensional, got %d dimensions", name,
                     ndim, PyArray_NDIM(arr));
        return NULL;
    }
    PyArray_Descr *descr = PyArray_DescrFromType(typenum);
    if (descr == NULL)
        return NULL;
    /* steals the descr reference */
    return (PyArrayObject *)PyArray_FromAny(obj, descr, ndim, ndim,
                                            NPY_ARRAY_IN_ARRAY | NPY_ARRAY_NOTSWAPPED, NULL);
}

/* Resolve a thread count: n <= 0 means "all processors". */
static int resolve_threads(int n)
{
    if (n > 0)
        return n;
#ifdef _OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}

static PyObject *py_build_info(PyObject *self, PyObject *noargs)
{
#ifdef _OPENMP
    int openmp = 1;
    int procs = omp_get_num_procs();
#else
    int openmp = 0;
    int procs = 1;
#endif
    return Py_BuildValue("{s:i,s:i,s:i,s:i}", "openmp", openmp, "num_procs", procs,
                         "max_bins", PROP_MAX_BINS, "missing_bin", PROP_MISSING_BIN);
}

static PyObject *py_resolve_threads(PyObject *self, PyObject *args)
{
    int n;
    if (!PyArg_ParseTuple(args, "i", &n))
        return NULL;
    return PyLong_FromLong(resolve_threads(n));
}

/* Give the heap's free pages back to the system (glibc's malloc_trim). Arrays of a few
 * MB (a chunk of features, a fold's scores) are served from the heap once glibc has
 * raised its mmap threshold, and freed ones stay resident between long-lived objects:
 * on 10M rows x 20 numeric columns the process held 230 MB more than its live data
 * after reading and kept growing over the grid's fits. Elsewhere a no-op. */
static PyObject *py_trim_heap(PyObject *self, PyObject *noargs)
{
#ifdef __GLIBC__
    int released;
    Py_BEGIN_ALLOW_THREADS
    released = malloc_trim(0);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(released);
#else
    Py_RETURN_FALSE;
#endif
}

#define CORE_METHODS                                                                    \
    {"build_info", py_build_info, METH_NOARGS, "Facts about how the core was built."},  \
    {"resolve_threads", py_resolve_threads, METH_VARARGS,                               \
     "resolve_threads(n) -> n, or the number of processors when n <= 0."},              \
    {"trim_heap", py_trim_heap, METH_NOARGS,                                            \
     "trim_heap() -> whether free heap memory was returned to the system (glibc "      \
     "malloc_trim; False elsewhere)."},

/* ------------------------------------------------------------------ */
/* Section: binning and row compression (bins.h, compress.h)           */
/* ------------------------------------------------------------------ */
/* BEGIN SECTION binning */
#include "propensity/bins.h"
#include "propensity/compress.h"

static int bins_dtype_of(PyArrayObject *arr)
{
    switch (PyArray_TYPE(arr)) {
    case NPY_FLOAT64: return PROP_BINS_F64;
    case NPY_FLOAT32: return PROP_BINS_F32;
    default: return PROP_BINS_U8;
    }
}

/* bin_fit(X, max_bins, subsample, seed, n_threads=1)
 *   -> (edges (p, PROP_BINS_EDGE_STRIDE) f64, n_edges (p,) i32) */
static PyObject *py_bin_fit(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"X", "max_bins", "subsample", "seed", "n_threads", NULL};
    PyObject *X_obj;
    int max_bins, n_threads = 1;
    long long subsample;
    unsigned long long seed;
    PyArrayObject *X = NULL, *edges = NULL, *n_edges = NULL;
    PyObject *result = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OiLK|i", kwlist, &X_obj, &max_bins,
                                     &subsample, &seed, &n_threads))
        return NULL;
    X = get_array(X_obj, "X", 2, ACCEPT_F64 | ACCEPT_F32 | ACCEPT_U8);
    if (X == NULL)
        goto fail;
    npy_intp p = PyArray_DIM(X, 1);
    npy_intp edims[2] = {p, PROP_BINS_EDGE_STRIDE};
    edges = (PyArrayObject *)PyArray_SimpleNew(2, edims, NPY_FLOAT64);
    n_edges = (PyArrayObject *)PyArray_SimpleNew(1, &p, NPY_INT32);
    if (edges == NULL || n_edges == NULL)
        goto fail;
    prop_bins_params params = {max_bins, (int64_t)subsample, (uint64_t)seed,
                               resolve_threads(n_threads)};
    prop_bins_data data = {PyArray_DATA(X), PyArray_DIM(X, 0), p, bins_dtype_of(X)};
    prop_error err;
    prop_error_clear(&err);
    prop_status st;
    Py_BEGIN_ALLOW_THREADS
    st = prop_bins_fit(&params, &data, (double *)PyArray_DATA(edges),
                       (int32_t *)PyArray_DATA(n_edges), &err);
    Py_END_ALLOW_THREADS
    if (st != PROP_OK) {
        raise_status(st, &err);
        goto fail;
    }
    result = Py_BuildValue("(OO)", edges, n_edges);
fail:
    Py_XDECREF(X);
    Py_XDECREF(edges);
    Py_XDECREF(n_edges);
    return result;
}

/* bin_transform(X, edges, n_edges, n_threads) -> B (n, p) uint8 */
static PyObject *py_bin_transform(PyObject *self, PyObject *args)
{
    PyObject *X_obj, *e_obj, *k_obj;
    int n_threads;
    PyArrayObject *X = NULL, *edges = NULL, *n_edges = NULL, *out = NULL;
    if (!PyArg_ParseTuple(args, "OOOi", &X_obj, &e_obj, &k_obj, &n_threads))
        return NULL;
    X = get_array(X_obj, "X", 2, ACCEPT_F64 | ACCEPT_F32 | ACCEPT_U8);
    if (X == NULL)
        goto fail;
    edges = get_array(e_obj, "edges", 2, ACCEPT_F64);
    if (edges == NULL)
        goto fail;
    n_edges = get_array(k_obj, "n_edges", 1, ACCEPT_I32);
    if (n_edges == NULL)
        goto fail;
    npy_intp n = PyArray_DIM(X, 0), p = PyArray_DIM(X, 1);
    if (PyArray_DIM(edges, 0) != p || PyArray_DIM(edges, 1) != PROP_BINS_EDGE_STRIDE) {
        PyErr_Format(PyExc_ValueError, "edges must have shape (%zd, %d), got (%zd, %zd)",
                     (Py_ssize_t)p, PROP_BINS_EDGE_STRIDE, (Py_ssize_t)PyArray_DIM(edges, 0),
                     (Py_ssize_t)PyArray_DIM(edges, 1));
        goto fail;
    }
    if (PyArray_DIM(n_edges, 0) != p) {
        PyErr_Format(PyExc_ValueError, "n_edges must have length %zd (the columns of X), got %zd",
                     (Py_ssize_t)p, (Py_ssize_t)PyArray_DIM(n_edges, 0));
        goto fail;
    }
    npy_intp dims[2] = {n, p};
    out = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_UINT8);
    if (out == NULL)
        goto fail;
    prop_bins_edges model = {p, (const double *)PyArray_DATA(edges),
                             (const int32_t *)PyArray_DATA(n_edges)};
    prop_bins_data data = {PyArray_DATA(X), n, p, bins_dtype_of(X)};
    int nt = resolve_threads(n_threads);
    prop_error err;
    prop_error_clear(&err);
    prop_status st;
    Py_BEGIN_ALLOW_THREADS
    st = prop_bins_transform(&model, &data, nt, (uint8_t *)PyArray_DATA(out), &err);
    Py_END_ALLOW_THREADS
    if (st != PROP_OK) {
        raise_status(st, &err);
        goto fail;
    }
    Py_DECREF(X);
    Py_DECREF(edges);
    Py_DECREF(n_edges);
    return (PyObject *)out;
fail:
    Py_XDECREF(X);
    Py_XDECREF(edges);
    Py_XDECREF(n_edges);
    Py_XDECREF(out);
    return NULL;
}

/* compress_rows(B, y, sample_weight, n_threads) -> (rows, counts, weights, inverse) */
static PyObject *py_compress_rows(PyObject *self, PyObject *args)
{
    PyObject *B_obj, *y_obj, *w_obj;
    int n_threads;
    PyArrayObject *B = NULL, *y = NULL, *w = NULL, *inverse = NULL;
    PyArrayObject *rows = NULL, *counts = NULL, *weights = NULL;
    prop_compressed *res = NULL;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "OOOi", &B_obj, &y_obj, &w_obj, &n_threads))
        return NULL;
    B = get_array(B_obj, "B", 2, ACCEPT_U8);
    if (B == NULL)
        goto fail;
    npy_intp n = PyArray_DIM(B, 0), p = PyArray_DIM(B, 1);
    if (y_obj != Py_None) {
        if ((y = get_array(y_obj, "y", 1, ACCEPT_U8)) == NULL)
            goto fail;
        if (PyArray_DIM(y, 0) != n) {
            PyErr_Format(PyExc_ValueError, "B has %zd rows but y has %zd", (Py_ssize_t)n,
                         (Py_ssize_t)PyArray_DIM(y, 0));
            goto fail;
        }
    }
    if (w_obj != Py_None) {
        if ((w = get_array(w_obj, "sample_weight", 1, ACCEPT_F64)) == NULL)
            goto fail;
        if (PyArray_DIM(w, 0) != n) {
            PyErr_Format(PyExc_ValueError, "B has %zd rows but sample_weight has %zd",
                         (Py_ssize_t)n, (Py_ssize_t)PyArray_DIM(w, 0));
            goto fail;
        }
    }
    inverse = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_INT64);
    if (inverse == NULL)
        goto fail;
    prop_compress_params params = {resolve_threads(n_threads)};
    prop_compress_data data = {(const uint8_t *)PyArray_DATA(B), n, p,
                               y ? (const uint8_t *)PyArray_DATA(y) : NULL,
                               w ? (const double *)PyArray_DATA(w) : NULL};
    prop_error err;
    prop_error_clear(&err);
    prop_status st;
    Py_BEGIN_ALLOW_THREADS
    st = prop_compress_rows(&params, &data, (int64_t *)PyArray_DATA(inverse), &res, &err);
    Py_END_ALLOW_THREADS
    if (st != PROP_OK) {
        raise_status(st, &err);
        goto fail;
    }
    npy_intp u = prop_compressed_n_unique(res);
    npy_intp rdims[2] = {u, p}, cdims[2] = {u, 2};
    rows = (PyArrayObject *)PyArray_SimpleNew(2, rdims, NPY_UINT8);
    counts = (PyArrayObject *)PyArray_SimpleNew(2, cdims, NPY_INT64);
    weights = (PyArrayObject *)PyArray_SimpleNew(2, cdims, NPY_FLOAT64);
    if (rows == NULL || counts == NULL || weights == NULL)
        goto fail;
    memcpy(PyArray_DATA(rows), prop_compressed_rows(res), (size_t)(u * p));
    memcpy(PyArray_DATA(counts), prop_compressed_counts(res), (size_t)u * 2 * sizeof(int64_t));
    memcpy(PyArray_DATA(weights), prop_compressed_weights(res), (size_t)u * 2 * sizeof(double));
    result = Py_BuildValue("(OOOO)", rows, counts, weights, inverse);
fail:
    prop_compressed_free(res);
    Py_XDECREF(B);
    Py_XDECREF(y);
    Py_XDECREF(w);
    Py_XDECREF(inverse);
    Py_XDECREF(rows);
    Py_XDECREF(counts);
    Py_XDECREF(weights);
    return result;
}

/* The feature plan (plan.h) as passed from Python: a tuple (op int32, col int64, level
 * float64, src_start int64, src int64). */
#include "propensity/plan.h"

typedef struct {
    PyArrayObject *a[5];
    prop_plan plan;
} plan_arrays;

static void plan_release(plan_arrays *pa)
{
    for (int k = 0; k < 5; k++)
        Py_XDECREF(pa->a[k]);
}

static int parse_plan(PyObject *tup, npy_intp n_inputs, plan_arrays *pa)
{
    static const char *names[5] = {"op", "col", "level", "src_start", "src"};
    static const int types[5] = {ACCEPT_I32, ACCEPT_I64, ACCEPT_F64, ACCEPT_I64, ACCEPT_I64};
    memset(pa, 0, sizeof *pa);
    if (!PyTuple_Check(tup) || PyTuple_GET_SIZE(tup) != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "plan must be a tuple (op, col, level, src_start, src) of arrays");
        return -1;
    }
    for (int k = 0; k < 5; k++) {
        pa->a[k] = get_array(PyTuple_GET_ITEM(tup, k), names[k], 1, types[k]);
        if (pa->a[k] == NULL)
            return -1;
    }
    npy_intp F = PyArray_DIM(pa->a[0], 0);
    if (PyArray_DIM(pa->a[1], 0) != F || PyArray_DIM(pa->a[2], 0) != F ||
        PyArray_DIM(pa->a[3], 0) != F + 1) {
        PyErr_SetString(PyExc_ValueError, "plan: op, col and level need one entry per feature, "
                                          "src_start one more");
        return -1;
    }
    const int64_t *ss = PyArray_DATA(pa->a[3]);
    if (F > 0 && ss[F] != PyArray_DIM(pa->a[4], 0)) {
        PyErr_SetString(PyExc_ValueError, "plan: src_start must end at the length of src");
        return -1;
    }
    pa->plan = (prop_plan){n_inputs, F, PyArray_DATA(pa->a[0]), PyArray_DATA(pa->a[1]),
                           PyArray_DATA(pa->a[2]), ss, PyArray_DATA(pa->a[4])};
    return 0;
}

/* Bin edges (p, PROP_BINS_EDGE_STRIDE) float64 and n_edges (p,) int32 of p features. */
static int parse_edges(PyObject *e_obj, PyObject *k_obj, npy_intp p, PyArrayObject **edges,
                       PyArrayObject **n_edges, prop_bins_edges *out)
{
    *edges = get_array(e_obj, "edges", 2, ACCEPT_F64);
    if (*edges == NULL)
        return -1;
    *n_edges = get_array(k_obj, "n_edges", 1, ACCEPT_I32);
    if (*n_edges == NULL)
        return -1;
    if (PyArray_DIM(*edges, 0) != p || PyArray_DIM(*edges, 1) != PROP_BINS_EDGE_STRIDE ||
        PyArray_DIM(*n_edges, 0) != p) {
        PyErr_Format(PyExc_ValueError, "edges must have shape (%zd, %d) and n_edges (%zd,)",
                     (Py_ssize_t)p, PROP_BINS_EDGE_STRIDE, (Py_ssize_t)p);
        return -1;
    }
    *out = (prop_bins_edges){p, PyArray_DATA(*edges), PyArray_DATA(*n_edges)};
    return 0;
}

/* plan_values(E, plan, out_u8, n_threads, reference=False) -> (n, n_features) float64
 * (uint8 with out_u8) */
static PyObject *py_plan_values(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"E", "plan", "out_u8", "n_threads", "reference", NULL};
    PyObject *E_obj, *tup, *out = NULL;
    int out_u8, n_threads, reference = 0;
    PyArrayObject *E = NULL;
    plan_arrays pa;
    memset(&pa, 0, sizeof pa);
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOpi|p", kwlist, &E_obj, &tup, &out_u8,
                                     &n_threads, &reference))
        return NULL;
    E = get_array(E_obj, "E", 2, ACCEPT_F64 | ACCEPT_F32 | ACCEPT_U8);
    if (E == NULL || parse_plan(tup, PyArray_DIM(E, 1), &pa) < 0)
        goto fail;
    npy_intp dims[2] = {PyArray_DIM(E, 0), pa.plan.n_features};
    out = PyArray_SimpleNew(2, dims, out_u8 ? NPY_UINT8 : NPY_FLOAT64);
    if (out == NULL)
        goto fail;
    prop_bins_data data = {PyArray_DATA(E), PyArray_DIM(E, 0), PyArray_DIM(E, 1), bins_dtype_of(E)};
    int nt = resolve_threads(n_threads);
    void *o = PyArray_DATA((PyArrayObject *)out);
    prop_error err;
    prop_error_clear(&err);
    prop_status st;
    Py_BEGIN_ALLOW_THREADS
    st = reference ? prop_plan_values_ref(&pa.plan, &data, out_u8, o, &err)
                   : prop_plan_values(&pa.plan, &data, out_u8, nt, o, &err);
    Py_END_ALLOW_THREADS
    if (st != PROP_OK) {
        raise_status(st, &err);
        Py_CLEAR(out);
    }
fail:
    Py_XDECREF(E);
    plan_release(&pa);
    return out;
}

/* plan_codes(E, plan, edges, n_edges, n_threads, reference=False) -> (n, n_features) uint8 */
static PyObject *py_plan_codes(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"E", "plan", "edges", "n_edges", "n_threads", "reference", NULL};
    PyObject *E_obj, *tup, *e_obj, *k_obj, *out = NULL;
    int n_threads, reference = 0;
    PyArrayObject *E = NULL, *edges = NULL, *n_edges = NULL;
    plan_arrays pa;
    memset(&pa, 0, sizeof pa);
    prop_bins_edges ed;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOi|p", kwlist, &E_obj, &tup, &e_obj, &k_obj,
                                     &n_threads, &reference))
        return NULL;
    E = get_array(E_obj, "E", 2, ACCEPT_F64 | ACCEPT_F32 | ACCEPT_U8);
    if (E == NULL || parse_plan(tup, PyArray_DIM(E, 1), &pa) < 0 ||
        parse_edges(e_obj, k_obj, pa.plan.n_features, &edges, &n_edges, &ed) < 0)
        goto fail;
    npy_intp dims[2] = {PyArray_DIM(E, 0), pa.plan.n_features};
    out = PyArray_SimpleNew(2, dims, NPY_UINT8);
    if (out == NULL)
        goto fail;
    prop_bins_data data = {PyArray_DATA(E), PyArray_DIM(E, 0), PyArray_DIM(E, 1), bins_dtype_of(E)};
    int nt = resolve_threads(n_threads);
    uint8_t *o = PyArray_DATA((PyArrayObject *)out);
    prop_error err;
    prop_error_clear(&err);
    prop_status st;
    Py_BEGIN_ALLOW_THREADS
    st = reference ? prop_plan_codes_ref(&pa.plan, &ed, &data, o, &err)
                   : prop_plan_codes(&pa.plan, &ed, &data, nt, o, &err);
    Py_END_ALLOW_THREADS
    if (st != PROP_OK) {
        raise_status(st, &err);
        Py_CLEAR(out);
    }
fail:
    Py_XDECREF(E);
    Py_XDECREF(edges);
    Py_XDECREF(n_edges);
    plan_release(&pa);
    return out;
}

#define BINNING_METHODS                                                                     \
    {"bin_fit", (PyCFunction)(void (*)(void))py_bin_fit, METH_VARARGS | METH_KEYWORDS,      \
     "bin_fit(X, max_bins, subsample, seed, n_threads=1) -> (edges (p, BIN_EDGE_STRIDE), "   \
     "n_edges (p,))"},                                                                      \
    {"bin_transform", py_bin_transform, METH_VARARGS,                                       \
     "bin_transform(X, edges, n_edges, n_threads) -> uint8 codes (n, p); NaN -> 255"},      \
    {"compress_rows", py_compress_rows, METH_VARARGS,                                       \
     "compress_rows(B, y, sample_weight, n_threads) -> (rows, counts, weights, inverse)"},   \
    {"plan_values", (PyCFunction)(void (*)(void))py_plan_values, METH_VARARGS | METH_KEYWORDS, \
     "plan_values(E, plan, out_u8, n_threads, reference=False) -> the features (n, F) of "  \
     "the encoded inputs E, float64 (uint8 with out_u8); plan = (op, col, level, "         \
     "src_start, src)"},                                                                    \
    {"plan_codes", (PyCFunction)(void (*)(void))py_plan_codes, METH_VARARGS | METH_KEYWORDS, \
     "plan_codes(E, plan, edges, n_edges, n_threads, reference=False) -> the bin codes "    \
     "(n, F) uint8 of the features of E"},
static int binning_init(PyObject *module)
{
    if (PyModule_AddIntConstant(module, "BIN_EDGE_STRIDE", PROP_BINS_EDGE_STRIDE) < 0)
        return -1;
    return 0;
}
/* END SECTION binning */

/* ------------------------------------------------------------------ */
/* Section: trees, forests, boosting, scoring (tree.h, forest.h, ...)  */
/* ------------------------------------------------------------------ */
/* BEGIN SECTION trees */
#include "propensity/boost.h"
#include "propensity/forest.h"
#include "propensity/predict.h"
#include "propensity/shap.h"

/* Move a prop_ensemble into a dict of NumPy arrays: each node array is freed once it
 * is copied, so a deep forest is never held twice (the caller still frees e). */
static PyObject *ensemble_to_dict(prop_ensemble *e)
{
    npy_intp nn = (npy_intp)e->nodes.n_nodes, nt1 = (npy_intp)e->n_trees + 1;
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    struct {
        const char *name;
        int typenum;
        npy_intp n;
        void **src;
        size_t item;
    } f[] = {
        {"tree_start", NPY_INT64, nt1, (void **)&e->tree_start, sizeof(int64_t)},
        {"feature", NPY_INT32, nn, (void **)&e->nodes.feature, sizeof(int32_t)},
        {"threshold", NPY_UINT8, nn, (void **)&e->nodes.threshold, 1},
        {"left", NPY_INT32, nn, (void **)&e->nodes.left, sizeof(int32_t)},
        {"right", NPY_INT32, nn, (void **)&e->nodes.right, sizeof(int32_t)},
        {"value", NPY_FLOAT64, nn, (void **)&e->nodes.value, sizeof(double)},
        {"count", NPY_FLOAT64, nn, (void **)&e->nodes.count, sizeof(double)},
        {"gain", NPY_FLOAT64, nn, (void **)&e->nodes.gain, sizeof(double)},
        {"eval_history", NPY_FLOAT64, (npy_intp)e->n_history, (void **)&e->eval_history,
         sizeof(double)},
    };
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
        PyObject *a = PyArray_SimpleNew(1, &f[k].n, f[k].typenum);
        if (a == NULL)
            goto fail;
        if (f[k].n > 0 && *f[k].src != NULL)
            memcpy(PyArray_DATA((PyArrayObject *)a), *f[k].src, (size_t)f[k].n * f[k].item);
        free(*f[k].src);
        *f[k].src = NULL;
        int rc = PyDict_SetItemString(d, f[k].name, a);
        Py_DECREF(a);
        if (rc < 0)
            goto fail;
    }
    PyObject *v = PyFloat_FromDouble(e->base_score);
    if (v == NULL || PyDict_SetItemString(d, "base_score", v) < 0) {
        Py_XDECREF(v);
        goto fail;
    }
    Py_DECREF(v);
    v = PyLong_FromLong(e->best_iteration);
    if (v == NULL || PyDict_SetItemString(d, "best_iteration", v) < 0) {
        Py_XDECREF(v);
        goto fail;
    }
    Py_DECREF(v);
    if (e->nodes.cat_bits != NULL) { /* categorical splits: 4 words per node (tree.h) */
        npy_intp nb = 4 * nn;
        PyObject *a = PyArray_SimpleNew(1, &nb, NPY_UINT64);
        if (a == NULL)
            goto fail;
        if (nb > 0)
            memcpy(PyArray_DATA((PyArrayObject *)a), e->nodes.cat_bits,
                   (size_t)nb * sizeof(uint64_t));
        free(e->nodes.cat_bits);
        e->nodes.cat_bits = NULL;
        int rc = PyDict_SetItemString(d, "cat_bits", a);
        Py_DECREF(a);
        if (rc < 0)
            goto fail;
    }
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

/* The categorical arguments of a fit: categorical (None, or p uint8 flags) and the
 * search parameters into *C; *arr holds the flags (a new reference or NULL). */
static int parse_cat(PyObject *cat_o, double smooth, double mdpg, int mct, int32_t p,
                     PyArrayObject **arr, prop_cat_params *C)
{
    *arr = NULL;
    memset(C, 0, sizeof *C);
    C->cat_smooth = smooth;
    C->min_data_per_group = mdpg;
    C->max_cat_threshold = mct;
    if (cat_o == NULL || cat_o == Py_None)
        return 0;
    *arr = get_array(cat_o, "categorical", 1, ACCEPT_U8);
    if (*arr == NULL)
        return -1;
    if (PyArray_DIM(*arr, 0) != p) {
        PyErr_Format(PyExc_ValueError, "categorical has %zd flags, the codes %d features",
                     (Py_ssize_t)PyArray_DIM(*arr, 0), p);
        return -1;
    }
    C->categorical = PyArray_DATA(*arr);
    return 0;
}

/* Training rows: codes (n, p) uint8, counts (n, 2) int64, weights (n, 2) float64 or None
 * (the counts). */
static int parse_rows(PyObject *codes_o, PyObject *counts_o, PyObject *weights_o,
                      PyArrayObject **codes, PyArrayObject **counts, PyArrayObject **weights,
                      prop_rows *R)
{
    *codes = get_array(codes_o, "codes", 2, ACCEPT_U8);
    if (*codes == NULL)
        return -1;
    /* counts: (n, 2) int64 rows per label, or (n,) uint8 labels, one row each (rows
     * kept row by row: 1 byte a row instead of 16) */
    const int labels = PyArray_Check(counts_o) && PyArray_NDIM((PyArrayObject *)counts_o) == 1;
    *counts = labels ? get_array(counts_o, "counts given as labels (1-D)", 1, ACCEPT_U8)
                     : get_array(counts_o, "counts", 2, ACCEPT_I64);
    if (*counts == NULL)
        return -1;
    if (weights_o != Py_None) {   /* None: the weights are the counts */
        *weights = get_array(weights_o, "weights", 2, ACCEPT_F64);
        if (*weights == NULL)
            return -1;
    }
    npy_intp n = PyArray_DIM(*codes, 0);
    if (PyArray_DIM(*counts, 0) != n || (!labels && PyArray_DIM(*counts, 1) != 2) ||
        (*weights != NULL && (PyArray_DIM(*weights, 0) != n || PyArray_DIM(*weights, 1) != 2))) {
        PyErr_SetString(PyExc_ValueError, "counts must have shape (n_rows, 2) (or (n_rows,) "
                        "for labels) and weights (n_rows, 2)");
        return -1;
    }
    if (PyArray_DIM(*codes, 1) > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "too many features");
        return -1;
    }
    R->codes = PyArray_DATA(*codes);
    R->n_rows = n;
    R->n_features = (int32_t)PyArray_DIM(*codes, 1);
    R->counts = labels ? NULL : PyArray_DATA(*counts);
    R->labels = labels ? PyArray_DATA(*counts) : NULL;
    R->weights = *weights != NULL ? PyArray_DATA(*weights) : NULL;
    return 0;
}

static PyObject *py_forest_fit(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"codes", "counts", "weights", "class_weight", "n_estimators",
                             "criterion", "max_depth", "min_samples_split", "min_samples_leaf",
                             "max_features", "bootstrap", "seed", "n_threads", "categorical",
                             "cat_smooth", "min_data_per_group", "max_cat_threshold", "max_samples",
                             NULL};
    PyObject *codes_o, *counts_o, *weights_o, *res = NULL, *cat_o = Py_None;
    PyArrayObject *codes = NULL, *counts = NULL, *weights = NULL, *cat = NULL;
    prop_forest_params P;
    memset(&P, 0, sizeof P);
    unsigned long long seed;
    double smooth = 0.0, mdpg = 0.0;
    int mct = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO(dd)iiiddipKi|$Oddid", kwlist, &codes_o,
                                     &counts_o, &weights_o, &P.class_weight[0],
                                     &P.class_weight[1], &P.n_estimators, &P.criterion,
                                     &P.max_depth, &P.min_samples_split, &P.min_samples_leaf,
                                     &P.max_features, &P.bootstrap, &seed, &P.n_threads, &cat_o,
                                     &smooth, &mdpg, &mct, &P.max_samples))
        return NULL;
    P.seed = (uint64_t)seed;
    P.n_threads = resolve_threads(P.n_threads);
    prop_rows R;
    if (parse_rows(codes_o, counts_o, weights_o, &codes, &counts, &weights, &R) < 0)
        goto fail;
    if (parse_cat(cat_o, smooth, mdpg, mct, R.n_features, &cat, &P.cat) < 0)
        goto fail;
    prop_ensemble e;
    prop_error err;
    prop_error_clear(&err);
    prop_status st;
    Py_BEGIN_ALLOW_THREADS
    st = prop_forest_fit(&P, &R, &e, &err);
    Py_END_ALLOW_THREADS
    if (st != PROP_OK) {
        raise_status(st, &err);
        goto fail;
    }
    res = ensemble_to_dict(&e);
    prop_ensemble_free(&e);
fail:
    Py_XDECREF(codes);
    Py_XDECREF(counts);
    Py_XDECREF(weights);
    Py_XDECREF(cat);
    return res;
}

static PyObject *py_gbdt_fit(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"codes", "counts", "weights", "eval_codes", "eval_y", "eval_weight",
                             "n_estimators", "learning_rate", "max_depth", "min_child_weight",
                             "reg_lambda", "subsample", "colsample_bytree", "scale_pos_weight",
                             "early_stopping_rounds", "seed", "n_threads", "categorical",
                             "cat_smooth", "min_data_per_group", "max_cat_threshold", NULL};
    PyObject *codes_o, *counts_o, *weights_o, *ec_o, *ey_o, *ew_o, *res = NULL, *cat_o = Py_None;
    PyArrayObject *codes = NULL, *counts = NULL, *weights = NULL, *ec = NULL, *ey = NULL,
                  *ew = NULL, *cat = NULL;
    prop_boost_params P;
    memset(&P, 0, sizeof P);
    unsigned long long seed;
    double smooth = 0.0, mdpg = 0.0;
    int mct = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOididddddiKi|$Oddi", kwlist, &codes_o,
                                     &counts_o, &weights_o, &ec_o, &ey_o, &ew_o, &P.n_estimators,
                                     &P.learning_rate, &P.max_depth, &P.min_child_weight,
                                     &P.reg_lambda, &P.subsample, &P.colsample_bytree,
                                     &P.scale_pos_weight, &P.early_stopping_rounds, &seed,
                                     &P.n_threads, &cat_o, &smooth, &mdpg, &mct))
        return NULL;
    P.seed = (uint64_t)seed;
    P.n_threads = resolve_threads(P.n_threads);
    prop_rows R;
    if (parse_rows(codes_o, counts_o, weights_o, &codes, &counts, &weights, &R) < 0)
        goto fail;
    if (parse_cat(cat_o, smooth, mdpg, mct, R.n_features, &cat, &P.cat) < 0)
        goto fail;
    prop_eval_set E, *Ep = NULL;
    if (ec_o != Py_None) {
        ec = get_array(ec_o, "eval_codes", 2, ACCEPT_U8);
        if (ec == NULL)
            goto fail;
        ey = get_array(ey_o, "eval_y", 1, ACCEPT_U8);
        if (ey == NULL)
            goto fail;
        if (PyArray_DIM(ec, 1) != R.n_features || PyArray_DIM(ey, 0) != PyArray_DIM(ec, 0)) {
            PyErr_SetString(PyExc_ValueError, "eval_set: X must have the training features and "
                                              "as many rows as y");
            goto fail;
        }
        E.codes = PyArray_DATA(ec);
        E.n_rows = PyArray_DIM(ec, 0);
        E.y = PyArray_DATA(ey);
        E.weight = NULL;
        if (ew_o != Py_None) {
            ew = get_array(ew_o, "eval_weight", 1, ACCEPT_F64);
            if (ew == NULL)
                goto fail;
            if (PyArray_DIM(ew, 0) != E.n_rows) {
                PyErr_SetString(PyExc_ValueError, "eval_set: weight length mismatch");
                goto fail;
            }
            E.weight = PyArray_DATA(ew);
        }
        Ep = &E;
    }
    prop_ensemble e;
    prop_error err;
    prop_error_clear(&err);
    prop_status st;
    Py_BEGIN_ALLOW_THREADS
    st = prop_boost_fit(&P, &R, Ep, &e, &err);
    Py_END_ALLOW_THREADS
    if (st != PROP_OK) {
        raise_status(st, &err);
        goto fail;
    }
    res = ensemble_to_dict(&e);
    prop_ensemble_free(&e);
fail:
    Py_XDECREF(codes);
    Py_XDECREF(counts);
    Py_XDECREF(weights);
    Py_XDECREF(ec);
    Py_XDECREF(ey);
    Py_XDECREF(ew);
    Py_XDECREF(cat);
    return res;
}

/* The node arrays of a fitted ensemble, as passed back from Python. */
typedef struct {
    PyArrayObject *a[9]; /* the 8 node arrays, and cat_bits or NULL */
    prop_forest_view v;
} view_arrays;

static void view_release(view_arrays *va)
{
    for (int k = 0; k < 9; k++)
        Py_XDECREF(va->a[k]);
}

static int parse_view(PyObject *tup, int n_features, view_arrays *va)
{
    static const char *names[8] = {"tree_start", "feature", "threshold", "left",
                                   "right",      "value",   "count",     "gain"};
    static const int types[8] = {ACCEPT_I64, ACCEPT_I32, ACCEPT_U8,  ACCEPT_I32,
                                 ACCEPT_I32, ACCEPT_F64, ACCEPT_F64, ACCEPT_F64};
    memset(va, 0, sizeof *va);
    if (!PyTuple_Check(tup) || (PyTuple_GET_SIZE(tup) != 8 && PyTuple_GET_SIZE(tup) != 9)) {
        PyErr_SetString(PyExc_TypeError, "trees must be a tuple of 8 node arrays (and the "
                                         "category sets, uint64, 4 per node, or None)");
        return -1;
    }
    for (int k = 0; k < 8; k++) {
        va->a[k] = get_array(PyTuple_GET_ITEM(tup, k), names[k], 1, types[k]);
        if (va->a[k] == NULL)
            return -1;
    }
    npy_intp nn = PyArray_DIM(va->a[1], 0);
    for (int k = 2; k < 8; k++)
        if (PyArray_DIM(va->a[k], 0) != nn) {
            PyErr_Format(PyExc_ValueError, "tree arrays: %s has %zd entries, feature has %zd",
                         names[k], (Py_ssize_t)PyArray_DIM(va->a[k], 0), (Py_ssize_t)nn);
            return -1;
        }
    if (PyArray_DIM(va->a[0], 0) < 1) {
        PyErr_SetString(PyExc_ValueError, "tree arrays: tree_start is empty");
        return -1;
    }
    if (n_features <= 0) {
        PyErr_SetString(PyExc_ValueError, "n_features must be >= 1");
        return -1;
    }
    prop_forest_view *v = &va->v;
    v->n_trees = PyArray_DIM(va->a[0], 0) - 1;
    v->tree_start = PyArray_DATA(va->a[0]);
    v->n_nodes = nn;
    v->feature = PyArray_DATA(va->a[1]);
    v->threshold = PyArray_DATA(va->a[2]);
    v->left = PyArray_DATA(va->a[3]);
    v->right = PyArray_DATA(va->a[4]);
    v->value = PyArray_DATA(va->a[5]);
    v->count = PyArray_DATA(va->a[6]);
    v->gain = PyArray_DATA(va->a[7]);
    v->n_features = n_features;
    v->cat_bits = NULL;
    if (PyTuple_GET_SIZE(tup) == 9 && PyTuple_GET_ITEM(tup, 8) != Py_None) {
        va->a[8] = get_array(PyTuple_GET_ITEM(tup, 8), "cat_bits", 1, ACCEPT_U64);
        if (va->a[8] == NULL)
            return -1;
        if (PyArray_DIM(va->a[8], 0) != 4 * nn) {
            PyErr_Format(PyExc_ValueError, "tree arrays: cat_bits has %zd words, 4 per node "
                         "make %zd", (Py_ssize_t)PyArray_DIM(va->a[8], 0),
                         (Py_ssize_t)(4 * nn));
            return -1;
        }
        v->cat_bits = PyArray_DATA(va->a[8]);
    }
    return 0;
}

/* The arguments (trees, n_features) of trees_validate and trees_shap_model: 0, or -1
 * with an exception set (va released). */
static int parse_trees_features(PyObject *args, PyObject *kwds, view_arrays *va)
{
    static char *kwlist[] = {"trees", "n_features", NULL};
    PyObject *tup;
    int p;
    memset(va, 0, sizeof *va);
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Oi", kwlist, &tup, &p))
        return -1;
    if (parse_view(tup, p, va) < 0) {
        view_release(va);
        return -1;
    }
    return 0;
}

static PyObject *py_trees_validate(PyObject *self, PyObject *args, PyObject *kwds)
{
    view_arrays va;
    if (parse_trees_features(args, kwds, &va) < 0)
        return NULL;
    prop_error err;
    prop_error_clear(&err);
    prop_status st;
    Py_BEGIN_ALLOW_THREADS
    st = prop_forest_validate(&va.v, &err);
    Py_END_ALLOW_THREADS
    view_release(&va);
    if (st != PROP_OK)
        return raise_status(st, &err);
    Py_RETURN_NONE;
}

static PyObject *py_trees_score(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"codes", "trees", "n_trees", "max_depth", "min_samples_split",
                             "average", "base", "n_threads", "reference", "kernel", NULL};
    PyObject *codes_o, *tup, *out = NULL;
    PyArrayObject *codes = NULL;
    prop_score_params sp;
    memset(&sp, 0, sizeof sp);
    long long n_trees;
    int reference;
    view_arrays va;
    memset(&va, 0, sizeof va);
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOLidpdip|i", kwlist, &codes_o, &tup, &n_trees,
                                     &sp.max_depth, &sp.min_samples_split, &sp.average, &sp.base,
                                     &sp.n_threads, &reference, &sp.kernel))
        return NULL;
    sp.n_trees = n_trees;
    sp.n_threads = resolve_threads(sp.n_threads);
    codes = get_array(codes_o, "codes", 2, ACCEPT_U8);
    if (codes == NULL)
        goto fail;
    if (parse_view(tup, (int)PyArray_DIM(codes, 1), &va) < 0)
        goto fail;
    npy_intp n = PyArray_DIM(codes, 0);
    out = PyArray_SimpleNew(1, &n, NPY_FLOAT64);
    if (out == NULL)
        goto fail;
    prop_error err;
    prop_error_clear(&err);
    prop_status st;
    int32_t p = (int32_t)PyArray_DIM(codes, 1);
    double *o = PyArray_DATA((PyArrayObject *)out);
    const uint8_t *c = PyArray_DATA(codes);
    Py_BEGIN_ALLOW_THREADS
    st = reference ? prop_forest_score_ref(&va.v, &sp, c, n, p, o, &err)
                   : prop_forest_score(&va.v, &sp, c, n, p, o, &err);
    Py_END_ALLOW_THREADS
    if (st != PROP_OK) {
        raise_status(st, &err);
        Py_CLEAR(out);
    }
fail:
    Py_XDECREF(codes);
    view_release(&va);
    return out;
}

/* trees_proba(codes (u, p), trees, n_trees, max_depth, mss, average, base, n_threads,
 * inverse=None) -> (n, 2): scores of the (unique) rows, scattered through inverse. */
static PyObject *py_trees_proba(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"codes", "trees", "n_trees", "max_depth", "min_samples_split",
                             "average", "base", "n_threads", "inverse", NULL};
    PyObject *codes_o, *tup, *inv_o = Py_None, *out = NULL;
    PyArrayObject *codes = NULL, *inv = NULL;
    double *tmp = NULL;
    prop_score_params sp;
    memset(&sp, 0, sizeof sp);
    long long n_trees;
    view_arrays va;
    memset(&va, 0, sizeof va);
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOLidpdi|O", kwlist, &codes_o, &tup, &n_trees,
                                     &sp.max_depth, &sp.min_samples_split, &sp.average, &sp.base,
                                     &sp.n_threads, &inv_o))
        return NULL;
    sp.n_trees = n_trees;
    sp.n_threads = resolve_threads(sp.n_threads);
    codes = get_array(codes_o, "codes", 2, ACCEPT_U8);
    if (codes == NULL)
        goto fail;
    if (parse_view(tup, (int)PyArray_DIM(codes, 1), &va) < 0)
        goto fail;
    npy_intp u = PyArray_DIM(codes, 0), n = u;
    if (inv_o != Py_None) {
        inv = get_array(inv_o, "inverse", 1, ACCEPT_I64);
        if (inv == NULL)
            goto fail;
        n = PyArray_DIM(inv, 0);
        const int64_t *iv = PyArray_DATA(inv);
        for (npy_intp i = 0; i < n; i++)
            if (iv[i] < 0 || iv[i] >= u) {
                PyErr_Format(PyExc_ValueError, "inverse[%zd] = %lld is outside [0, %zd)",
                             (Py_ssize_t)i, (long long)iv[i], (Py_ssize_t)u);
                goto fail;
            }
    }
    npy_intp dims[2] = {n, 2};
    out = PyArray_SimpleNew(2, dims, NPY_FLOAT64);
    tmp = malloc((size_t)(u > 0 ? u : 1) * sizeof *tmp);
    if (out == NULL || tmp == NULL) {
        if (tmp == NULL)
            PyErr_NoMemory();
        Py_CLEAR(out);
        goto fail;
    }
    prop_error err;
    prop_error_clear(&err);
    prop_status st;
    int32_t p = (int32_t)PyArray_DIM(codes, 1);
    const uint8_t *c = PyArray_DATA(codes);
    const int64_t *iv = inv ? PyArray_DATA(inv) : NULL;
    double *o = PyArray_DATA((PyArrayObject *)out);
    Py_BEGIN_ALLOW_THREADS
    st = prop_forest_score(&va.v, &sp, c, u, p, tmp, &err);
    if (st == PROP_OK)
        st = prop_scores_to_proba(tmp, u, iv, n, !sp.average, o, sp.n_threads, &err);
    Py_END_ALLOW_THREADS
    if (st != PROP_OK) {
        raise_status(st, &err);
        Py_CLEAR(out);
    }
fail:
    free(tmp);
    Py_XDECREF(codes);
    Py_XDECREF(inv);
    view_release(&va);
    return out;
}

/* trees_score_cuts(codes (n, p), trees, cut_trees int64 (k,), cut_depth int32 (k,),
 * cut_mss float64 (k,), average, base, n_threads, positive_proba) -> (k, n): the scores
 * (or positive-class probabilities) of every row under each cut, one walk for all. */
static PyObject *py_trees_score_cuts(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"codes", "trees", "cut_trees", "cut_depth", "cut_mss", "average",
                             "base", "n_threads", "positive_proba", NULL};
    PyObject *codes_o, *tup, *ct_o, *cd_o, *cm_o, *out = NULL;
    PyArrayObject *codes = NULL, *ct = NULL, *cd = NULL, *cm = NULL;
    prop_score_cut *cuts = NULL;
    prop_score_params sp;
    memset(&sp, 0, sizeof sp);
    view_arrays va;
    memset(&va, 0, sizeof va);
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOpdip", kwlist, &codes_o, &tup, &ct_o,
                                     &cd_o, &cm_o, &sp.average, &sp.base, &sp.n_threads,
                                     &sp.positive_proba))
        return NULL;
    sp.n_threads = resolve_threads(sp.n_threads);
    codes = get_array(codes_o, "codes", 2, ACCEPT_U8);
    if (codes == NULL || (ct = get_array(ct_o, "cut_trees", 1, ACCEPT_I64)) == NULL ||
        (cd = get_array(cd_o, "cut_depth", 1, ACCEPT_I32)) == NULL ||
        (cm = get_array(cm_o, "cut_mss", 1, ACCEPT_F64)) == NULL)
        goto fail;
    npy_intp k = PyArray_DIM(ct, 0);
    if (PyArray_DIM(cd, 0) != k || PyArray_DIM(cm, 0) != k || k < 1 || k > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "cut_trees, cut_depth and cut_mss must have the "
                        "same length >= 1");
        goto fail;
    }
    if (parse_view(tup, (int)PyArray_DIM(codes, 1), &va) < 0)
        goto fail;
    cuts = malloc((size_t)k * sizeof *cuts);
    if (cuts == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    const int64_t *t_ = PyArray_DATA(ct);
    const int32_t *d_ = PyArray_DATA(cd);
    const double *m_ = PyArray_DATA(cm);
    for (npy_intp c = 0; c < k; c++) {
        cuts[c].n_trees = t_[c];
        cuts[c].max_depth = d_[c];
        cuts[c].min_samples_split = m_[c];
    }
    npy_intp n = PyArray_DIM(codes, 0), dims[2] = {k, n};
    out = PyArray_SimpleNew(2, dims, NPY_FLOAT64);
    if (out == NULL)
        goto fail;
    prop_error err;
    prop_error_clear(&err);
    prop_status st;
    int32_t p = (int32_t)PyArray_DIM(codes, 1);
    const uint8_t *c = PyArray_DATA(codes);
    double *o = PyArray_DATA((PyArrayObject *)out);
    Py_BEGIN_ALLOW_THREADS
    st = prop_forest_score_cuts(&va.v, &sp, cuts, (int32_t)k, c, n, p, o, &err);
    Py_END_ALLOW_THREADS
    if (st != PROP_OK) {
        raise_status(st, &err);
        Py_CLEAR(out);
    }
fail:
    free(cuts);
    Py_XDECREF(codes);
    Py_XDECREF(ct);
    Py_XDECREF(cd);
    Py_XDECREF(cm);
    view_release(&va);
    return out;
}

/* trees_score_inputs(E, plan, edges, n_edges, trees, n_trees, max_depth, min_samples_split,
 * average, base, n_threads, positive_proba=False, kernel=0, reference=False) -> (n,):
 * scores (or positive-class probabilities) of the encoded inputs E through the feature
 * plan and its bin edges. */
static PyObject *py_trees_score_inputs(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"E", "plan", "edges", "n_edges", "trees", "n_trees", "max_depth",
                             "min_samples_split", "average", "base", "n_threads",
                             "positive_proba", "kernel", "reference", NULL};
    PyObject *E_obj, *ptup, *e_obj, *k_obj, *tup, *out = NULL;
    PyArrayObject *E = NULL, *edges = NULL, *n_edges = NULL;
    prop_score_params sp;
    memset(&sp, 0, sizeof sp);
    long long n_trees;
    int reference = 0;
    plan_arrays pa;
    memset(&pa, 0, sizeof pa);
    view_arrays va;
    memset(&va, 0, sizeof va);
    prop_bins_edges ed;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOLidpdi|pip", kwlist, &E_obj, &ptup,
                                     &e_obj, &k_obj, &tup, &n_trees, &sp.max_depth,
                                     &sp.min_samples_split, &sp.average, &sp.base, &sp.n_threads,
                                     &sp.positive_proba, &sp.kernel, &reference))
        return NULL;
    sp.n_trees = n_trees;
    sp.n_threads = resolve_threads(sp.n_threads);
    E = get_array(E_obj, "E", 2, ACCEPT_F64 | ACCEPT_F32 | ACCEPT_U8);
    if (E == NULL || parse_plan(ptup, PyArray_DIM(E, 1), &pa) < 0 ||
        parse_edges(e_obj, k_obj, pa.plan.n_features, &edges, &n_edges, &ed) < 0)
        goto fail;
    if (pa.plan.n_features > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "plan: too many features");
        goto fail;
    }
    if (parse_view(tup, (int)pa.plan.n_features, &va) < 0)
        goto fail;
    npy_intp n = PyArray_DIM(E, 0);
    out = PyArray_SimpleNew(1, &n, NPY_FLOAT64);
    if (out == NULL)
        goto fail;
    prop_bins_data data = {PyArray_DATA(E), n, PyArray_DIM(E, 1), bins_dtype_of(E)};
    double *o = PyArray_DATA((PyArrayObject *)out);
    prop_error err;
    prop_error_clear(&err);
    prop_status st;
    Py_BEGIN_ALLOW_THREADS
    st = reference ? prop_forest_score_inputs_ref(&va.v, &sp, &pa.plan, &ed, &data, o, &err)
                   : prop_forest_score_inputs(&va.v, &sp, &pa.plan, &ed, &data, o, &err);
    Py_END_ALLOW_THREADS
    if (st != PROP_OK) {
        raise_status(st, &err);
        Py_CLEAR(out);
    }
fail:
    Py_XDECREF(E);
    Py_XDECREF(edges);
    Py_XDECREF(n_edges);
    plan_release(&pa);
    view_release(&va);
    return out;
}

static PyObject *py_trees_gains(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"trees", "n_features", "n_trees", "max_depth", "min_samples_split",
                             NULL};
    PyObject *tup, *out = NULL;
    prop_score_params sp;
    memset(&sp, 0, sizeof sp);
    sp.n_threads = 1; /* gains use no threads */
    long long n_trees;
    int p;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OiLid", kwlist, &tup, &p, &n_trees,
                                     &sp.max_depth, &sp.min_samples_split))
        return NULL;
    view_arrays va;
    if (parse_view(tup, p, &va) < 0)
        goto fail;
    sp.n_trees = n_trees;
    if (n_trees > va.v.n_trees || n_trees < 0) {
        PyErr_Format(PyExc_ValueError, "n_trees must be in [0, %lld]", (long long)va.v.n_trees);
        goto fail;
    }
    npy_intp dims[2] = {n_trees > 0 ? (npy_intp)n_trees : (npy_intp)va.v.n_trees, p};
    out = PyArray_SimpleNew(2, dims, NPY_FLOAT64);
    if (out == NULL)
        goto fail;
    prop_error err;
    prop_error_clear(&err);
    prop_status st;
    double *o = PyArray_DATA((PyArrayObject *)out);
    Py_BEGIN_ALLOW_THREADS
    st = prop_forest_gains(&va.v, &sp, o, &err);
    Py_END_ALLOW_THREADS
    if (st != PROP_OK) {
        raise_status(st, &err);
        Py_CLEAR(out);
    }
fail:
    view_release(&va);
    return out;
}

#define SHAP_MODEL_CAPSULE "propensity.shap_model"

static void shap_model_capsule_free(PyObject *cap)
{
    prop_shap_model_free(PyCapsule_GetPointer(cap, SHAP_MODEL_CAPSULE));
}

/* trees_shap_model(trees, n_features) -> capsule: the trees compiled for trees_shap. */
static PyObject *py_trees_shap_model(PyObject *self, PyObject *args, PyObject *kwds)
{
    view_arrays va;
    if (parse_trees_features(args, kwds, &va) < 0)
        return NULL;
    prop_error err;
    prop_error_clear(&err);
    prop_shap_model *md = NULL;
    prop_status st;
    Py_BEGIN_ALLOW_THREADS
    st = prop_shap_model_new(&va.v, &md, &err);
    Py_END_ALLOW_THREADS
    view_release(&va);
    if (st != PROP_OK)
        return raise_status(st, &err);
    PyObject *cap = PyCapsule_New(md, SHAP_MODEL_CAPSULE, shap_model_capsule_free);
    if (cap == NULL)
        prop_shap_model_free(md);
    return cap;
}

/* trees_shap_work(trees, n_features) -> float: the work of explaining one row (shap.h). */
static PyObject *py_trees_shap_work(PyObject *self, PyObject *args, PyObject *kwds)
{
    view_arrays va;
    if (parse_trees_features(args, kwds, &va) < 0)
        return NULL;
    prop_error err;
    prop_error_clear(&err);
    double work = 0.0;
    prop_status st;
    Py_BEGIN_ALLOW_THREADS
    st = prop_forest_shap_work(&va.v, &work, &err);
    Py_END_ALLOW_THREADS
    view_release(&va);
    if (st != PROP_OK)
        return raise_status(st, &err);
    return PyFloat_FromDouble(work);
}

/* trees_shap(codes (n, p), trees, average, base, n_threads, reference=False, model=None,
 * kernel=0) -> (n, p + 1): SHAP values of every row, the bias last (shap.h; reference:
 * enumeration of subsets; model: a capsule of trees_shap_model made from the same trees;
 * kernel: prop_shap_kernel, 0 AUTO, 1 the recursion, 2 the linear walk). */
static PyObject *py_trees_shap(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"codes", "trees", "average", "base", "n_threads", "reference",
                             "model", "kernel", NULL};
    PyObject *codes_o, *tup, *out = NULL, *model_o = Py_None;
    PyArrayObject *codes = NULL;
    prop_shap_params sp;
    memset(&sp, 0, sizeof sp);
    int reference = 0;
    const prop_shap_model *md = NULL;
    view_arrays va;
    memset(&va, 0, sizeof va);
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOpdi|pOi", kwlist, &codes_o, &tup,
                                     &sp.average, &sp.base, &sp.n_threads, &reference,
                                     &model_o, &sp.kernel))
        return NULL;
    if (model_o != Py_None) {
        md = PyCapsule_GetPointer(model_o, SHAP_MODEL_CAPSULE);
        if (md == NULL)
            return NULL; /* not a capsule of trees_shap_model: TypeError / ValueError set */
        if (reference) {
            PyErr_SetString(PyExc_ValueError, "trees_shap: model and reference exclude "
                            "each other");
            return NULL;
        }
    }
    sp.n_threads = resolve_threads(sp.n_threads);
    codes = get_array(codes_o, "codes", 2, ACCEPT_U8);
    if (codes == NULL)
        goto fail;
    if (parse_view(tup, (int)PyArray_DIM(codes, 1), &va) < 0)
        goto fail;
    npy_intp dims[2] = {PyArray_DIM(codes, 0), PyArray_DIM(codes, 1) + 1};
    out = PyArray_SimpleNew(2, dims, NPY_FLOAT64);
    if (out == NULL)
        goto fail;
    prop_error err;
    prop_error_clear(&err);
    prop_status st;
    int32_t p = (int32_t)PyArray_DIM(codes, 1);
    double *o = PyArray_DATA((PyArrayObject *)out);
    const uint8_t *c = PyArray_DATA(codes);
    int64_t n = dims[0];
    Py_BEGIN_ALLOW_THREADS
    st = reference ? prop_forest_shap_brute(&va.v, &sp, c, n, p, o, &err)
         : md != NULL ? prop_forest_shap_model(&va.v, md, &sp, c, n, p, o, &err)
                      : prop_forest_shap(&va.v, &sp, c, n, p, o, &err);
    Py_END_ALLOW_THREADS
    if (st != PROP_OK) {
        raise_status(st, &err);
        Py_CLEAR(out);
    }
fail:
    Py_XDECREF(codes);
    view_release(&va);
    return out;
}

/* Every trees entry point takes its arguments by keyword (or in this order). */
#define TREES_KW(fn) (PyCFunction)(void (*)(void))(fn), METH_VARARGS | METH_KEYWORDS
#define TREES_METHODS                                                                      \
    {"forest_fit", TREES_KW(py_forest_fit),                                                \
     "forest_fit(codes, counts, weights, class_weight (cw0, cw1), n_estimators, criterion, " \
     "max_depth, min_samples_split, min_samples_leaf, max_features, bootstrap, seed, "      \
     "n_threads, *, categorical=None, cat_smooth=0, min_data_per_group=0, "                \
     "max_cat_threshold=0, max_samples=0) -> dict (with cat_bits when a split is "      \
     "categorical)"},                                                                      \
    {"gbdt_fit", TREES_KW(py_gbdt_fit),                                                    \
     "gbdt_fit(codes, counts, weights, eval_codes, eval_y, eval_weight, n_estimators, "     \
     "learning_rate, max_depth, min_child_weight, reg_lambda, subsample, colsample_bytree, " \
     "scale_pos_weight, early_stopping_rounds, seed, n_threads, *, categorical=None, "     \
     "cat_smooth=0, min_data_per_group=0, max_cat_threshold=0) -> dict"},                  \
    {"trees_score", TREES_KW(py_trees_score),                                              \
     "trees_score(codes, trees, n_trees, max_depth, min_samples_split, average, base, "     \
     "n_threads, reference, kernel=0) -> float64 (n,)"},                                   \
    {"trees_score_inputs", TREES_KW(py_trees_score_inputs),                                \
     "trees_score_inputs(E, plan, edges, n_edges, trees, n_trees, max_depth, "              \
     "min_samples_split, average, base, n_threads, positive_proba=False, kernel=0, "        \
     "reference=False) -> float64 (n,): scores (or positive-class probabilities) of the "   \
     "encoded inputs E through the feature plan and its bin edges"},                       \
    {"trees_proba", TREES_KW(py_trees_proba),                                              \
     "trees_proba(codes, trees, n_trees, max_depth, min_samples_split, average, base, "     \
     "n_threads, inverse=None) -> float64 (n, 2)"},                                        \
    {"trees_score_cuts", TREES_KW(py_trees_score_cuts),                                    \
     "trees_score_cuts(codes, trees, cut_trees, cut_depth, cut_mss, average, base, "        \
     "n_threads, positive_proba) -> float64 (k, n): every row under each of k cuts"},      \
    {"trees_validate", TREES_KW(py_trees_validate),                                        \
     "trees_validate(trees, n_features): ValueError if any node array is invalid"},        \
    {"trees_gains", TREES_KW(py_trees_gains),                                              \
     "trees_gains(trees, n_features, n_trees, max_depth, min_samples_split) -> (T, p)"},\
    {"trees_shap", TREES_KW(py_trees_shap),                                                \
     "trees_shap(codes, trees, average, base, n_threads, reference=False, model=None, "   \
     "kernel=0) -> "  \
     "float64 (n, p + 1): SHAP values, the bias last"},                                    \
    {"trees_shap_model", TREES_KW(py_trees_shap_model),                                    \
     "trees_shap_model(trees, n_features) -> capsule of the trees compiled for trees_shap"}, \
    {"trees_shap_work", TREES_KW(py_trees_shap_work),                                      \
     "trees_shap_work(trees, n_features) -> float: the work of explaining one row"},
static int trees_init(PyObject *module)
{
    if (PyModule_AddIntConstant(module, "SCORE_AUTO", PROP_SCORE_AUTO) < 0 ||
        PyModule_AddIntConstant(module, "SCORE_LANES", PROP_SCORE_LANES) < 0 ||
        PyModule_AddIntConstant(module, "SCORE_BLOCK", PROP_SCORE_BLOCK) < 0 ||
        PyModule_AddIntConstant(module, "SCORE_BLOCK_PLAIN", PROP_SCORE_BLOCK_PLAIN) < 0)
        return -1;
    return 0;
}
/* END SECTION trees */

/* ------------------------------------------------------------------ */
/* Section: logistic regression (logreg.h)                             */
/* ------------------------------------------------------------------ */
/* BEGIN SECTION logreg */
#include "propensity/logreg.h"

/* logreg_fit(X, weights, scale_weights, C, l1_ratio, fit_intercept, max_iter, tol, n_threads)
 * X: (n, p) float64 or uint8; weights: (n, 2) float64 loss weights of label 0 / 1;
 * scale_weights: (n,) float64 or None. Returns a dict of the fitted state. */
static PyObject *py_logreg_fit(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"X", "weights", "scale_weights", "C", "l1_ratio", "fit_intercept",
                             "max_iter", "tol", "n_threads", NULL};
    PyObject *X_obj, *w_obj, *sw_obj = Py_None;
    double C, l1_ratio, tol;
    int fit_intercept, max_iter, n_threads;
    PyArrayObject *X = NULL, *W = NULL, *SW = NULL;
    PyArrayObject *coef = NULL, *coef_std = NULL, *mean = NULL, *scale = NULL;
    PyObject *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOddpidi:logreg_fit", kwlist, &X_obj,
                                     &w_obj, &sw_obj, &C, &l1_ratio, &fit_intercept, &max_iter,
                                     &tol, &n_threads))
        return NULL;
    X = get_array(X_obj, "X", 2, ACCEPT_F64 | ACCEPT_U8);
    if (X == NULL)
        goto fail;
    W = get_array(w_obj, "weights", 2, ACCEPT_F64);
    if (W == NULL)
        goto fail;
    npy_intp n = PyArray_DIM(X, 0), p = PyArray_DIM(X, 1);
    if (PyArray_DIM(W, 0) != n || PyArray_DIM(W, 1) != 2) {
        PyErr_Format(PyExc_ValueError, "weights must have shape (%zd, 2), got (%zd, %zd)",
                     (Py_ssize_t)n, (Py_ssize_t)PyArray_DIM(W, 0), (Py_ssize_t)PyArray_DIM(W, 1));
        goto fail;
    }
    if (sw_obj != Py_None) {
        SW = get_array(sw_obj, "scale_weights", 1, ACCEPT_F64);
        if (SW == NULL)
            goto fail;
        if (PyArray_DIM(SW, 0) != n) {
            PyErr_Format(PyExc_ValueError, "scale_weights must have shape (%zd,), got (%zd,)",
                         (Py_ssize_t)n, (Py_ssize_t)PyArray_DIM(SW, 0));
            goto fail;
        }
    }
    if (n < 1 || p < 1) {
        PyErr_SetString(PyExc_ValueError, "X must have at least one row and one column");
        goto fail;
    }
    npy_intp dims[1] = {p};
    coef = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    coef_std = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    mean = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    scale = (PyArrayObject *)PyArray_ZEROS(1, dims, NPY_FLOAT64, 0);
    if (!coef || !coef_std || !mean || !scale)
        goto fail;

    prop_logreg_params prm = {.C = C, .l1_ratio = l1_ratio, .fit_intercept = fit_intercept,
                              .max_iter = max_iter, .tol = tol,
                              .n_threads = resolve_threads(n_threads)};
    prop_logreg_data data = {
        .n_rows = n, .n_features = p,
        .X_f64 = PyArray_TYPE(X) == NPY_FLOAT64 ? (const double *)PyArray_DATA(X) : NULL,
        .X_u8 = PyArray_TYPE(X) == NPY_UINT8 ? (const uint8_t *)PyArray_DATA(X) : NULL,
        .weights = (const double *)PyArray_DATA(W),
        .scale_weights = SW ? (const double *)PyArray_DATA(SW) : NULL};
    prop_logreg_result res = {.coef = (double *)PyArray_DATA(coef),
                              .coef_std = (double *)PyArray_DATA(coef_std),
                              .mean = (double *)PyArray_DATA(mean),
                              .scale = (double *)PyArray_DATA(scale)};
    prop_error err;
    prop_error_clear(&err);
    prop_status st;
    Py_BEGIN_ALLOW_THREADS
    st = prop_logreg_fit(&prm, &data, &res, &err);
    Py_END_ALLOW_THREADS
    if (st != PROP_OK) {
        raise_status(st, &err);
        goto fail;
    }
    out = Py_BuildValue("{s:O,s:O,s:O,s:O,s:d,s:d,s:d,s:i,s:O}", "coef", coef, "coef_std",
                        coef_std, "mean", mean, "scale", scale, "intercept", res.intercept,
                        "intercept_std", res.intercept_std, "objective", res.objective,
                        "n_iter", res.n_iter, "converged", res.converged ? Py_True : Py_False);
fail:
    Py_XDECREF(X);
    Py_XDECREF(W);
    Py_XDECREF(SW);
    Py_XDECREF(coef);
    Py_XDECREF(coef_std);
    Py_XDECREF(mean);
    Py_XDECREF(scale);
    return out;
}

#define LOGREG_METHODS                                                                     \
    {"logreg_fit", (PyCFunction)(void (*)(void))py_logreg_fit, METH_VARARGS | METH_KEYWORDS, \
     "logreg_fit(X, weights, scale_weights, C, l1_ratio, fit_intercept, max_iter, tol, "    \
     "n_threads) -> dict: penalised logistic regression on weighted rows (logreg.h)."},
/* END SECTION logreg */

/* ------------------------------------------------------------------ */
/* Section: calibration (calibrate.h)                                  */
/* ------------------------------------------------------------------ */
/* BEGIN SECTION calibrate */
#include "propensity/calibrate.h"

/* pav(y, w) -> fitted: y, w (n,) float64 in score order, w > 0. */
static PyObject *py_pav(PyObject *self, PyObject *args)
{
    PyObject *y_obj, *w_obj;
    PyArrayObject *y = NULL, *w = NULL;
    PyObject *out = NULL;
    if (!PyArg_ParseTuple(args, "OO", &y_obj, &w_obj))
        return NULL;
    if ((y = get_array(y_obj, "y", 1, ACCEPT_F64)) == NULL ||
        (w = get_array(w_obj, "w", 1, ACCEPT_F64)) == NULL)
        goto fail;
    npy_intp n = PyArray_DIM(y, 0);
    if (PyArray_DIM(w, 0) != n) {
        PyErr_Format(PyExc_ValueError, "y has %zd points but w has %zd", (Py_ssize_t)n,
                     (Py_ssize_t)PyArray_DIM(w, 0));
        goto fail;
    }
    out = PyArray_SimpleNew(1, &n, NPY_FLOAT64);
    if (out == NULL)
        goto fail;
    prop_error err;
    prop_error_clear(&err);
    prop_status st;
    Py_BEGIN_ALLOW_THREADS
    st = prop_pav((const double *)PyArray_DATA(y), (const double *)PyArray_DATA(w), n,
                  (double *)PyArray_DATA((PyArrayObject *)out), &err);
    Py_END_ALLOW_THREADS
    if (st != PROP_OK) {
        raise_status(st, &err);
        Py_CLEAR(out);
    }
fail:
    Py_XDECREF(y);
    Py_XDECREF(w);
    return out;
}

#define CALIBRATE_METHODS                                                                  \
    {"pav", py_pav, METH_VARARGS,                                                          \
     "pav(y, w) -> fitted (n,) float64: the weighted non-decreasing least-squares fit of " \
     "y (points in score order, w > 0), pool-adjacent-violators (calibrate.h)."},
/* END SECTION calibrate */

/* ------------------------------------------------------------------ */
/* Section: I/O kernels for batch scoring (csvio.h)                    */
/* ------------------------------------------------------------------ */
/* BEGIN SECTION io */
#include "propensity/csvio.h"

/* Schemas travel as capsules owning a prop_schema. */
#define SCHEMA_CAPSULE "propensity.schema"

static void schema_capsule_free(PyObject *cap)
{
    prop_schema_free((prop_schema *)PyCapsule_GetPointer(cap, SCHEMA_CAPSULE));
}

static const prop_schema *get_schema(PyObject *obj)
{
    return (const prop_schema *)PyCapsule_GetPointer(obj, SCHEMA_CAPSULE);
}

/* schema_new(kind, fill, names, n_categories, categories) -> capsule (schema.h). */
static PyObject *py_schema_new(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"kind", "fill", "names", "n_categories", "categories", NULL};
    PyObject *k_obj, *f_obj, *c_obj, *out = NULL;
    Py_buffer names = {0}, cats = {0};
    PyArrayObject *kind = NULL, *fill = NULL, *ncat = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOy*Oy*", kwlist, &k_obj, &f_obj, &names,
                                     &c_obj, &cats))
        return NULL;
    kind = get_array(k_obj, "kind", 1, ACCEPT_I32);
    fill = kind ? get_array(f_obj, "fill", 1, ACCEPT_F64) : NULL;
    ncat = fill ? get_array(c_obj, "n_categories", 1, ACCEPT_I64) : NULL;
    if (ncat == NULL)
        goto fail;
    npy_intp m = PyArray_DIM(kind, 0);
    if (PyArray_DIM(fill, 0) != m || PyArray_DIM(ncat, 0) != m) {
        PyErr_SetString(PyExc_ValueError, "kind, fill and n_categories must have one entry "
                        "per column");
        goto fail;
    }
    {
        prop_schema_spec spec = {(int64_t)m, (const int32_t *)PyArray_DATA(kind),
                                 (const double *)PyArray_DATA(fill), (const char *)names.buf,
                                 names.len, (const int64_t *)PyArray_DATA(ncat),
                                 (const char *)cats.buf, cats.len};
        prop_schema *S = NULL;
        prop_error err;
        prop_error_clear(&err);
        prop_status st = prop_schema_create(&spec, &S, &err);
        if (st != PROP_OK) {
            raise_status(st, &err);
            goto fail;
        }
        out = PyCapsule_New(S, SCHEMA_CAPSULE, schema_capsule_free);
        if (out == NULL)
            prop_schema_free(S);
    }
fail:
    Py_XDECREF(kind);
    Py_XDECREF(fill);
    Py_XDECREF(ncat);
    PyBuffer_Release(&names);
    PyBuffer_Release(&cats);
    return out;
}

/* schema_absent(schema) -> float64 (n_columns,): what a column absent from the input
 * becomes (prop_schema_absent_value). */
static PyObject *py_schema_absent(PyObject *self, PyObject *cap)
{
    const prop_schema *S = get_schema(cap);
    if (S == NULL)
        return NULL;
    npy_intp m = (npy_intp)prop_schema_n_columns(S);
    PyObject *out = PyArray_SimpleNew(1, &m, NPY_FLOAT64);
    if (out == NULL)
        return NULL;
    double *o = PyArray_DATA((PyArrayObject *)out);
    for (npy_intp j = 0; j < m; j++)
        o[j] = prop_schema_absent_value(S, j);
    return out;
}

static PyObject *counts_dict(const prop_convert_counts *c)
{
    return Py_BuildValue("{s:L,s:L,s:L}", "n_coerced", (long long)c->n_coerced, "n_filled",
                         (long long)c->n_filled, "n_unseen", (long long)c->n_unseen);
}

/* schema_convert(schema, col, out, values=None, blob=None, offsets=None, missing=None,
 *                fill_missing=-1, coerce=False) -> dict of counts and bad_row.
 * Writes column col of the (n, m) float64 matrix out; on a bad value raises ValueError
 * whose args are (message, bad_row). */
static PyObject *py_schema_convert(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"schema", "col", "out", "values", "blob", "offsets", "missing",
                             "fill_missing", "coerce", NULL};
    PyObject *cap, *out_obj, *v_obj = Py_None, *o_obj = Py_None, *m_obj = Py_None;
    PyObject *res = NULL;
    Py_buffer blob = {0};
    long long col;
    int fill_missing = -1, coerce = 0;
    PyArrayObject *out = NULL, *values = NULL, *offsets = NULL, *missing = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OLO|Oz*OOip", kwlist, &cap, &col, &out_obj,
                                     &v_obj, &blob, &o_obj, &m_obj, &fill_missing, &coerce))
        return NULL;
    const prop_schema *S = get_schema(cap);
    if (S == NULL)
        goto fail;
    if (!PyArray_Check(out_obj) || PyArray_TYPE((PyArrayObject *)out_obj) != NPY_FLOAT64 ||
        PyArray_NDIM((PyArrayObject *)out_obj) != 2 ||
        !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)out_obj) ||
        !PyArray_ISWRITEABLE((PyArrayObject *)out_obj)) {
        PyErr_SetString(PyExc_TypeError, "out must be a writeable C-contiguous 2-D float64 array");
        goto fail;
    }
    out = (PyArrayObject *)out_obj;
    Py_INCREF(out);
    npy_intp n = PyArray_DIM(out, 0), m = PyArray_DIM(out, 1);
    if (col < 0 || col >= m || m != prop_schema_n_columns(S)) {
        PyErr_SetString(PyExc_ValueError, "out must have one column per schema column");
        goto fail;
    }
    if (v_obj != Py_None) {
        values = get_array(v_obj, "values", 1, ACCEPT_F64);
        if (values == NULL)
            goto fail;
        if (PyArray_DIM(values, 0) != n) {
            PyErr_SetString(PyExc_ValueError, "values must have one entry per row of out");
            goto fail;
        }
    } else {
        offsets = get_array(o_obj, "offsets", 1, ACCEPT_I64);
        if (offsets == NULL)
            goto fail;
        const int64_t *of = (const int64_t *)PyArray_DATA(offsets);
        if (PyArray_DIM(offsets, 0) != n + 1 || of[n] > (int64_t)blob.len || of[0] < 0) {
            PyErr_SetString(PyExc_ValueError, "offsets must have n + 1 entries within blob");
            goto fail;
        }
    }
    if (m_obj != Py_None) {
        missing = get_array(m_obj, "missing", 1, ACCEPT_U8);
        if (missing == NULL)
            goto fail;
        if (PyArray_DIM(missing, 0) != n) {
            PyErr_SetString(PyExc_ValueError, "missing must have one entry per row of out");
            goto fail;
        }
    }
    if (fill_missing < -1 || fill_missing > 1) {
        PyErr_SetString(PyExc_ValueError, "fill_missing must be -1, 0 or 1");
        goto fail;
    }
    {
        prop_convert_opts opts = {fill_missing, coerce};
        prop_convert_counts cnt = {0, 0, 0};
        int64_t bad = -1;
        prop_error err;
        prop_error_clear(&err);
        prop_status st;
        Py_BEGIN_ALLOW_THREADS
        st = prop_schema_convert_column(
            S, (int64_t)col, (int64_t)n, values ? (const double *)PyArray_DATA(values) : NULL,
            (const char *)blob.buf, offsets ? (const int64_t *)PyArray_DATA(offsets) : NULL,
            missing ? (const uint8_t *)PyArray_DATA(missing) : NULL, &opts,
            (double *)PyArray_DATA(out) + col, (int64_t)m, &cnt, &bad, &err);
        Py_END_ALLOW_THREADS
        if (st != PROP_OK) {
            if (st == PROP_FORMAT) {
                PyObject *e = Py_BuildValue("(sL)", err.msg, (long long)bad);
                if (e != NULL) {
                    PyErr_SetObject(PyExc_ValueError, e);
                    Py_DECREF(e);
                }
            } else {
                raise_status(st, &err);
            }
            goto fail;
        }
        res = counts_dict(&cnt);
    }
fail:
    Py_XDECREF(out);
    Py_XDECREF(values);
    Py_XDECREF(offsets);
    Py_XDECREF(missing);
    PyBuffer_Release(&blob);
    return res;
}

static PyObject *py_utf8_invalid(PyObject *self, PyObject *arg)
{
    Py_buffer buf = {0};
    if (PyObject_GetBuffer(arg, &buf, PyBUF_SIMPLE) < 0)
        return NULL;
    int64_t bad;
    Py_BEGIN_ALLOW_THREADS
    bad = prop_utf8_invalid((const char *)buf.buf, (int64_t)buf.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    return PyLong_FromLongLong((long long)bad);
}

/* obj is a writeable C-contiguous 2-D array of type t with >= rows rows and cols columns. */
static int reusable(PyObject *obj, int t, npy_intp rows, npy_intp cols)
{
    if (obj == Py_None || !PyArray_Check(obj))
        return 0;
    PyArrayObject *a = (PyArrayObject *)obj;
    return PyArray_TYPE(a) == t && PyArray_NDIM(a) == 2 && PyArray_IS_C_CONTIGUOUS(a) &&
           PyArray_ISWRITEABLE(a) && PyArray_DIM(a, 0) >= rows && PyArray_DIM(a, 1) == cols;
}

static PyObject *py_csv_parse(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"buf", "schema", "delimiter", "n_fields", "id_field",
                             "feature_field", "fill_missing", "coerce", "final", "first_line",
                             "first_row", "n_threads", "out_X", "out_span", NULL};
    Py_buffer buf = {0};
    int delimiter, fill_missing, coerce, final, n_threads = 1;
    long long n_fields, id_field, first_line, first_row;
    PyObject *ff_obj, *cap, *ox = Py_None, *os_ = Py_None;
    PyArrayObject *ff = NULL, *X = NULL, *span = NULL;
    PyObject *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*OCLLOippLL|iOO", kwlist, &buf, &cap,
                                     &delimiter, &n_fields, &id_field, &ff_obj, &fill_missing,
                                     &coerce, &final, &first_line, &first_row, &n_threads,
                                     &ox, &os_))
        return NULL;
    const prop_schema *S = get_schema(cap);
    if (S == NULL)
        goto fail;
    ff = get_array(ff_obj, "feature_field", 1, ACCEPT_I64);
    if (ff == NULL)
        goto fail;
    if (delimiter < 1 || delimiter > 127) {
        PyErr_SetString(PyExc_ValueError, "delimiter must be a single ASCII character");
        goto fail;
    }
    {
        prop_csv_params p;
        memset(&p, 0, sizeof p);
        p.schema = S;
        p.delimiter = (char)delimiter;
        p.n_fields = n_fields;
        p.id_field = id_field;
        p.n_features = PyArray_DIM(ff, 0);
        p.feature_field = (const int64_t *)PyArray_DATA(ff);
        p.fill_missing = fill_missing;
        p.coerce = coerce;
        p.final_block = final;
        p.first_line = first_line;
        p.first_row = first_row;
        p.n_threads = resolve_threads(n_threads);
        prop_error err;
        prop_error_clear(&err);
        prop_status st = prop_csv_check_params(&p, &err);
        if (st != PROP_OK) {
            raise_status(st, &err);
            goto fail;
        }
        const int binary = prop_schema_all_binary(S);
        const char *data = (const char *)buf.buf;
        int64_t len = buf.len, max_rows;
        prop_csv_result res;
        Py_BEGIN_ALLOW_THREADS
        st = prop_csv_max_records_threads(data, len, p.n_threads, &max_rows, &err);
        Py_END_ALLOW_THREADS
        if (st != PROP_OK) {
            raise_status(st, &err);
            goto fail;
        }
        npy_intp dx[2] = {(npy_intp)max_rows, (npy_intp)p.n_features};
        npy_intp ds[2] = {(npy_intp)max_rows, 2};
        /* out_X / out_span: arrays of an earlier call, reused when large enough (a
         * block loop then allocates, and the kernel zeroes, no new pages per block).
         * New ones get an eighth more rows, so that blocks of a few more records than
         * the last one do not each need new arrays. */
        const int xt = binary ? NPY_UINT8 : NPY_FLOAT64;
        npy_intp grown = dx[0] + dx[0] / 8 + 64;
        if (reusable(ox, xt, dx[0], dx[1])) {
            X = (PyArrayObject *)ox;
            Py_INCREF(X);
        } else {
            npy_intp d[2] = {ox != Py_None ? grown : dx[0], dx[1]};
            X = (PyArrayObject *)PyArray_SimpleNew(2, d, xt);
        }
        if (reusable(os_, NPY_INT64, ds[0], 2)) {
            span = (PyArrayObject *)os_;
            Py_INCREF(span);
        } else {
            npy_intp d[2] = {os_ != Py_None ? grown : ds[0], 2};
            span = (PyArrayObject *)PyArray_SimpleNew(2, d, NPY_INT64);
        }
        if (X == NULL || span == NULL)
            goto fail;
        Py_BEGIN_ALLOW_THREADS
        st = prop_csv_parse(&p, data, len, max_rows,
                            binary ? (uint8_t *)PyArray_DATA(X) : NULL,
                            binary ? NULL : (double *)PyArray_DATA(X),
                            id_field >= 0 ? (int64_t *)PyArray_DATA(span) : NULL, &res, &err);
        Py_END_ALLOW_THREADS
        if (st != PROP_OK) {
            raise_status(st, &err);
            goto fail;
        }
        out = Py_BuildValue("{s:O,s:O,s:L,s:L,s:L,s:L,s:L,s:L}", "X", (PyObject *)X,
                            "id_span", (PyObject *)span, "n_rows", (long long)res.n_rows,
                            "consumed", (long long)res.consumed, "n_lines",
                            (long long)res.n_lines, "n_coerced", (long long)res.n_coerced,
                            "n_filled", (long long)res.n_filled, "n_unseen",
                            (long long)res.n_unseen);
    }
fail:
    Py_XDECREF(ff);
    Py_XDECREF(X);
    Py_XDECREF(span);
    PyBuffer_Release(&buf);
    return out;
}

static PyObject *py_csv_format(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"pred", "proba", "digits", "timestamp", "segments", "id_buf",
                             "id_span", "first_row_number", "n_threads", "out",
                             "reason_col", "reason_value", "reason_names", "reason_name_start",
                             "reason_digits", NULL};
    PyObject *pred_obj, *proba_obj, *span_obj = Py_None, *out_obj = Py_None;
    PyObject *rc_obj = Py_None, *rv_obj = Py_None, *rs_obj = Py_None;
    Py_buffer ts = {0}, ids = {0}, ob = {0}, rn = {0};
    int digits, segments, n_threads = 1, reason_digits = 6;
    long long first_row_number = 0;
    PyArrayObject *pred = NULL, *proba = NULL, *span = NULL, *rcol = NULL, *rval = NULL,
                  *rstart = NULL;
    PyObject *bytes = NULL, *out = NULL;
    prop_csv_reasons reasons = {0};
    PyObject *seg_obj;
    double edges[2] = {PROP_CSV_SEGMENT_LOW, PROP_CSV_SEGMENT_HIGH};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOiy*O|z*OLiOOOz*Oi", kwlist, &pred_obj,
                                     &proba_obj, &digits, &ts, &seg_obj, &ids, &span_obj,
                                     &first_row_number, &n_threads, &out_obj, &rc_obj, &rv_obj,
                                     &rn, &rs_obj, &reason_digits))
        return NULL;
    /* segments: False / True (the default edges) or (low, high) */
    if (PyTuple_Check(seg_obj)) {
        if (!PyArg_ParseTuple(seg_obj, "dd", &edges[0], &edges[1]))
            goto fail;
        segments = 1;
    } else if ((segments = PyObject_IsTrue(seg_obj)) < 0) {
        goto fail;
    }
    if (out_obj != Py_None && !PyByteArray_Check(out_obj)) {
        PyErr_SetString(PyExc_TypeError, "out must be a bytearray");
        goto fail;
    }
    pred = get_array(pred_obj, "pred", 1, ACCEPT_U8);
    proba = pred ? get_array(proba_obj, "proba", 1, ACCEPT_F64) : NULL;
    if (pred == NULL || proba == NULL)
        goto fail;
    npy_intp n = PyArray_DIM(pred, 0);
    if (PyArray_DIM(proba, 0) != n) {
        PyErr_Format(PyExc_ValueError, "pred has %zd rows but proba has %zd", (Py_ssize_t)n,
                     (Py_ssize_t)PyArray_DIM(proba, 0));
        goto fail;
    }
    if (span_obj != Py_None) {
        if (ids.buf == NULL) {
            PyErr_SetString(PyExc_ValueError, "id_span needs id_buf");
            goto fail;
        }
        span = get_array(span_obj, "id_span", 2, ACCEPT_I64);
        if (span == NULL)
            goto fail;
        if (PyArray_DIM(span, 0) != n || PyArray_DIM(span, 1) != 2) {
            PyErr_SetString(PyExc_ValueError, "id_span must have shape (n, 2)");
            goto fail;
        }
        const int64_t *sp = (const int64_t *)PyArray_DATA(span);
        for (npy_intp i = 0; i < n; i++) {
            /* no offset + length: it can wrap around int64 and pass */
            if (sp[2 * i] < 0 || sp[2 * i + 1] < 0 || sp[2 * i] > ids.len ||
                sp[2 * i + 1] > ids.len - sp[2 * i]) {
                PyErr_Format(PyExc_ValueError, "id_span row %zd is outside id_buf",
                             (Py_ssize_t)i);
                goto fail;
            }
        }
    }
    if (rc_obj != Py_None) { /* reason codes: (n, k) columns and values, the names */
        rcol = get_array(rc_obj, "reason_col", 2, ACCEPT_I32);
        rval = rcol ? get_array(rv_obj, "reason_value", 2, ACCEPT_F64) : NULL;
        rstart = rval ? get_array(rs_obj, "reason_name_start", 1, ACCEPT_I64) : NULL;
        if (rstart == NULL)
            goto fail;
        if (rn.buf == NULL || PyArray_DIM(rcol, 0) != n || PyArray_DIM(rval, 0) != n ||
            PyArray_DIM(rval, 1) != PyArray_DIM(rcol, 1) || PyArray_DIM(rstart, 0) < 2 ||
            PyArray_DIM(rcol, 1) > PROP_CSV_MAX_REASONS) {
            PyErr_SetString(PyExc_ValueError, "reason_col and reason_value must be (n, k) with "
                            "k <= 64, with reason_names and reason_name_start");
            goto fail;
        }
        const int64_t *st = PyArray_DATA(rstart);
        npy_intp m = PyArray_DIM(rstart, 0);
        if (st[m - 1] > rn.len || st[0] != 0) {
            PyErr_SetString(PyExc_ValueError, "reason_name_start is outside reason_names");
            goto fail;
        }
        reasons.n = (int)PyArray_DIM(rcol, 1);
        reasons.col = PyArray_DATA(rcol);
        reasons.value = PyArray_DATA(rval);
        reasons.names = rn.buf;
        reasons.name_start = st;
        reasons.n_names = (int32_t)(m - 1);
        reasons.digits = reason_digits;
    }
    {
        prop_csv_format_params fp = {digits, (const char *)ts.buf, ts.len, segments,
                                     first_row_number, resolve_threads(n_threads), reasons,
                                     edges};
        const int64_t *sp = span ? (const int64_t *)PyArray_DATA(span) : NULL;
        int64_t bound, written = 0;
        prop_error err;
        prop_error_clear(&err);
        Py_BEGIN_ALLOW_THREADS
        bound = prop_csv_format_bound(&fp, n, sp);
        Py_END_ALLOW_THREADS
        char *dst;
        if (out_obj != Py_None) {
            /* the caller's bytearray, grown to the bound when smaller, then held as a
             * buffer (so it cannot be resized while the rows are written without the GIL);
             * the number of bytes written is returned */
            if (PyByteArray_GET_SIZE(out_obj) < (Py_ssize_t)bound &&
                PyByteArray_Resize(out_obj, (Py_ssize_t)bound) < 0)
                goto fail;
            if (PyObject_GetBuffer(out_obj, &ob, PyBUF_WRITABLE) < 0)
                goto fail;
            dst = (char *)ob.buf;
        } else {
            bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)bound);
            if (bytes == NULL)
                goto fail;
            dst = PyBytes_AS_STRING(bytes);
        }
        prop_status st;
        Py_BEGIN_ALLOW_THREADS
        st = prop_csv_format(&fp, n, (const char *)ids.buf, sp,
                             (const uint8_t *)PyArray_DATA(pred),
                             (const double *)PyArray_DATA(proba), dst, bound, &written, &err);
        Py_END_ALLOW_THREADS
        if (st != PROP_OK) {
            raise_status(st, &err);
            goto fail;
        }
        if (ob.buf != NULL) {
            out = PyLong_FromLongLong((long long)written);
        } else {
            if (_PyBytes_Resize(&bytes, (Py_ssize_t)written) < 0)
                goto fail; /* bytes is NULL now */
            out = bytes;
            bytes = NULL;
        }
    }
fail:
    Py_XDECREF(pred);
    Py_XDECREF(proba);
    Py_XDECREF(span);
    Py_XDECREF(rcol);
    Py_XDECREF(rval);
    Py_XDECREF(rstart);
    Py_XDECREF(bytes);
    PyBuffer_Release(&ts);
    PyBuffer_Release(&ids);
    PyBuffer_Release(&ob);
    PyBuffer_Release(&rn);
    return out;
}

#define IO_METHODS                                                                        \
    {"schema_new", (PyCFunction)(void (*)(void))py_schema_new, METH_VARARGS | METH_KEYWORDS, \
     "schema_new(kind, fill, names, n_categories, categories) -> schema capsule."},           \
    {"schema_absent", py_schema_absent, METH_O,                                               \
     "schema_absent(schema) -> float64 (n_columns,): what an absent column becomes."},        \
    {"schema_convert", (PyCFunction)(void (*)(void))py_schema_convert,                        \
     METH_VARARGS | METH_KEYWORDS,                                                            \
     "schema_convert(schema, col, out, values=None, blob=None, offsets=None, missing=None, "  \
     "fill_missing=-1, coerce=False) -> counts; ValueError(message, bad_row) on a bad value."}, \
    {"csv_parse", (PyCFunction)(void (*)(void))py_csv_parse, METH_VARARGS | METH_KEYWORDS, \
     "csv_parse(buf, *, schema, delimiter, n_fields, id_field, feature_field, fill_missing, " \
     "coerce, final, first_line, first_row, n_threads=1, out_X=None, out_span=None) "      \
     "-> dict of X (uint8 for an all-binary schema, "  \
     "else float64), id_span, n_rows, consumed, n_lines, n_coerced, n_filled, n_unseen."},   \
    {"utf8_invalid", py_utf8_invalid, METH_O,                                                 \
     "utf8_invalid(buf) -> offset of the first byte that is not valid UTF-8, or -1."},        \
    {"csv_format", (PyCFunction)(void (*)(void))py_csv_format, METH_VARARGS | METH_KEYWORDS, \
     "csv_format(pred, proba, digits, timestamp, segments (bool, or its (low, high) edges), " \
     "id_buf=None, id_span=None, "                                                           \
     "first_row_number=0, n_threads=1, out=None, reason_col=None, reason_value=None, "     \
     "reason_names=None, reason_name_start=None, reason_digits=6) -> bytes of CSV rows "     \
     "id,pred,proba,timestamp[,segment][,k reason names,k contributions]; with out (a "     \
     "bytearray, grown to the rows' bound when smaller) the number of bytes written into it."},
/* END SECTION io */

/* ------------------------------------------------------------------ */
/* Module                                                              */
/* ------------------------------------------------------------------ */

static PyMethodDef core_methods[] = {
    CORE_METHODS
    BINNING_METHODS
    TREES_METHODS
    LOGREG_METHODS
    CALIBRATE_METHODS
    IO_METHODS
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT, "propensity._core",
    "The C core of propensity: binning, compression, trees, logistic regression.", -1,
    core_methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC PyInit__core(void)
{
    import_array();
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL)
        return NULL;
    if (binning_init(m) < 0 || trees_init(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#ifdef Py_GIL_DISABLED
    PyUnstable_Module_SetGIL(m, Py_MOD_GIL_NOT_USED);
#endif
    return m;
}
