"""Exact transposable mask per block as a min-cost flow with networkx, the way Hubara et
al. (2021) pose it: source -> row (capacity n), row -> column (capacity 1, cost -|w|),
column -> sink (capacity n). Costs are scaled to integers (network simplex needs them).
Solves as many blocks as fit in ~60 s; the rest are marked unsolved."""
import time

from common import load_abs_blocks, parse_args, report, require, write_mask

args = parse_args(__doc__)
np = require("numpy", "numpy")
nx = require("networkx", "networkx")
a = load_abs_blocks(np, args)
B, m, n = a.shape[0], args.m, args.n
mask = np.zeros((B, m, m), dtype=np.uint8)
solved = np.zeros(B, dtype=bool)

t0 = time.perf_counter()
for b in range(B):
    scale = 1e9 / max(float(a[b].max()), 1e-30)
    g = nx.DiGraph()
    g.add_node("s", demand=-m * n)
    g.add_node("t", demand=m * n)
    for i in range(m):
        g.add_edge("s", ("r", i), capacity=n, weight=0)
        g.add_edge(("c", i), "t", capacity=n, weight=0)
        for j in range(m):
            g.add_edge(("r", i), ("c", j), capacity=1, weight=-int(round(a[b, i, j] * scale)))
    flow = nx.min_cost_flow(g)
    for i in range(m):
        for j, f in flow[("r", i)].items():
            if f:
                mask[b, i, j[1]] = 1
    solved[b] = True
    if time.perf_counter() - t0 > 60:
        break
seconds = time.perf_counter() - t0

write_mask(np, args, mask, solved)
report(seconds, int(solved.sum()))
