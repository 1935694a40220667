"""Build the C core (csrc/) into the extension module propensity._core.

OpenBLAS comes from the scipy-openblas32 wheel (a build requirement and a runtime
dependency). Its symbols carry a ``scipy_`` prefix, selected by BLAS_SYMBOL_PREFIX.
The extension finds the library at import time through an rpath relative to its
own location (site-packages/propensity -> site-packages/scipy_openblas32/lib);
propensity/_openblas.py also preloads it, which covers in-place builds. That relative
rpath is the only one: the run-time library paths the interpreter itself was linked with
(e.g. a pyenv Python's ``-Wl,-rpath,<prefix>/lib`` in LDSHARED) are dropped from the link
line, so no path of the build machine ends up in the extension's RUNPATH.
"""
import glob
import os
import sys

import numpy
import scipy_openblas32
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _is_rpath(arg):
    return arg.startswith(("-Wl,-rpath,", "-Wl,-rpath=", "-Wl,--enable-new-dtags,-rpath"))


class BuildExt(build_ext):
    """build_ext without the interpreter's own rpath flags on the shared-library link."""

    def build_extensions(self):
        linker = getattr(self.compiler, "linker_so", None)
        if linker:
            self.compiler.linker_so = [a for a in linker if not _is_rpath(a)]
        super().build_extensions()


HERE = os.path.dirname(os.path.abspath(__file__))
sources = sorted(glob.glob(os.path.join("csrc", "*.c")))

extra_compile_args = ["-std=c11", "-O3", "-fopenmp", "-Wall", "-Wextra",
                      "-Wno-unused-parameter", "-fno-math-errno"]
extra_link_args = ["-fopenmp"]
if os.environ.get("PROPENSITY_SANITIZE"):
    # A sanitized build for CI: the Python suite exercises the C paths under ASan+UBSan.
    extra_compile_args = [a for a in extra_compile_args if a != "-O3"] + [
        "-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    extra_link_args += ["-fsanitize=address,undefined"]
if sys.platform.startswith("linux"):
    extra_link_args += ["-Wl,-rpath,$ORIGIN/../scipy_openblas32/lib"]

ext = Extension(
    "propensity._core",
    sources=sources,
    include_dirs=[os.path.join("csrc", "include"), numpy.get_include(),
                  scipy_openblas32.get_include_dir()],
    library_dirs=[scipy_openblas32.get_lib_dir()],
    libraries=[scipy_openblas32.get_library()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
                   ("BLAS_SYMBOL_PREFIX", "scipy_")],
    extra_compile_args=extra_compile_args,
    extra_link_args=extra_link_args,
)

setup(ext_modules=[ext], cmdclass={"build_ext": BuildExt})
