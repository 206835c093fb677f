"""Transposable n:4 exactly in plain PyTorch: the |w| of every 4x4 block (a row of 16)
times the 0/1 matrix of all transposable n:4 patterns (90 for 2:4, 24 for 1:4 and 3:4)
in one f32 matmul (TF32 off), and the argmax pattern of each block. On CUDA when
available, else the CPU. Time = the call from |W| on the device to the boolean mask on
the device, median of 10 after two warm-ups.

--self-test runs solve() on the CPU against a brute force over the row subsets
(itertools) on random, quantised (tied), zero and all-equal blocks and prints
"N passed, M failed"."""
import itertools
import sys
import time

from common import parse_args, report, require

try:
    import torch
except ImportError:   # main() says so
    torch = None


def patterns(n, device="cpu"):
    """All transposable n:4 patterns of a 4x4 block as a (P, 16) float32 0/1 matrix,
    entry (i, j) in column 4i + j, in increasing order of their 16-bit masks."""
    rows = []
    for s in range(1 << 16):
        bits = [(s >> k) & 1 for k in range(16)]
        if all(sum(bits[4 * i:4 * i + 4]) == n for i in range(4)) and \
           all(sum(bits[j::4]) == n for j in range(4)):
            rows.append(bits)
    return torch.tensor(rows, dtype=torch.float32, device=device)


def solve(w, pats):
    """w: (R, C) tensor, R and C multiples of 4; pats: patterns(n). The optimal
    transposable n:4 mask (bool, R x C): per block the pattern of largest kept |w|."""
    R, C = w.shape
    a = w.abs().float().reshape(R // 4, 4, C // 4, 4).permute(0, 2, 1, 3).reshape(-1, 16)
    best = (a @ pats.T).argmax(dim=1)
    keep = pats[best] > 0.5
    return keep.reshape(R // 4, C // 4, 4, 4).permute(0, 2, 1, 3).reshape(R, C)


def brute_force_best(block, n):
    """The largest kept sum of a 4x4 block (list of 16 floats) over all transposable
    n:4 masks, by the row subsets: independent of patterns()."""
    best = -1.0
    subsets = list(itertools.combinations(range(4), n))
    for choice in itertools.product(subsets, repeat=4):
        if all(sum(j in row for row in choice) == n for j in range(4)):
            best = max(best, sum(block[4 * i + j] for i, row in enumerate(choice) for j in row))
    return best


def self_test():
    require("numpy", "numpy")
    passed = failed = 0
    gen = torch.Generator().manual_seed(11)
    for n, count in ((1, 24), (2, 90), (3, 24)):
        pats = patterns(n)
        ok = pats.shape == (count, 16) and bool((pats.reshape(-1, 4, 4).sum(1) == n).all()) and \
            bool((pats.reshape(-1, 4, 4).sum(2) == n).all())
        passed, failed = passed + ok, failed + (not ok)
        if not ok:
            print(f"FAIL {n}:4: {pats.shape[0]} patterns, expected {count}")
        for kind in ("random", "quantised", "zeros", "all equal"):
            if kind == "random":
                w = torch.randn(16, 24, generator=gen)
            elif kind == "quantised":
                w = torch.randint(-3, 4, (16, 24), generator=gen).float() * 0.25
            elif kind == "zeros":
                w = torch.zeros(16, 24)
            else:
                w = torch.full((16, 24), -0.5)
            keep = solve(w, pats)
            bad = 0
            for r0 in range(0, 16, 4):
                for c0 in range(0, 24, 4):
                    blk = w[r0:r0 + 4, c0:c0 + 4].abs().double()
                    k = keep[r0:r0 + 4, c0:c0 + 4]
                    valid = bool((k.sum(0) == n).all()) and bool((k.sum(1) == n).all())
                    got = float(blk[k].sum())
                    best = brute_force_best(blk.reshape(-1).tolist(), n)
                    bad += (not valid) or got < best - 1e-6 * max(best, 1.0)
            passed, failed = passed + (bad == 0), failed + (bad != 0)
            if bad:
                print(f"FAIL {n}:4 {kind}: {bad} blocks invalid or below the brute-force optimum")
    print(f"{passed} passed, {failed} failed")
    return failed == 0


def main():
    if "--self-test" in sys.argv[1:]:
        if torch is None:
            print("skipped: torch is not installed (pip install torch)")
            print("0 passed, 0 failed")
            return
        sys.exit(0 if self_test() else 1)
    args = parse_args(__doc__)
    np = require("numpy", "numpy")
    require("torch", "torch")
    if args.m != 4 or args.rows % 4 or args.cols % 4:
        print("skipped: this peer solves n:4 on rows and cols that are multiples of 4")
        return
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    w = torch.from_numpy(np.fromfile(args.input, dtype=np.float32, count=args.rows * args.cols)
                         .reshape(args.rows, args.cols)).to(dev)
    pats = patterns(args.n, dev)
    times = []
    for rep in range(12):
        if dev == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            keep = solve(w, pats)
            end.record()
            torch.cuda.synchronize()
            seconds = start.elapsed_time(end) * 1e-3
        else:
            t0 = time.perf_counter()
            keep = solve(w, pats)
            seconds = time.perf_counter() - t0
        if rep >= 2:
            times.append(seconds)
    keep.to(torch.uint8).cpu().numpy().tofile(args.out)
    print(f"note: {pats.shape[0]} patterns, device {dev}, torch {torch.__version__}")
    report(sorted(times)[len(times) // 2], (args.rows // 4) * (args.cols // 4))


if __name__ == "__main__":
    main()
