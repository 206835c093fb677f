"""prune_layer and gram on torch CUDA tensors (skipped without a GPU), and the CUDA
entry points' behaviour without one. On a GPU machine: TSENOR_CUDA=1 pip install ./python;
python3 -m pytest python/tests -k cuda"""
import json

import numpy as np
import pytest

import tsenor
from tsenor import _core
from conftest import assert_valid, weights

torch = pytest.importorskip("torch")
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device for torch")
cuda_build = pytest.mark.skipif(not tsenor.CUDA_BUILT, reason="tsenor was built without the CUDA backend")
OPTIONS = (2, 4, "tsenor", 0, 0.0, 0)                 # n, m and the mask solver's keywords
ALPS = ("alps", 0.0, 0, 0, 0.0)                        # method, damping, iterations, cg_iterations, rho
FAKE = 1 << 20                                         # never dereferenced: the device check comes first


def layer(rows, cols, seed=0):
    rng = np.random.default_rng(seed + 50)
    mix = rng.standard_normal((cols, cols)) / np.sqrt(cols) + np.eye(cols)
    x = (rng.standard_normal((2 * cols, cols)) @ mix).astype(np.float32)
    return weights(rows, cols, seed), x


# ---- without a GPU ----------------------------------------------------------------------

@cuda_build
def test_cuda_build_without_a_device_prune_and_gram_say_so():
    if _core.cuda_device_count() > 0:
        pytest.skip("a CUDA device is present")
    with pytest.raises(RuntimeError, match=r"GPU device error"):
        _core.prune_device(FAKE, 8, 8, 8, FAKE * 2, 8, FAKE * 3, 8, FAKE * 4, 8, 0, 0, *OPTIONS, *ALPS)
    with pytest.raises(RuntimeError, match=r"GPU device error"):
        _core.gram_device(FAKE, 16, 8, 8, FAKE * 2, 8, 0, 0)


@cuda_build
def test_cuda_entry_points_check_arguments_before_the_device():
    with pytest.raises(ValueError, match="no gram: only method 'magnitude'"):
        _core.prune_device(FAKE, 8, 8, 8, 0, 0, FAKE * 3, 8, FAKE * 4, 8, 0, 0, *OPTIONS, *ALPS)
    with pytest.raises(ValueError, match="rows=0"):
        _core.prune_device(FAKE, 0, 8, 8, FAKE * 2, 8, FAKE * 3, 8, FAKE * 4, 8, 0, 0, *OPTIONS, *ALPS)
    with pytest.raises(ValueError, match="unknown pruning method"):
        _core.prune_device(FAKE, 8, 8, 8, FAKE * 2, 8, FAKE * 3, 8, FAKE * 4, 8, 0, 0, *OPTIONS, "obs", 0.0, 0, 0, 0.0)
    with pytest.raises(ValueError, match="tokens=0"):
        _core.gram_device(FAKE, 0, 8, 8, FAKE * 2, 8, 0, 0)


def test_cuda_entry_points_without_the_cuda_backend_say_so():
    if tsenor.CUDA_BUILT:
        pytest.skip("this build has the CUDA backend")
    with pytest.raises(RuntimeError, match="built without CUDA"):
        _core.prune_device(FAKE, 8, 8, 8, FAKE * 2, 8, FAKE * 3, 8, FAKE * 4, 8, 0, 0, *OPTIONS, *ALPS)
    with pytest.raises(RuntimeError, match="built without CUDA"):
        _core.gram_device(FAKE, 16, 8, 8, FAKE * 2, 8, 0, 0)


@gpu
def test_cuda_tensors_without_the_cuda_backend():
    if tsenor.CUDA_BUILT:
        pytest.skip("this build has the CUDA backend")
    w = torch.ones(8, 8, device="cuda")
    with pytest.raises(RuntimeError, match="built without CUDA"):
        tsenor.prune_layer(w, torch.eye(8, device="cuda"), 2, 4)
    with pytest.raises(RuntimeError, match="built without CUDA"):
        tsenor.gram(w)


# ---- on a GPU ---------------------------------------------------------------------------

def gpu_test(f):
    return gpu(cuda_build(f))


