"""The package around the calls: version, names, README example, what an sdist carries."""
import importlib
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
    assert tsenor.PRUNE_METHODS == ("magnitude", "wanda", "sparsegpt", "alps")


def test_typed_package():
    package = __import__("pathlib").Path(tsenor.__file__).parent
    assert (package / "py.typed").is_file() and (package / "_core.pyi").is_file()
    for name in ("mask", "check", "check_report", "prune_layer", "gram"):
        assert getattr(tsenor, name).__doc__ and getattr(tsenor, name).__annotations__
    pytest.importorskip("torch")
    model_pruning = importlib.import_module("tsenor.torch")
    for name in ("prune", "prunable_layers", "weight_selector", "keep_masks", "remove_masks"):
        assert getattr(model_pruning, name).__doc__ and getattr(model_pruning, name).__annotations__
    grams = importlib.import_module("tsenor.grams")
    assert tsenor.grams is grams and callable(tsenor.gram)      # the module does not hide the function
    for name in ("collect", "write_safetensors", "read_texts", "tensor_name", "checkpoint_names"):
        assert getattr(grams, name).__doc__ and getattr(grams, name).__annotations__


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
                   "csrc/prune_host.c", "csrc/prune_device.c", "csrc/gram_host.c", "csrc/gram_device.c",
                   "src/tsenor/_prune.py", "src/tsenor/_options.py", "src/tsenor/torch.py", "src/tsenor/grams.py",
                   "src/tsenor/__init__.py", "src/tsenor/_core.pyi", "src/tsenor/py.typed"):
        assert needed in names, needed


def setup_functions():
    """setup.py's definitions, without running setup()."""
    source = (REPO / "python" / "setup.py").read_text().split("\nROOT = library_root()")[0]
    namespace = {"__file__": str(REPO / "python" / "setup.py")}
    exec(compile(source, "setup.py", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("value,wanted", [("", None), ("auto", None), ("1", True), ("on", True), ("0", False),
                                          ("off", False)])
def test_build_reads_tsenor_cuda(monkeypatch, value, wanted):
    monkeypatch.setenv("TSENOR_CUDA", value)
    assert setup_functions()["cuda_wanted"]() is wanted


def test_build_with_tsenor_cuda_1_and_no_nvcc_stops_with_the_reason(monkeypatch):
    setup = setup_functions()
    setup["find_nvcc"] = lambda: None
    monkeypatch.setenv("TSENOR_CUDA", "1")
    with pytest.raises(SystemExit, match="TSENOR_CUDA=1 but nvcc was not found"):
        setup["BuildExtension"].cuda_compiler()
    monkeypatch.setenv("TSENOR_CUDA", "maybe")
    with pytest.raises(SystemExit, match="TSENOR_CUDA='maybe'"):
        setup["cuda_wanted"]()
    monkeypatch.setenv("TSENOR_CUDA", "auto")
    assert setup["BuildExtension"].cuda_compiler() is None     # no nvcc: built without CUDA


def test_build_version_is_the_headers():
    setup = setup_functions()
    assert setup["library_version"](str(REPO)) == header_version() == tsenor.__version__


def test_type_hints_check_strictly(tmp_path):
    pytest.importorskip("mypy")
    # a cache kept in build/ makes later runs fast (reading torch's type annotations takes about 30 s the first time)
    cache = REPO / "build" / "python" / "mypy-cache" if (REPO / "build").is_dir() else tmp_path
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports",
                             "--cache-dir", str(cache), str(REPO / "python" / "src" / "tsenor")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
