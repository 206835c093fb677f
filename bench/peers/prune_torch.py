"""Plain PyTorch ALPS and SparseGPT, the peers of bench/bench_cuda_prune.c, with the
steps and defaults of tsenor.h's CPU version: damping relative to the mean diagonal
(dead inputs get H_jj = 1), and
  ALPS: H scaled to a unit diagonal, one eigendecomposition (torch.linalg.eigh), ADMM
        B = (W0 H - V + rho D)(H + rho I)^-1 by the eigenbasis, D the projection of
        B + V/rho, rho x1.3 / 1.2 / 1.1 every 3 iterations by how much the support moved,
        stop when it held; then CG on the support;
  SparseGPT: U = upper Cholesky factor of H^-1, columns pruned left to right in blocks
        of 128 with lazy updates, the mask of every M-column slab chosen on w^2 / U_jj^2.
The transposable projection is the TSENOR paper's algorithm in PyTorch (paper_torch.py:
Dykstra, greedy, repair, local search); row-wise keeps the top n of every m in a row.
Reads W (rows x cols) and H (cols x cols) as raw float32, writes W^ as raw float32, and
prints "seconds S iterations I error E" (error tr(D H D^T) / tr(W H W^T) in float64).
Runs on CUDA when available, else on the CPU."""
import argparse
import sys
import time

from common import require

p = argparse.ArgumentParser(description=__doc__)
p.add_argument("--w", required=True)
p.add_argument("--h", required=True)
p.add_argument("--rows", type=int, required=True)
p.add_argument("--cols", type=int, required=True)
p.add_argument("--n", type=int, required=True)
p.add_argument("--m", type=int, required=True)
p.add_argument("--method", choices=["alps", "sparsegpt"], required=True)
p.add_argument("--pattern", choices=["transposable", "rowwise"], required=True)
p.add_argument("--rho", type=float, default=0.1)
p.add_argument("--iterations", type=int, default=300)
p.add_argument("--cg", type=int, default=50)
p.add_argument("--damping", type=float, default=0.01)
p.add_argument("--out", required=True)
args = p.parse_args()
np = require("numpy", "numpy")
torch = require("torch", "torch")
import paper_torch  # noqa: E402  (needs torch, imported above)

dev = "cuda" if torch.cuda.is_available() else "cpu"
R, C, n, m = args.rows, args.cols, args.n, args.m
if R % m or C % m:
    print("skipped: the peer needs rows and cols that are multiples of m")
    sys.exit(0)


def project(x):
    """0/1 mask (float) of |x| (r x c, multiples of m) in the chosen N:M set."""
    a = x.abs()
    r, c = a.shape
    if args.pattern == "rowwise":
        g = a.reshape(r, c // m, m)
        keep = torch.zeros_like(g)
        keep.scatter_(2, g.topk(n, dim=2).indices, 1.0)
        return keep.reshape(r, c)
    blocks = a.reshape(r // m, m, c // m, m).permute(0, 2, 1, 3).reshape(-1, m, m)
    sel = paper_torch.solve(blocks, n, m).to(x.dtype)
    return sel.reshape(r // m, c // m, m, m).permute(0, 2, 1, 3).reshape(r, c)


def damped(h):
    d = torch.diagonal(h)
    dead = d == 0
    h = 0.5 * (h + h.T)
    h[dead, dead] = 1.0
    mean = torch.where(dead, torch.ones_like(d), torch.diagonal(h)).mean()
    h = h + args.damping * mean * torch.eye(h.shape[0], device=h.device, dtype=h.dtype)
    return h, dead


def alps(w, h):
    h, dead = damped(h)
    scale = torch.sqrt(torch.diagonal(h))
    hn = h / scale[:, None] / scale[None, :]
    hn.fill_diagonal_(1.0)
    w0 = torch.where(dead[None, :], torch.zeros_like(w), w * scale[None, :])
    g = w0 @ hn
    lam, q = torch.linalg.eigh(hn)
    rho = args.rho
    mask = project(w0)
    d = w0 * mask
    v = torch.zeros_like(w0)
    ref = mask.clone()
    it = 0
    for it in range(1, args.iterations + 1):
        b = ((g - v + rho * d) @ q) / (lam + rho)[None, :] @ q.T
        d = b + v / rho
        mask = project(d)
        d = d * mask
        v = v + rho * (b - d)
        if it % 3 == 0:
            changed = (mask != ref).sum().item()
            kept = mask.sum().item()
            ref = mask.clone()
            if changed == 0:
                break
            moved = changed / kept if kept else 1.0
            rho *= 1.3 if moved > 0.1 else 1.2 if moved > 0.005 else 1.1
    x = d
    res = (g - x @ hn) * mask
    pdir = res.clone()
    rs = (res.double() ** 2).sum(1)
    total0 = rs.sum().item()
    for _ in range(args.cg if total0 > 0 else 0):
        qv = (pdir @ hn) * mask
        pq = (pdir.double() * qv.double()).sum(1)
        alpha = torch.where(pq > 0, rs / pq, torch.zeros_like(pq)).float()[:, None]
        x = x + alpha * pdir
        res = res - alpha * qv
        rs_new = (res.double() ** 2).sum(1)
        beta = torch.where(rs > 0, rs_new / rs, torch.zeros_like(rs)).float()[:, None]
        pdir = res + beta * pdir
        rs = rs_new
        if rs.sum().item() <= 1e-12 * total0:
            break
    return x * mask / scale[None, :], it


def sparsegpt(w, h):
    h, dead = damped(h)
    w = torch.where(dead[None, :], torch.zeros_like(w), w).clone()
    u = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    bs = 128 if m <= 128 else m
    for i1 in range(0, C, bs):
        i2 = min(i1 + bs, C)
        wb = w[:, i1:i2].clone()
        err = torch.zeros_like(wb)
        ub = u[i1:i2, i1:i2]
        for c0 in range(0, i2 - i1, m):
            d = torch.diagonal(ub)[c0:c0 + m]
            keep = project(wb[:, c0:c0 + m] ** 2 / (d ** 2)[None, :])
            for j in range(c0, c0 + m):
                col = wb[:, j]
                qv = col * keep[:, j - c0]
                e = (col - qv) / ub[j, j]
                wb[:, j:] -= e[:, None] * ub[j, j:][None, :]
                wb[:, j] = qv
                err[:, j] = e
        w[:, i1:i2] = wb
        w[:, i2:] -= err @ u[i1:i2, i2:]
    return w, 0


w = torch.from_numpy(np.fromfile(args.w, dtype=np.float32, count=R * C).reshape(R, C)).to(dev)
h = torch.from_numpy(np.fromfile(args.h, dtype=np.float32, count=C * C).reshape(C, C)).to(dev)
if dev == "cuda":
    project(w[:m * 4, :m * 4])   # warm-up
    torch.cuda.synchronize()
t0 = time.perf_counter()
what, iterations = alps(w, h) if args.method == "alps" else sparsegpt(w, h)
if dev == "cuda":
    torch.cuda.synchronize()
seconds = time.perf_counter() - t0
dd, wd, hd = (w - what).double(), w.double(), h.double()
den = ((wd @ hd) * wd).sum().item()
error = max(((dd @ hd) * dd).sum().item(), 0.0) / den if den > 0 else 0.0
what.cpu().numpy().astype(np.float32).tofile(args.out)
print(f"seconds {seconds:.6f} iterations {iterations} error {error:.8f}")
