"""The package around the calls: version, names, README example, what an sdist carries."""
import re
import subprocess
import sys
import tarfile
from importlib import metadata

import pytest

import tsenor
from conftest import REPO


def header_version():
    text = (REPO / "tsenor.h").read_text()
    return ".".join(re.search(r"#define TSENOR_VERSION_%s (\d+)" % p, text).group(1)
                    for p in ("MAJOR", "MINOR", "PATCH"))


def test_version_is_the_c_librarys():
    assert tsenor.__version__ == header_version()
    try:
        installed = metadata.version("tsenor")
    except metadata.PackageNotFoundError:
        pytest.skip("tsenor's distribution metadata is not on the path")
    assert installed == tsenor.__version__


def test_methods_are_the_c_names():
    assert tsenor.METHODS == ("tsenor", "exact", "greedy", "rowwise")


def test_typed_package():
    package = __import__("pathlib").Path(tsenor.__file__).parent
    assert (package / "py.typed").is_file() and (package / "_core.pyi").is_file()
    for name in ("mask", "check", "check_report"):
        assert getattr(tsenor, name).__doc__ and getattr(tsenor, name).__annotations__


def python_blocks(markdown, heading=None):
    """The ```python blocks of a markdown text (of one '## heading' section if given)."""
    if heading is not None:
        section = re.search(r"^## %s\n(.*?)(?=^## |\Z)" % re.escape(heading), markdown, re.M | re.S)
        assert section, "no '## %s' section" % heading
        markdown = section.group(1)
    return re.findall(r"^```python\n(.*?)^```$", markdown, re.M | re.S)


@pytest.mark.parametrize("readme,heading", [("README.md", "Python"), ("python/README.md", None)])
def test_readme_examples_run(readme, heading):
    blocks = python_blocks((REPO / readme).read_text(), heading)
    assert blocks, "no python example in %s" % readme
    for code in blocks:
        if "import torch" in code:
            pytest.importorskip("torch")
        exec(compile(code, readme, "exec"), {"__name__": "readme_example"})


def test_sdist_carries_the_library_files(tmp_path):
    pytest.importorskip("build")
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(tmp_path),
                    str(REPO / "python")], check=True, capture_output=True)
    (archive,) = tmp_path.glob("tsenor-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for needed in ("vendor/tsenor.h", "vendor/tsenor_cuda.h", "vendor/cuda/tsenor_cuda.cu", "vendor/LICENSE",
                   "setup.py", "pyproject.toml", "csrc/ext.h", "csrc/library.c", "csrc/mask_host.c",
                   "src/tsenor/__init__.py", "src/tsenor/_core.pyi", "src/tsenor/py.typed"):
        assert needed in names, needed
