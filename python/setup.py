"""Build of tsenor's extension, tsenor._core: the C library of tsenor.h (with OpenMP
when the compiler has it) and, when nvcc is found, its CUDA backend compiled by nvcc and
linked in with cudart_static. TSENOR_CUDA=0 builds without CUDA, TSENOR_CUDA=1 requires
it; TSENOR_CUDA_ARCH replaces nvcc's -gencode flags; NVCC or CUDA_HOME pick the toolkit.

The library's files come from the repository root above this folder; an sdist carries
copies of them in vendor/ (see LIBRARY_FILES)."""
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
VENDOR = "vendor"
# what the extension compiles from the library, by path in the repository
LIBRARY_FILES = ("tsenor.h", "tsenor_cuda.h", "cuda/tsenor_cuda_internal.h", "cuda/tsenor_cuda.cu",
                 "cuda/tsenor_cuda_prune.cu", "LICENSE")
CUDA_SOURCES = ("cuda/tsenor_cuda.cu", "cuda/tsenor_cuda_prune.cu")
CUDA_ARCH_DEFAULT = ("-gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 "
                     "-gencode arch=compute_90,code=compute_90")
CUDA_LIBRARIES = ["cusolver", "cublas", "cudart_static", "dl", "rt", "pthread", "stdc++"]


def library_root():
    """The folder holding tsenor.h: vendor/ in an sdist, else the repository root."""
    for root in (os.path.join(HERE, VENDOR), os.path.dirname(HERE)):
        if os.path.isfile(os.path.join(root, "tsenor.h")):
            return root
    raise SystemExit("tsenor: tsenor.h not found in %s or in the folder above it"
                     % os.path.join(HERE, VENDOR))


def library_version(root):
    """tsenor.h's version, so that the package's version is the C library's."""
    with open(os.path.join(root, "tsenor.h"), encoding="utf-8") as f:
        text = f.read()
    parts = []
    for part in ("MAJOR", "MINOR", "PATCH"):
        found = re.search(r"#define TSENOR_VERSION_%s (\d+)" % part, text)
        if not found:
            raise SystemExit("tsenor: no TSENOR_VERSION_%s in tsenor.h" % part)
        parts.append(found.group(1))
    return ".".join(parts)


def cuda_wanted():
    """True/False when TSENOR_CUDA forces it, None to decide by whether nvcc is found."""
    value = os.environ.get("TSENOR_CUDA", "").strip().lower()
    if value in ("", "auto"):
        return None
    if value in ("1", "on", "yes", "true"):
        return True
    if value in ("0", "off", "no", "false"):
        return False
    raise SystemExit("tsenor: TSENOR_CUDA=%r: use 1 (require CUDA), 0 (without) or leave it unset" % value)


def find_nvcc():
    candidates = [os.environ.get("NVCC")]
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")):
        if home:
            candidates.append(os.path.join(home, "bin", "nvcc"))
    candidates += [shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"]
    for nvcc in candidates:
        if nvcc and os.path.isfile(nvcc) and os.access(nvcc, os.X_OK):
            return nvcc
    return None


def cuda_library_dir(home):
    for sub in ("lib64", "lib", os.path.join("targets", "x86_64-linux", "lib"),
                os.path.join("targets", "sbsa-linux", "lib")):
        if os.path.isfile(os.path.join(home, sub, "libcudart_static.a")):
            return os.path.join(home, sub)
    raise SystemExit("tsenor: libcudart_static.a not found under %s" % home)


def openmp_flags(compiler):
    """The OpenMP flag when this compiler builds and links an OpenMP program, else []."""
    flag = "/openmp" if compiler.compiler_type == "msvc" else "-fopenmp"
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "openmp_probe.c")
        with open(source, "w") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n")
        try:
            objects = compiler.compile([source], output_dir=tmp, extra_postargs=[flag])
            compiler.link_executable(objects, os.path.join(tmp, "openmp_probe"), extra_postargs=[flag])
        except Exception:  # any failure means: build serially
            return []
    return [flag]


