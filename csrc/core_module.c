/* core_module.c - the one file of the core that includes Python.h and NumPy.
 *
 * It parses arguments, checks dtypes and shapes, allocates outputs, releases
 * the GIL around each C call and maps prop_status to a Python exception in one
 * helper (raise_status). The algorithms live in the other csrc/*.c files,
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
#define BINNING_METHODS
static int binning_init(PyObject *module) { (void)module; return 0; }
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