@gpu_test
@pytest.mark.parametrize("method", tsenor.PRUNE_METHODS)
@pytest.mark.parametrize("n,m", [(2, 4), (8, 16), (16, 32)])
def test_cuda_prune_is_the_cpus_up_to_rounding(method, n, m):
    w, x = layer(6 * m, 8 * m, seed=m)
    gram = tsenor.gram(x)
    dw, dgram = torch.from_numpy(w).cuda(), torch.from_numpy(gram).cuda()
    pruned, keep, report = tsenor.prune_layer(dw, dgram, n, m, method=method)
    assert pruned.device == dw.device and keep.device == dw.device
    assert pruned.dtype == torch.float32 and keep.dtype == torch.bool and tuple(pruned.shape) == w.shape
    assert report.backend == "cuda"
    assert_valid(keep, n, m)
    assert not pruned[~keep].any()
    cpu = tsenor.prune_layer(w, gram, n, m, method=method)
    if method in ("magnitude", "wanda"):     # the same scores give the CPU's mask, weights kept
        assert np.array_equal(keep.cpu().numpy(), cpu[1]) and np.array_equal(pruned.cpu().numpy(), cpu[0])
    # the tolerances of tests/test_cuda_prune.c: other rounding (cuBLAS sums; TF32 tensor
    # cores in ALPS) flips near-tied mask choices and ALPS may settle on another support
    tolerance = 0.06 if method == "alps" else 0.02
    assert abs(report.error - cpu[2].error) <= tolerance * cpu[2].error + 1e-4


@gpu_test
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cuda_half_precision_comes_back_in_its_dtype(dtype):
    w, x = layer(64, 128, seed=3)
    dw = torch.from_numpy(w).cuda().to(getattr(torch, dtype))
    pruned, keep, _ = tsenor.prune_layer(dw, tsenor.gram(torch.from_numpy(x).cuda()), 8, 16, method="sparsegpt")
    assert pruned.dtype == dw.dtype and pruned.device == dw.device
    assert_valid(keep, 8, 16)


@gpu_test
@pytest.mark.parametrize("mask_method,n,m", [("exact", 16, 64), ("exact", 20, 40)])
def test_cuda_exact_above_32_prunes_on_the_cpu_and_comes_back(mask_method, n, m):
    w, x = layer(2 * m, 3 * m, seed=5)
    gram = tsenor.gram(x)
    pruned, keep, report = tsenor.prune_layer(torch.from_numpy(w).cuda(), torch.from_numpy(gram).cuda(), n, m,
                                              mask_method=mask_method, method="sparsegpt")
    assert pruned.device.type == "cuda" and keep.device.type == "cuda" and report.backend != "cuda"
    expected = tsenor.prune_layer(w, gram, n, m, mask_method=mask_method, method="sparsegpt")
    assert np.array_equal(pruned.cpu().numpy(), expected[0]) and np.array_equal(keep.cpu().numpy(), expected[1])


@gpu_test
@pytest.mark.parametrize("method", ["sparsegpt", "alps"])
@pytest.mark.parametrize("mask_method,n,m,rows,cols", [("exact", 8, 16, 96, 128), ("tsenor", 32, 64, 128, 192)])
def test_cuda_exact_and_large_m_prune_on_the_gpu(method, mask_method, n, m, rows, cols):
    # EXACT up to m = 32 projects on the GPU (the CPU's per-block optimum), TSENOR up to
    # m = 64 (a CTA per block): the error the CPU's pruning reaches, to rounding
    w, x = layer(rows, cols, seed=m)
    gram = tsenor.gram(x)
    pruned, keep, report = tsenor.prune_layer(torch.from_numpy(w).cuda(), torch.from_numpy(gram).cuda(), n, m,
                                              method=method, mask_method=mask_method)
    assert report.backend == "cuda" and pruned.device.type == "cuda" and keep.device.type == "cuda"
    assert_valid(keep, n, m)
    cpu = tsenor.prune_layer(w, gram, n, m, method=method, mask_method=mask_method)[2]
    assert abs(report.error - cpu.error) <= 0.06 * cpu.error + 1e-4


@gpu_test
def test_cuda_gram_accumulates_on_the_device():
    _, x = layer(8, 96, seed=6)
    dx = torch.from_numpy(x).cuda()
    h = tsenor.gram(dx[:100])
    assert h.device == dx.device and h.dtype == torch.float32
    assert tsenor.gram(dx[100:].reshape(2, -1, 96), h) is h
    expected = x.astype(np.float64).T @ x
    assert np.allclose(h.cpu().numpy(), expected, rtol=1e-4, atol=1e-3 * np.abs(expected).max())
    assert torch.equal(h, h.t())
    assert torch.equal(tsenor.gram(dx.half()), tsenor.gram(dx.half().float()))


@gpu_test
def test_cuda_strided_inputs():
    w, x = layer(64, 96, seed=7)
    gram = torch.from_numpy(tsenor.gram(x)).cuda()
    wide = torch.zeros(64, 128, device="cuda")
    wide[:, :96] = torch.from_numpy(w).cuda()
    expected = tsenor.prune_layer(wide[:, :96].contiguous(), gram, 8, 16, method="magnitude")
    for view in (wide[:, :96], wide[:, :96].t().contiguous().t()):
        got = tsenor.prune_layer(view, gram, 8, 16, method="magnitude")
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


