"""PyTorch's own transposable 2:4 tile kernel, torch._sparse_semi_structured_tile (the
kernel behind PyTorch's 2:4 sparse training), on bf16 with algorithm
"largest_abs_values_greedy": per 4x4 tile the largest |w| first while its row and column
keep fewer than 2, so some rows and columns can end with fewer than 2. It returns the
kept values packed for both orientations and the tile masks ("thread masks");
torch._sparse_semi_structured_apply_dense(ones, thread_masks) is 1 exactly where a weight
was kept, which is the mask written here. Time = the tile call alone, CUDA events,
median of 20 after three warm-ups. 2:4 only; needs CUDA (skipped with the reason
otherwise)."""
from common import parse_args, report, require

ALGORITHM = "largest_abs_values_greedy"


def main():
    args = parse_args(__doc__)
    np = require("numpy", "numpy")
    torch = require("torch", "torch")
    if (args.n, args.m) != (2, 4):
        print("skipped: the tile kernel is 2:4 only")
        return
    if not torch.cuda.is_available():
        print("skipped: torch sees no CUDA device (the tile kernel runs on CUDA only)")
        return
    if not hasattr(torch, "_sparse_semi_structured_tile") or not hasattr(torch, "_sparse_semi_structured_apply_dense"):
        print(f"skipped: torch {torch.__version__} has no _sparse_semi_structured_tile")
        return
    w = np.fromfile(args.input, dtype=np.float32, count=args.rows * args.cols).reshape(args.rows, args.cols)
    x = torch.from_numpy(w).to("cuda").to(torch.bfloat16).contiguous()
    try:
        out = torch._sparse_semi_structured_tile(x, algorithm=ALGORITHM, use_cutlass=True)
    except RuntimeError as e:
        print(f"skipped: torch._sparse_semi_structured_tile failed: {str(e).splitlines()[0][:100]}")
        return
    times = []
    for rep in range(23):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = torch._sparse_semi_structured_tile(x, algorithm=ALGORITHM, use_cutlass=True)
        end.record()
        torch.cuda.synchronize()
        if rep >= 3:
            times.append(start.elapsed_time(end) * 1e-3)
    thread_masks = out[4]
    keep = torch._sparse_semi_structured_apply_dense(torch.ones_like(x), thread_masks) != 0
    keep.to(torch.uint8).cpu().numpy().tofile(args.out)
    print(f"note: algorithm {ALGORITHM}, use_cutlass=True, torch {torch.__version__}")
    report(sorted(times)[len(times) // 2], (args.rows // 4) * (args.cols // 4))


if __name__ == "__main__":
    main()
