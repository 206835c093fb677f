"""Shared plumbing for the peers that bench/bench.c runs: argument parsing, reading the
matrix the benchmark wrote (raw float32, row-major), writing a uint8 mask back (255 in
the first entry of a block = block not solved), and the closing line the benchmark
parses: "seconds S blocks B" or "skipped REASON"."""
import argparse
import sys


def parse_args(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--input", required=True)
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--cols", type=int, required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--m", type=int, required=True)
    p.add_argument("--out", required=True)
    return p.parse_args()


def require(module, pip_name):
    """Imports module or prints the skip line with the install command and exits 0."""
    try:
        return __import__(module)
    except ImportError:
        print(f"skipped: {module} is not installed (pip install {pip_name})")
        sys.exit(0)


def load_abs_blocks(np, args):
    """|W| as (blocks, m, m), block-row-major; the matrix dims must be multiples of m."""
    w = np.fromfile(args.input, dtype=np.float32, count=args.rows * args.cols)
    m = args.m
    if args.rows % m or args.cols % m:
        print("skipped: peers need rows and cols that are multiples of m")
        sys.exit(0)
    R, C = args.rows // m, args.cols // m
    return np.abs(w).reshape(R, m, C, m).transpose(0, 2, 1, 3).reshape(R * C, m, m)


def write_mask(np, args, blocks_mask, solved=None):
    """blocks_mask: (blocks, m, m) of 0/1; solved: boolean per block or None (all)."""
    m = args.m
    R, C = args.rows // m, args.cols // m
    out = np.asarray(blocks_mask, dtype=np.uint8).copy()
    if solved is not None:
        out[~solved, 0, 0] = 255
    out.reshape(R, C, m, m).transpose(0, 2, 1, 3).reshape(args.rows, args.cols).tofile(args.out)


def report(seconds, blocks):
    print(f"seconds {seconds:.6f} blocks {blocks}")
