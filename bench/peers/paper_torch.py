"""The TSENOR paper's algorithm written straightforwardly in PyTorch, batched over all
blocks: Dykstra in log space (row and column log-sum-exp normalisation to n, clip at 1
with the correction term), 100 iterations at tau = 0.01 of the block max (no
annealing); greedy rounding in descending plan order; a simple repair (add an entry in
a short row and a short column when one is free); 2x2-swap local search, 10 steps.
Runs on CUDA when available, else on the CPU. solve() is also the projection of
prune_torch.py."""
import math
import time

from common import load_abs_blocks, parse_args, report, require, write_mask

try:
    import torch
except ImportError:   # main() says so
    torch = None

ITERS, TAU, LS_STEPS = 100, 0.01, 10


def solve(a, n, m):
    """a: |W| as (blocks, m, m); returns the n:m transposable selection, boolean."""
    B = a.shape[0]
    a = a / a.amax(dim=(1, 2), keepdim=True).clamp_min(1e-30)
    logx = a / TAU
    logq = torch.zeros_like(logx)
    logn = math.log(n)
    for _ in range(ITERS):
        logx = logx - torch.logsumexp(logx, dim=2, keepdim=True) + logn
        logx = logx - torch.logsumexp(logx, dim=1, keepdim=True) + logn
        y = logx + logq
        logx = torch.clamp(y, max=0.0)
        logq = y - logx
    plan = logx.exp().reshape(B, m * m)

    # greedy in descending plan order, vectorised over blocks
    order = torch.argsort(plan, dim=1, descending=True, stable=True)
    sel = torch.zeros(B, m * m, dtype=torch.bool, device=a.device)
    rc = torch.zeros(B, m, dtype=torch.int32, device=a.device)
    cc = torch.zeros(B, m, dtype=torch.int32, device=a.device)
    ar = torch.arange(B, device=a.device)
    for step in range(m * m):
        idx = order[:, step]
        i, j = idx // m, idx % m
        ok = (rc[ar, i] < n) & (cc[ar, j] < n)
        b = ar[ok]
        sel[b, idx[ok]] = True
        rc[b, i[ok]] += 1
        cc[b, j[ok]] += 1
    sel = sel.reshape(B, m, m)

    # repair: add an entry between a short row and a short column when it is free,
    # otherwise the add-add-remove swap (i,j'),(i',j) in, (i',j') out
    for _ in range(m * m):
        rs, cs = sel.sum(2), sel.sum(1)
        short = (rs < n).any(1)
        if not short.any():
            break
        cand = (rs < n).unsqueeze(2) & (cs < n).unsqueeze(1) & ~sel
        score = torch.where(cand, a, torch.full_like(a, -1.0)).reshape(B, m * m)
        best = score.argmax(dim=1)
        direct = score.gather(1, best[:, None])[:, 0] >= 0
        flat = sel.reshape(B, m * m)
        flat[ar[direct], best[direct]] = True
        swap = short & ~direct
        if swap.any():
            b = ar[swap]
            i = (rs[b] < n).int().argmax(1)
            j = (cs[b] < n).int().argmax(1)
            s_b = sel[b]
            row_i = s_b[torch.arange(len(b)), i]                 # (k, m) over j'
            col_j = s_b[torch.arange(len(b)), :, j]              # (k, m) over i'
            ok = s_b & ~row_i.unsqueeze(1) & ~col_j.unsqueeze(2)  # [i', j']
            a_b = a[b]
            gain = a_b[torch.arange(len(b)), i].unsqueeze(1) + a_b[torch.arange(len(b)), :, j].unsqueeze(2) - a_b
            gain = torch.where(ok, gain, torch.full_like(gain, -1e30)).reshape(len(b), m * m)
            pick = gain.argmax(1)
            i2, j2 = pick // m, pick % m
            sel[b, i, j2] = True
            sel[b, i2, j] = True
            sel[b, i2, j2] = False

    # local search: best 2x2 swap per block per step
    for _ in range(LS_STEPS):
        d = a.unsqueeze(1) - a.unsqueeze(2)                 # d[b,i,k,j] = a[b,k,j] - a[b,i,j]
        si, sk = sel.unsqueeze(2), sel.unsqueeze(1)
        only_i, only_k = si & ~sk, sk & ~si
        g1, j1 = torch.where(only_i, d, torch.full_like(d, -1e30)).max(dim=3)
        g2, j2 = torch.where(only_k, d, torch.full_like(d, 1e30)).min(dim=3)
        gain = (g1 - g2).reshape(B, m * m)
        best = gain.argmax(dim=1)
        ok = gain.gather(1, best[:, None])[:, 0] > 1e-6
        if not ok.any():
            break
        b = ar[ok]
        i, k = best[ok] // m, best[ok] % m
        ja = j1.reshape(B, m * m)[b, best[ok]]
        jb = j2.reshape(B, m * m)[b, best[ok]]
        sel[b, i, ja] = False
        sel[b, k, ja] = True
        sel[b, k, jb] = False
        sel[b, i, jb] = True
    return sel


def main():
    args = parse_args(__doc__)
    np = require("numpy", "numpy")
    require("torch", "torch")
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    a = torch.from_numpy(load_abs_blocks(np, args)).to(dev)
    if dev == "cuda":
        solve(a[:64], args.n, args.m)                      # warm-up
        torch.cuda.synchronize()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    t0 = time.perf_counter()
    sel = solve(a, args.n, args.m)
    if dev == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    write_mask(np, args, sel.to(torch.uint8).cpu().numpy())
    report(seconds, a.shape[0])


if __name__ == "__main__":
    main()
