"""ALPS in plain NumPy (OpenBLAS for the products, LAPACK through numpy.linalg), with
tsenor.mask as the projection onto the N:M set: the peer that tsenor_prune_f32's CPU
ALPS is timed against on the MiniLM layers (bench/minilm/layer_errors.py).

The steps, options and defaults are tsenor.h's:
  - H symmetrised; dead inputs (H_jj = 0) get H_jj = 1 and their weights are dropped;
    damping * mean diagonal added to the diagonal (damping 0.01);
  - the problem scaled to a unit diagonal: Hn = S^-1 H S^-1, W0 = W S, S = sqrt(diag H);
  - ADMM from D = P(W0), V = 0, rho = 0.03:
        B = (W0 Hn - V + rho D)(Hn + rho I)^-1
        D = P(B + V / rho)
        V = V + rho (B - D)
    every 3 iterations: stop when the support did not change since the last check and
    |B - D| <= 1e-3 |D|; else rho x1.3 / x1.2 / x1.1 when more than 10% / 0.5% / less of
    the kept entries changed; 300 iterations at most;
  - conjugate gradients (10 at most; stop once the summed |r|^2 fell by 1e-8) on the
    final support, row by row, from D;
  - W^ = D S^-1 on the support.

The solves: Hn = Q diag(lam) Q^T once (numpy.linalg.eigh, float64), then
(Hn + rho I)^-1 = Q diag(1 / (lam + rho)) Q^T formed whenever rho changes (one n x n x n
product), and each iteration is one rows x n x n product. (Applying the eigenbasis on
every iteration instead, two rows x n x n products and no inverse, was no faster on
any MiniLM shape: 65 against 55 ms per iteration on 384 x 1536 at 16:32, the projection
left out; the same on the others.) Matrices are float32 like the C library's; sums that
decide (gap, CG dot products) are float64.

    from bench.peers.alps_numpy import alps
    w_new, keep, info = alps(w, gram, 16, 32)            # transposable 16:32 (TSENOR)
    w_new, keep, info = alps(w, gram, 2, 4, method="rowwise")
"""
import time

import numpy as np

import tsenor

DAMPING = 0.01
RHO = 0.03
ITERATIONS = 300
CG_ITERATIONS = 10
CG_TOL = 1e-8
CHECK_EVERY = 3
GAP = 1e-3


def prepare(gram, damping=DAMPING):
    """(Hn float32 with unit diagonal, scale = sqrt of the damped diagonal, dead mask)."""
    h = np.array(gram, dtype=np.float64)
    h = 0.5 * (h + h.T)
    diag = np.diagonal(h).copy()
    dead = diag == 0
    diag[dead] = 1.0
    diag += damping * diag.mean()
    np.fill_diagonal(h, diag)
    scale = np.sqrt(diag)
    hn = h / scale[:, None] / scale[None, :]
    np.fill_diagonal(hn, 1.0)
    return hn.astype(np.float32), scale, dead


class _Solver:
    """X -> X (Hn + rho I)^-1 for the current rho: Hn = Q diag(lam) Q^T once, and for
    every rho the inverse Q diag(1 / (lam + rho)) Q^T (one n x n x n product), so that
    an iteration costs one rows x n x n product."""

    def __init__(self, hn):
        lam, q = np.linalg.eigh(hn.astype(np.float64))
        self.lam, self.q = lam, q.astype(np.float32)
        self.qt = np.ascontiguousarray(self.q.T)
        self.inverse = None

    def set_rho(self, rho):
        factor = (1.0 / (self.lam + rho)).astype(np.float32)
        self.inverse = (self.q * factor[None, :]) @ self.qt

    def solve(self, x):
        return x @ self.inverse


def alps(w, gram, n, m, method="tsenor", damping=DAMPING, rho=RHO, iterations=ITERATIONS,
         cg_iterations=CG_ITERATIONS, threads=None):
    """(W^ float32, keep bool, info) for W (rows x cols) and H = gram (cols x cols).
    method is tsenor.mask's ("tsenor", "exact", "greedy" or "rowwise"); threads goes to
    tsenor.mask (the products use OpenBLAS's own thread count). info: seconds,
    iterations, cg_iterations, projections, projection_seconds, factor_seconds (the
    eigendecomposition and the inverses), rho (the last)."""
    start = time.perf_counter()
    proj = {"seconds": 0.0, "calls": 0}

    def project(x):
        t0 = time.perf_counter()
        keep = tsenor.mask(x, n, m, method=method, threads=threads)
        proj["seconds"] += time.perf_counter() - t0
        proj["calls"] += 1
        return keep

    w = np.asarray(w, dtype=np.float32)
    hn, scale, dead = prepare(gram, damping)
    scale32 = scale.astype(np.float32)
    w0 = np.where(dead[None, :], np.float32(0), w * scale32[None, :]).astype(np.float32)
    g = w0 @ hn

    t0 = time.perf_counter()
    solver = _Solver(hn)
    solver.set_rho(rho)
    factor_seconds = time.perf_counter() - t0

    keep = project(w0)
    d = np.where(keep, w0, np.float32(0))
    v = np.zeros_like(w0)
    ref = keep
    done = 0
    for it in range(iterations):
        frho = np.float32(rho)
        b = solver.solve(g - v + frho * d)
        d = b + v * np.float32(1.0 / rho)
        keep = project(d)
        d = np.where(keep, d, np.float32(0))
        diff = b - d
        v += frho * diff
        done = it + 1
        if done % CHECK_EVERY == 0:
            changed = int(np.count_nonzero(keep != ref))
            kept = int(np.count_nonzero(keep))
            ref = keep
            gap = float(np.square(diff, dtype=np.float64).sum())
            size = float(np.square(d, dtype=np.float64).sum())
            if changed == 0 and gap <= GAP * GAP * size:
                break
            moved = changed / kept if kept else 1.0
            rho *= 1.3 if moved > 0.1 else 1.2 if moved > 0.005 else 1.1
            if done < iterations:
                t0 = time.perf_counter()
                solver.set_rho(rho)
                factor_seconds += time.perf_counter() - t0

    # conjugate gradients on the support, every row its own system, from x = D
    x = d
    cg_done = 0
    if cg_iterations > 0:
        res = np.where(keep, g - x @ hn, np.float32(0))
        p = res.copy()
        rs = np.square(res, dtype=np.float64).sum(axis=1)
        total0 = float(rs.sum())
        for k in range(cg_iterations):
            if not total0 > 0.0:
                break
            q = np.where(keep, p @ hn, np.float32(0))
            pq = np.einsum("ij,ij->i", p.astype(np.float64), q.astype(np.float64))
            alpha = np.divide(rs, pq, out=np.zeros_like(rs), where=pq > 0).astype(np.float32)
            x = x + alpha[:, None] * p
            res = res - alpha[:, None] * q
            rs_new = np.square(res, dtype=np.float64).sum(axis=1)
            beta = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 0).astype(np.float32)
            p = res + beta[:, None] * p
            rs = rs_new
            cg_done = k + 1
            if rs.sum() <= CG_TOL * total0:
                break
    w_new = np.where(keep, x / scale32[None, :], np.float32(0)).astype(np.float32)
    info = {"seconds": time.perf_counter() - start, "iterations": done, "cg_iterations": cg_done,
            "projections": proj["calls"], "projection_seconds": proj["seconds"],
            "factor_seconds": factor_seconds, "rho": rho}
    return w_new, keep, info