@gpu_test
def test_cuda_bad_input_raises_and_writes_nothing():
    w, x = layer(32, 64, seed=8)
    dw, dgram = torch.from_numpy(w).cuda(), torch.from_numpy(tsenor.gram(x)).cuda()
    with pytest.raises(ValueError, match="both must be on one device"):
        tsenor.prune_layer(dw, dgram.cpu(), 4, 8)
    with pytest.raises(ValueError, match="gram is 32 x 32"):
        tsenor.prune_layer(dw, dgram[:32, :32].contiguous(), 4, 8)
    with pytest.raises(ValueError, match="gram has dtype"):
        tsenor.prune_layer(dw, dgram.double(), 4, 8)
    dw[3, 4] = float("nan")
    before = dw.clone()
    with pytest.raises(ValueError, match="input holds NaN or infinity"):
        tsenor.prune_layer(dw, dgram, 4, 8)
    assert torch.equal(dw.view(torch.int32), before.view(torch.int32))
    out = torch.full((64, 64), 2.0, device="cuda")
    dx = torch.from_numpy(x).cuda()
    dx[5, 6] = float("inf")
    with pytest.raises(ValueError, match="input holds NaN or infinity"):
        tsenor.gram(dx, out)
    assert (out == 2.0).all()
    for bad, match in ((torch.zeros(64, 128, device="cuda")[:, ::2], "unit inner stride"),
                       (torch.zeros(64, 32, device="cuda"), "cols x cols"),
                       (torch.zeros(64, 64), "both must be on one device"),
                       (torch.zeros(64, 64, device="cuda", dtype=torch.float16), "dense torch.float32")):
        with pytest.raises(ValueError, match=match):
            tsenor.gram(torch.from_numpy(x).cuda(), bad)
        assert not bad.any()


@gpu_test
def test_cuda_prune_on_a_non_default_stream_sees_the_work_queued_before():
    w, x = layer(256, 256, seed=9)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        dw = torch.from_numpy(w).cuda() * 3.0 + 1.0        # queued on `stream`
        dgram = tsenor.gram(torch.from_numpy(x).cuda() * 2.0)
        pruned, keep, _ = tsenor.prune_layer(dw, dgram, 8, 16, method="magnitude")
        stream.synchronize()
    expected = tsenor.prune_layer(w * 3.0 + 1.0, None, 8, 16, method="magnitude")
    assert np.array_equal(keep.cpu().numpy(), expected[1]) and np.array_equal(pruned.cpu().numpy(), expected[0])


@gpu_test
def test_cuda_prune_leaves_the_current_device_alone():
    w, x = layer(64, 64, seed=10)
    current = torch.cuda.current_device()
    for index in range(torch.cuda.device_count()):
        device = torch.device("cuda", index)
        pruned, keep, _ = tsenor.prune_layer(torch.from_numpy(w).to(device), tsenor.gram(torch.from_numpy(x).to(device)),
                                             4, 8, method="wanda")
        assert pruned.device == device and keep.device == device
        assert torch.cuda.current_device() == current


def copied_bytes(trace_file):
    """Bytes of host<->device copies in a torch.profiler Chrome trace."""
    with open(trace_file) as f:
        events = json.load(f)["traceEvents"]
    total = 0
    for e in events:
        name = e.get("name", "")
        if e.get("cat") == "gpu_memcpy" and ("DtoH" in name or "HtoD" in name):
            total += int(e.get("args", {}).get("bytes", 0))
    return total


@gpu_test
def test_cuda_prune_and_gram_never_copy_the_tensors_to_the_host(tmp_path):
    from torch.profiler import ProfilerActivity, profile
    w, x = layer(1024, 1024, seed=11)
    dw, dx = torch.from_numpy(w).cuda(), torch.from_numpy(x).cuda()
    tensor_bytes = w.nbytes
    tsenor.prune_layer(dw, tsenor.gram(dx), 8, 16, method="sparsegpt")   # warm up (cuBLAS handles)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as control:
        dw.cpu()
        torch.cuda.synchronize()
    control.export_chrome_trace(str(tmp_path / "control.json"))
    assert copied_bytes(tmp_path / "control.json") >= tensor_bytes, "the profiler does not see copies here"
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as run:
        h = tsenor.gram(dx)
        for method in tsenor.PRUNE_METHODS:
            tsenor.prune_layer(dw, h, 8, 16, method=method)
        torch.cuda.synchronize()
    run.export_chrome_trace(str(tmp_path / "run.json"))
    # the library copies flags and scalars (a few bytes each), never a matrix
    assert copied_bytes(tmp_path / "run.json") < tensor_bytes // 64
