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
enum { ACCEPT_F64 = 1, ACCEPT_F32 = 2, ACCEPT_U8 = 4, ACCEPT_I64 = 8, ACCEPT_I32 = 16 };

static int accepted_typenum(int typenum, int accept)
{
    return ((accept & ACCEPT_F64) && typenum == NPY_FLOAT64) ||
           ((accept & ACCEPT_F32) && typenum == NPY_FLOAT32) ||
           ((accept & ACCEPT_U8) && typenum == NPY_UINT8) ||
           ((accept & ACCEPT_I64) && typenum == NPY_INT64) ||
           ((accept & ACCEPT_I32) && typenum == NPY_INT32);
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

#define CORE_METHODS                                                                    \
    {"build_info", py_build_info, METH_NOARGS, "Facts about how the core was built."},  \
    {"resolve_threads", py_resolve_threads, METH_VARARGS,                               \
     "resolve_threads(n) -> n, or the number of processors when n <= 0."},

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

/* bin_fit(X, max_bins, subsample, seed, n_threads=1) -> (edges (p, 255) f64, n_edges (p,) i32) */
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

#define BINNING_METHODS                                                                     \
    {"bin_fit", (PyCFunction)(void (*)(void))py_bin_fit, METH_VARARGS | METH_KEYWORDS,      \
     "bin_fit(X, max_bins, subsample, seed, n_threads=1) -> (edges (p, 255), n_edges (p,))"}, \
    {"bin_transform", py_bin_transform, METH_VARARGS,                                       \
     "bin_transform(X, edges, n_edges, n_threads) -> uint8 codes (n, p); NaN -> 255"},      \
    {"compress_rows", py_compress_rows, METH_VARARGS,                                       \
     "compress_rows(B, y, sample_weight, n_threads) -> (rows, counts, weights, inverse)"},
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
#define TREES_METHODS
static int trees_init(PyObject *module) { (void)module; return 0; }
/* END SECTION trees */

/* ------------------------------------------------------------------ */
/* Section: logistic regression (logreg.h)                             */
/* ------------------------------------------------------------------ */
/* BEGIN SECTION logreg */
#define LOGREG_METHODS
static int logreg_init(PyObject *module) { (void)module; return 0; }
/* END SECTION logreg */

/* ------------------------------------------------------------------ */
/* Section: I/O kernels for batch scoring (csvio.h)                    */
/* ------------------------------------------------------------------ */
/* BEGIN SECTION io */
#define IO_METHODS
static int io_init(PyObject *module) { (void)module; return 0; }
/* END SECTION io */

/* ------------------------------------------------------------------ */
/* Module                                                              */
/* ------------------------------------------------------------------ */

static PyMethodDef core_methods[] = {
    CORE_METHODS
    BINNING_METHODS
    TREES_METHODS
    LOGREG_METHODS
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
    if (binning_init(m) < 0 || trees_init(m) < 0 || logreg_init(m) < 0 || io_init(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#ifdef Py_GIL_DISABLED
    PyUnstable_Module_SetGIL(m, Py_MOD_GIL_NOT_USED);
#endif
    return m;
}