class BuildExtension(build_ext):
    """Adds OpenMP and, when chosen, the CUDA backend to the extension."""

    def build_extensions(self):
        # setuptools skips an extension whose output is newer than its sources, whatever
        # the flags: a build with CUDA after one without (or the reverse) must relink
        self.force = True
        ext = self.extensions[0]
        root = library_root()
        openmp = openmp_flags(self.compiler)
        if self.compiler.compiler_type != "msvc":
            # the library's own optimisation level (Python's -O3 quadruples the compile
            # time of tsenor.h's kernels)
            ext.extra_compile_args.append("-O2")
        ext.extra_compile_args += openmp
        ext.extra_link_args += openmp
        nvcc = self.cuda_compiler()
        if nvcc:
            self.add_cuda(ext, nvcc, root)
        print("tsenor: OpenMP %s, CUDA backend %s" % ("on" if openmp else "off (serial)",
                                                        "on (%s)" % nvcc if nvcc else "off"))
        super().build_extensions()

    @staticmethod
    def cuda_compiler():
        wanted = cuda_wanted()
        if wanted is False:
            return None
        nvcc = find_nvcc()
        if wanted and not nvcc:
            raise SystemExit("tsenor: TSENOR_CUDA=1 but nvcc was not found (looked at $NVCC, $CUDA_HOME/bin, "
                             "$CUDA_PATH/bin, PATH and /usr/local/cuda/bin); install the CUDA toolkit or "
                             "build with TSENOR_CUDA=0")
        return nvcc

    def add_cuda(self, ext, nvcc, root):
        home = os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
        arch = shlex.split(os.environ.get("TSENOR_CUDA_ARCH", CUDA_ARCH_DEFAULT))
        inputs = [os.path.join(root, name) for name in LIBRARY_FILES if name != "LICENSE"]
        for name in CUDA_SOURCES:
            source = os.path.join(root, name)
            flags = [nvcc, "-O3", "-std=c++17", "-Xcompiler", "-fPIC", *arch, "-c", source]
            # the object is kept between builds (nvcc takes minutes), under a name that
            # changes with its command line, and rebuilt when a library file is newer
            key = hashlib.sha1(" ".join(flags).encode()).hexdigest()[:12]
            stem = os.path.splitext(os.path.basename(name))[0]
            obj = os.path.join(self.build_temp, "%s-%s.o" % (stem, key))
            if not os.path.isfile(obj) or any(os.path.getmtime(f) > os.path.getmtime(obj) for f in inputs):
                os.makedirs(self.build_temp, exist_ok=True)
                command = flags + ["-o", obj]
                print(" ".join(shlex.quote(c) for c in command))
                subprocess.check_call(command)
            ext.extra_objects.append(obj)
        ext.define_macros.append(("TSENOR_CUDA", "1"))
        ext.include_dirs.append(os.path.join(home, "include"))
        ext.library_dirs.append(cuda_library_dir(home))
        ext.runtime_library_dirs.append(cuda_library_dir(home))   # cuBLAS, cuSOLVER are shared
        ext.libraries += CUDA_LIBRARIES


class SourceDistribution(sdist):
    """An sdist that carries the library's files in vendor/, so it builds on its own."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        root = library_root()
        for name in LIBRARY_FILES:
            target = os.path.join(base_dir, VENDOR, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(os.path.join(root, name), target)


ROOT = library_root()
setup(
    version=library_version(ROOT),
    ext_modules=[Extension(
        "tsenor._core",
        sources=["csrc/" + name for name in ("module.c", "common.c", "mask_host.c", "mask_device.c",
                                             "check.c", "prune_host.c", "prune_device.c", "gram_host.c",
                                             "gram_device.c", "library.c")],
        include_dirs=[ROOT, "csrc"],
        depends=["csrc/ext.h"] + [os.path.join(ROOT, name) for name in LIBRARY_FILES if name != "LICENSE"],
    )],
    cmdclass={"build_ext": BuildExtension, "sdist": SourceDistribution},
)
