"""ASP-style 2-D greedy (as in NVIDIA apex's m4n2_2d_greedy, generalised to n:m),
vectorised over blocks with NumPy: every block's entries in descending |w|, each taken
while its row and column have budget left. No repair: rows may end short, as in ASP."""
import time

from common import load_abs_blocks, parse_args, report, require, write_mask

args = parse_args(__doc__)
np = require("numpy", "numpy")
a = load_abs_blocks(np, args)
B, m, n = a.shape[0], args.m, args.n

t0 = time.perf_counter()
flat = a.reshape(B, m * m)
order = np.argsort(-flat, axis=1, kind="stable")
mask = np.zeros((B, m * m), dtype=np.uint8)
rc = np.zeros((B, m), dtype=np.int32)
cc = np.zeros((B, m), dtype=np.int32)
ar = np.arange(B)
for step in range(m * m):
    idx = order[:, step]
    i, j = idx // m, idx % m
    ok = (rc[ar, i] < n) & (cc[ar, j] < n)
    b = ar[ok]
    mask[b, idx[ok]] = 1
    rc[b, i[ok]] += 1
    cc[b, j[ok]] += 1
seconds = time.perf_counter() - t0

write_mask(np, args, mask.reshape(B, m, m))
report(seconds, B)
