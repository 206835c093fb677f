"""torch CUDA tensors (skipped without a GPU), and the CUDA build's behaviour without
one. On a GPU machine: TSENOR_CUDA=1 pip install ./python; python3 -m pytest python/tests -k cuda"""
import numpy as np
import pytest

import tsenor
from tsenor import _arrays, _core
from conftest import assert_valid, kept, weights

torch = pytest.importorskip("torch")
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device for torch")
cuda_build = pytest.mark.skipif(not tsenor.CUDA_BUILT, reason="tsenor was built without the CUDA backend")
PATTERNS = [(2, 4), (4, 8), (8, 16), (16, 32)]


def on_gpu(a, device="cuda"):
    return torch.from_numpy(a).to(device)


# ---- without a GPU ----------------------------------------------------------------

@cuda_build
def test_cuda_build_without_a_device_gives_cudas_text():
    if _core.cuda_device_count() > 0:
        pytest.skip("a CUDA device is present")
    fake = 1 << 20   # never dereferenced: the device check comes first
    with pytest.raises(RuntimeError, match=r"GPU device error: \S") as info:
        _core.mask_device(fake, _core.DTYPE_F32, 8, 8, 8, fake * 2, 8, 0, 0, 2, 4, "tsenor", 0, 0.0, 0)
    assert "cuda" in str(info.value).lower() or "device" in str(info.value).lower()


def test_cuda_entry_without_the_cuda_backend_says_so():
    if tsenor.CUDA_BUILT:
        pytest.skip("this build has the CUDA backend")
    with pytest.raises(RuntimeError, match="built without CUDA"):
        _core.mask_device(1, _core.DTYPE_F32, 8, 8, 8, 2, 8, 0, 0, 2, 4, "tsenor", 0, 0.0, 0)


@gpu
def test_cuda_tensors_without_the_cuda_backend():
    if tsenor.CUDA_BUILT:
        pytest.skip("this build has the CUDA backend")
    with pytest.raises(RuntimeError, match="built without CUDA"):
        tsenor.mask(torch.ones(8, 8, device="cuda"), 2, 4)


# ---- on a GPU ---------------------------------------------------------------------

needs_gpu = [gpu, cuda_build]


def gpu_test(f):
    for mark in needs_gpu:
        f = mark(f)
    return f


@gpu_test
@pytest.mark.parametrize("n,m", PATTERNS)
@pytest.mark.parametrize("method", ["tsenor", "greedy", "rowwise"])
def test_cuda_f32_masks_equal_cpu_masks(method, n, m):
    w = weights(8 * m, 12 * m, seed=m)
    keep = tsenor.mask(on_gpu(w), n, m, method=method)
    assert keep.device.type == "cuda" and keep.dtype == torch.bool and tuple(keep.shape) == w.shape
    assert np.array_equal(keep.cpu().numpy(), tsenor.mask(w, n, m, method=method))


@gpu_test
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("method", ["tsenor", "greedy", "rowwise"])
def test_cuda_half_precision(dtype, method):
    t = on_gpu(weights(256, 384, seed=2)).to(getattr(torch, dtype))
    keep = tsenor.mask(t, 8, 16, method=method)
    cpu = tsenor.mask(t.cpu(), 8, 16, method=method)
    assert keep.device == t.device
    assert tsenor.check(keep, 8, 16, transposable=method != "rowwise")
    values = t.float().cpu().numpy()
    if method == "tsenor":
        assert kept(values, keep.cpu().numpy()) == pytest.approx(kept(values, cpu.numpy()), rel=1e-4)
    else:
        assert torch.equal(keep.cpu(), cpu)


@gpu_test
def test_cuda_odd_shapes_and_strides():
    base = on_gpu(weights(100, 170, seed=7))
    for t in (base, base[:, :150], base[3:, 5:], base.t(), base[:, ::2], base[:1], base[:, :1]):
        expected = tsenor.mask(t.cpu(), 4, 8)
        assert torch.equal(tsenor.mask(t, 4, 8).cpu(), expected)
    row_slice = base[:, :150]
    assert _arrays.torch_in_place(row_slice) is row_slice


@gpu_test
def test_cuda_on_a_non_default_stream_sees_the_work_queued_before():
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        w = torch.randn(2048, 2048, device="cuda")
        w = w * 3.0 + torch.linspace(0, 1, 2048, device="cuda")   # queued on `stream`, not yet done
        keep = tsenor.mask(w, 8, 16)
        stream.synchronize()
    # the same mask as a call on the finished tensor (the GPU's TSENOR keeps what the
    # CPU's keeps to rounding, but need not pick the same mask)
    assert torch.equal(keep, tsenor.mask(w, 8, 16))
    assert tsenor.check(keep.cpu().numpy(), 8, 16)


@gpu_test
def test_cuda_on_every_device_leaves_the_current_device_alone():
    w = weights(128, 128, seed=1)
    expected = tsenor.mask(w, 8, 16)
    current = torch.cuda.current_device()
    for index in range(torch.cuda.device_count()):
        keep = tsenor.mask(on_gpu(w, "cuda:%d" % index), 8, 16)
        assert keep.device == torch.device("cuda", index)
        assert np.array_equal(keep.cpu().numpy(), expected)
        assert torch.cuda.current_device() == current


