"""Times the pieces of one quality-table row on this machine, with magnitude 2:4 (NumPy)
as the pruner: forward pass of the calibration sentences, sequential and one-shot
calibration + pruning, held-out cosine, TREC accuracy.

    python3 -m bench.minilm.timing [--calibration 512] [--heldout 2000] [--max-length 128]
"""
import argparse
import os
import time

import numpy as np

from . import data
from .calibrate import prune_one_shot, prune_sequential
from .evaluate import Evaluator
from .model import MiniLM
from .pruners import magnitude_nm
from .tokenizer import Tokenizer


class Clock:
    def __init__(self, label):
        self.label = label

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        print(f"{self.label:<58} {self.wall:7.2f} s wall {self.cpu:7.2f} s cpu", flush=True)


def sgemm_rate():
    """GFLOP/s of one 2048-cube float32 product now: how busy the machine is."""
    a = np.ones((2048, 2048), dtype=np.float32)
    a @ a
    start = time.perf_counter()
    a @ a
    return 2 * 2048 ** 3 / (time.perf_counter() - start) / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibration", type=int, default=512)
    parser.add_argument("--heldout", type=int, default=2000)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, "
          f"sgemm {sgemm_rate():.0f} GFLOP/s")
    with Clock("load checkpoint and tokenizer"):
        tok, dense = Tokenizer.from_file(), MiniLM.load()
    with Clock(f"tokenize {args.calibration} calibration sentences"):
        ids = tok.encode_all(data.calibration(args.calibration), args.max_length)
    print(f"  {sum(map(len, ids))} calibration tokens")
    with Clock(f"forward pass, {args.calibration} calibration sentences"):
        dense.embed(ids)
    prune = magnitude_nm(2, 4)
    with Clock("sequential calibration + magnitude 2:4 of 36 layers") as c:
        pruned, infos = prune_sequential(dense, ids, prune)
    calibration_seconds = c.wall
    print(f"  of which in prune(): {sum(i.prune_seconds for i in infos):.2f} s")
    with Clock("one-shot calibration + magnitude 2:4 of 36 layers"):
        prune_one_shot(dense, ids, prune)
    with Clock("evaluation set-up: tokenize, dense embeddings, dense classifier"):
        evaluator = Evaluator(dense, tok, heldout=args.heldout, max_length=args.max_length)
    print(f"  {sum(map(len, evaluator.heldout_ids))} held-out tokens, TREC {sum(map(len, evaluator.train_ids))} "
          f"train + {sum(map(len, evaluator.test_ids))} test tokens")
    with Clock(f"held-out cosine, {args.heldout} sentences (pruned model)") as c:
        cosine = evaluator.heldout_cosine(pruned)
    cosine_seconds = c.wall
    evaluator.retrain = False
    with Clock(f"TREC, dense classifier on {len(evaluator.test_ids)} test questions (pruned)") as c:
        _, frozen = evaluator.trec(pruned)
    frozen_seconds = c.wall
    evaluator.retrain = True
    with Clock(f"TREC, refitted on {len(evaluator.train_ids)} + tested on {len(evaluator.test_ids)} (pruned)") as c:
        accuracy, _ = evaluator.trec(pruned)
    retrain_seconds = c.wall
    with Clock("TREC, refitted (dense model)"):
        dense_accuracy, dense_frozen = evaluator.trec(dense)
    print(f"magnitude 2:4 (sequential): held-out cosine {cosine:.4f}, TREC accuracy {accuracy:.4f} refitted, "
          f"{frozen:.4f} dense classifier (dense model: {dense_accuracy:.4f}, {dense_frozen:.4f})")
    print(f"one row, wall: calibration {calibration_seconds:.1f} s + held-out {cosine_seconds:.1f} s + "
          f"TREC {retrain_seconds:.1f} s refitted ({frozen_seconds:.1f} s dense classifier only)")

if __name__ == "__main__":
    main()
