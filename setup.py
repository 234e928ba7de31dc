"""Build the C core (csrc/core) and its CPython binding (csrc/python) as tasklle._C.

The extension is built against CPython and NumPy only; torch is a runtime
dependency. OpenMP is enabled with the compiler's flag when the compiler
accepts it, and the build says so in tasklle.show_config().
"""
import glob
import os
import sys
import tempfile

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _compiler_accepts(compiler, flag):
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n")
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=[flag])
            compiler.link_executable(objs, os.path.join(tmp, "probe"), extra_postargs=[flag])
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    def build_extensions(self):
        ctype = self.compiler.compiler_type
        openmp = False
        if ctype == "unix":
            openmp = _compiler_accepts(self.compiler, "-fopenmp")
        for ext in self.extensions:
            if ctype == "msvc":
                ext.extra_compile_args += ["/O2", "/openmp"]
                openmp = True
            else:
                ext.extra_compile_args += ["-std=c11", "-O3", "-fno-math-errno", "-Wall", "-Wextra",
                                           "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
                if openmp:
                    ext.extra_compile_args.append("-fopenmp")
                    ext.extra_link_args.append("-fopenmp")
            ext.define_macros.append(("TLL_BUILD_OPENMP", "1" if openmp else "0"))
            ext.define_macros.append(("TLL_BUILD_NUMPY", '"%s"' % numpy.__version__))
            ext.define_macros.append(("TLL_BUILD_COMPILER", '"%s"' % _compiler_name(self.compiler)))
        if not openmp:
            sys.stderr.write("tasklle: compiler has no OpenMP; the C core runs single-threaded\n")
        super().build_extensions()


def _compiler_name(compiler):
    cc = getattr(compiler, "compiler", None)
    return os.path.basename(cc[0]) if cc else compiler.compiler_type


sources = sorted(glob.glob("csrc/core/*.c")) + sorted(glob.glob("csrc/python/*.c"))

setup(
    ext_modules=[
        Extension(
            "tasklle._C",
            sources=sources,
            # the private headers (kernel templates, binding helpers): an edit rebuilds
            depends=sorted(glob.glob("csrc/core/*.h") + glob.glob("csrc/python/*.h") + glob.glob("csrc/include/*.h")),
            include_dirs=["csrc/include", "csrc/python", numpy.get_include()],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_20_API_VERSION")],
        )
    ],
    cmdclass={"build_ext": BuildExt},
)