@gpu_test
def test_cuda_device_index_above_zero():
    if torch.cuda.device_count() < 2:
        pytest.skip("one CUDA device")
    w = weights(256, 256, seed=3)
    with torch.cuda.device(0):
        keep = tsenor.mask(on_gpu(w, "cuda:1"), 8, 16)
        assert torch.cuda.current_device() == 0
    assert keep.device == torch.device("cuda", 1)
    assert np.array_equal(keep.cpu().numpy(), tsenor.mask(w, 8, 16))


@gpu_test
@pytest.mark.parametrize("method,n,m", [("exact", 20, 40), ("greedy", 8, 48), ("rowwise", 5, 64)])
def test_cuda_large_m_masks_are_the_cpus(method, n, m):
    # EXACT above m = 32 is solved on the host and comes back; GREEDY and ROWWISE up to
    # 64 are solved on the GPU, the CPU's masks bit for bit
    w = weights(2 * m + 3, 3 * m + 1, seed=5)
    keep = tsenor.mask(on_gpu(w), n, m, method=method)
    assert keep.device.type == "cuda"
    assert np.array_equal(keep.cpu().numpy(), tsenor.mask(w, n, m, method=method))


@gpu_test
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("n,m", [(16, 64), (20, 48), (5, 33)])
def test_cuda_tsenor_large_m_keeps_the_cpus_magnitude(n, m, dtype):
    # TSENOR above m = 32 runs on the GPU, a CTA per block: a valid mask keeping what the
    # CPU's keeps, to rounding (the plans agree to rounding)
    t = on_gpu(weights(2 * m + 3, 3 * m + 1, seed=m)).to(getattr(torch, dtype))
    keep = tsenor.mask(t, n, m)
    assert keep.device.type == "cuda" and keep.dtype == torch.bool
    host = t.cpu()
    best = tsenor.mask(host, n, m)
    a = host.float().abs().numpy()
    assert tsenor.check(keep.cpu().numpy(), n, m)
    kept, cpu = a[keep.cpu().numpy()].sum(dtype=np.float64), a[best.numpy()].sum(dtype=np.float64)
    assert abs(kept - cpu) <= 1e-4 * cpu
    assert tsenor.CUDA_MAX_M == 64 and tsenor.CUDA_MAX_M_EXACT == 32


@gpu_test
@pytest.mark.parametrize("n,m", [(4, 8), (8, 16), (7, 24), (16, 32)])
def test_cuda_exact_keeps_the_cpus_optimum(n, m):
    # quantised weights: many ties, so the GPU may pick another of the optimal masks
    w = np.round(weights(3 * m + 5, 4 * m + 3, seed=m) * 2) / 2
    keep = tsenor.mask(on_gpu(w), n, m, method="exact").cpu().numpy()
    best = tsenor.mask(w, n, m, method="exact")
    assert tsenor.check(keep, n, m)
    kept, optimum = np.abs(w)[keep].sum(dtype=np.float64), np.abs(w)[best].sum(dtype=np.float64)
    assert abs(kept - optimum) <= 1e-6 * optimum


@gpu_test
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("method", ["exact", "tsenor"])
def test_cuda_n4_is_the_cpus_mask_bit_for_bit(method, n, dtype):
    # n:4 (EXACT and TSENOR) is solved exactly on the GPU, with the CPU's arithmetic
    t = on_gpu(weights(4 * 33 + 2, 4 * 40 + 3, seed=n)).to(getattr(torch, dtype))
    keep = tsenor.mask(t, n, 4, method=method)
    assert keep.device == t.device
    assert torch.equal(keep.cpu(), tsenor.mask(t.cpu(), n, 4, method=method))


@gpu_test
def test_cuda_nan_is_refused_and_untouched():
    t = on_gpu(weights(64, 64))
    t[10, 20] = float("nan")
    before = t.clone()
    with pytest.raises(ValueError, match="input holds NaN or infinity"):
        tsenor.mask(t, 8, 16)
    assert torch.equal(t.view(torch.int32), before.view(torch.int32))


@gpu_test
def test_cuda_bad_arguments():
    with pytest.raises(ValueError, match="invalid argument"):
        tsenor.mask(torch.ones(8, 8, device="cuda"), 4, 4)
    with pytest.raises(ValueError, match="dtype"):
        tsenor.mask(torch.ones(8, 8, device="cuda", dtype=torch.float64), 2, 4)


@gpu_test
def test_cuda_check_copies_to_the_host():
    keep = tsenor.mask(on_gpu(weights(64, 64)), 8, 16)
    assert tsenor.check(keep, 8, 16)
    keep[0, 0] = ~keep[0, 0]
    assert not tsenor.check(keep, 8, 16)


@gpu_test
def test_cuda_threads_at_once():
    from concurrent.futures import ThreadPoolExecutor
    inputs = [on_gpu(weights(512, 512, seed=s)) for s in range(8)]
    serial = [tsenor.mask(t, 8, 16).cpu() for t in inputs]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda t: tsenor.mask(t, 8, 16).cpu(), inputs))
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel))


@gpu_test
def test_cuda_large_bf16_matrix():
    t = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    keep = tsenor.mask(t, 8, 16)
    assert_valid(keep, 8, 16)
    assert keep.sum().item() == t.numel() // 2
