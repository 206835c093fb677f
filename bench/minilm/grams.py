"""Writes the dense model's grams H = XᵀX (the one-shot calibration) of all 36 linear
layers to a .safetensors file, one F32 tensor per layer named like its weight, with the
token count in the metadata: the input a command-line tool needs to prune the checkpoint
with calibration data.

    python3 -m bench.minilm.grams -o minilm-grams.safetensors [--calibration 512] [--max-length 128]
"""
import argparse

import numpy as np

from . import data
from .calibrate import collect_grams
from .model import MiniLM
from .tokenizer import Tokenizer


def save_grams(path, grams):
    from safetensors.numpy import save_file
    tokens = {t for _, t in grams.values()}
    save_file({name: h.astype(np.float32) for name, (h, _) in grams.items()}, path,
              metadata={"calibration_tokens": ",".join(map(str, sorted(tokens)))})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--calibration", type=int, default=512, help="calibration sentences")
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    ids = Tokenizer.from_file().encode_all(data.calibration(args.calibration), args.max_length)
    grams = collect_grams(MiniLM.load(), ids)
    save_grams(args.output, grams)
    print(f"wrote {len(grams)} grams from {sum(map(len, ids))} tokens to {args.output}")


if __name__ == "__main__":
    main()
