"""Calibration-aware pruning of one linear layer (tsenor_prune_f32) and the Gram matrix
of its calibration inputs (tsenor_gram_f32), for NumPy arrays and torch tensors."""
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Tuple, overload

import numpy as np

from . import _arrays, _core
from ._options import NO_CUDA, MaskOptions, PruneOptions, integer, mask_options, prune_options

if TYPE_CHECKING:
    import torch
    from numpy.typing import NDArray

PRUNE_METHODS: Tuple[str, ...] = tuple(_core.PRUNE_METHODS)


@dataclass(frozen=True)
class PruneReport:
    """What one prune_layer call did (the C library's tsenor_prune_report)."""
    error: float                # tr(D H D^T) / tr(W H W^T), D = W - W^, H the gram as given
                                # (before damping); 0 without a gram
    seconds: float              # wall time of the C call
    iterations: int             # ADMM iterations run (alps), else 0
    backend: str                # what ran: the CPU's linear algebra, or "cuda"
    projection_seconds: float   # time in the mask solver
    projections: int            # mask-solver calls
    cg_iterations: int          # conjugate-gradient iterations run (alps), else 0
    factor_seconds: float       # time in Cholesky factorisations
    factorizations: int         # Cholesky factorisations


@overload
def prune_layer(w: "torch.Tensor", gram: Optional["torch.Tensor"], n: int, m: int, *, method: str = ...,
                mask_method: str = ..., damping: Optional[float] = ..., iterations: Optional[int] = ...,
                cg_iterations: Optional[int] = ..., rho: Optional[float] = ..., mask_iterations: Optional[int] = ...,
                tau: Optional[float] = ..., threads: Optional[int] = ...
                ) -> Tuple["torch.Tensor", "torch.Tensor", PruneReport]: ...
@overload
def prune_layer(w: Any, gram: Any, n: int, m: int, *, method: str = ..., mask_method: str = ...,
                damping: Optional[float] = ..., iterations: Optional[int] = ..., cg_iterations: Optional[int] = ...,
                rho: Optional[float] = ..., mask_iterations: Optional[int] = ..., tau: Optional[float] = ...,
                threads: Optional[int] = ...) -> Tuple["NDArray[Any]", "NDArray[np.bool_]", PruneReport]: ...


def prune_layer(w: Any, gram: Any, n: int, m: int, *, method: str = "alps", mask_method: str = "tsenor",
                damping: Optional[float] = None, iterations: Optional[int] = None,
                cg_iterations: Optional[int] = None, rho: Optional[float] = None,
                mask_iterations: Optional[int] = None, tau: Optional[float] = None,
                threads: Optional[int] = None) -> Any:
    """Prunes one linear layer y = w x to an n:m mask, using calibration data.

    Finds W^ whose mask is n:m (transposable unless mask_method="rowwise") that
    minimises the layer's output error tr((w - W^) H (w - W^)^T) on the calibration
    inputs X, which enter only through their Gram matrix H = X^T X (see gram()).

    w: rows x cols (output x input features, as nn.Linear.weight): a 2-D NumPy array
       (float32, float16, ml_dtypes.bfloat16), a torch tensor (torch.float32, float16,
       bfloat16; CPU or CUDA) or a CPU DLPack array. The computation is in float32 (half
       precision input is converted) and W^ is returned in w's dtype; kept weights that
       round to zero there stay marked as kept in the mask. w is never written.
    gram: H, cols x cols float32 (both triangles; symmetric, positive semi-definite), on
       w's device (a NumPy array or CPU tensor for host w, a CUDA tensor on w's device
       for CUDA w), or None with method="magnitude". Never written.
    n, m: keep n of every m, 1 <= n < m <= 64.
    method: "alps" (default: ADMM with the mask solver as projection, then conjugate
       gradients on the kept weights), "sparsegpt" (OBS column sweep, a mask per m-column
       slab, weights updated), "wanda" (mask of |w_ij| sqrt(H_jj), kept weights
       unchanged) or "magnitude" (mask of |w|, kept weights unchanged).
    mask_method: the mask solver, as tsenor.mask's method ("tsenor", "exact", "greedy",
       "rowwise").
    damping: added to H's diagonal relative to its mean (default 0.01).
    iterations: ADMM iterations at most (alps; default 300).
    cg_iterations: conjugate-gradient iterations at most after ADMM (alps; default 50,
       0 = none).
    rho: the first ADMM penalty relative to the normalised H's unit diagonal (alps;
       default 0.03).
    mask_iterations, tau: the mask solver's Dykstra iterations and entropy strength, as
       tsenor.mask's iterations and tau. threads: CPU threads (default all).

    Returns (pruned_w, mask, report): W^ (w's shape, dtype and device; zero where the
    mask is False), the bool mask (True = keep; a NumPy array for host arrays, a
    torch.bool tensor for torch input) and a PruneReport (report.error is the relative
    output error above). CUDA tensors are pruned on their GPU on torch's current stream;
    mask_method="exact" with m > CUDA_MAX_M_EXACT (32) has no GPU solver, so it is
    pruned on the CPU and the results copied back to the device.

    Raises ValueError (bad shape, dtype, n/m or option, NaN or infinity in w or gram,
    a gram that is not symmetric positive definite after damping, unknown method),
    TypeError (arguments of the wrong type), RuntimeError (a CUDA tensor without a
    usable GPU or CUDA backend). The GIL is released while the C library works."""
    mask_opts = mask_options(n, m, mask_method, mask_iterations, tau, threads)
    prune_opts = prune_options(method, damping, iterations, cg_iterations, rho)
    torch = _arrays.torch_module(w)
    if torch is not None:
        return _prune_torch(torch, w, gram, mask_opts, prune_opts)
    original = _arrays.host_array(w, "w")
    a = _arrays.numpy_float32(original, "w")
    h = None if gram is None else _host_gram(gram)
    out = np.empty(a.shape, np.float32)
    keep = np.empty(a.shape, np.uint8)
    report = PruneReport(*_core.prune_host(a, h, out, keep, *mask_opts, *prune_opts))
    pruned = out if original.dtype == np.float32 else out.astype(original.dtype)
    return pruned, keep.view(np.bool_), report


def _host_gram(gram: Any) -> np.ndarray:
    """A host gram (NumPy, DLPack or CPU torch) as float32 the library reads in place."""
    torch = _arrays.torch_module(gram)
    if torch is not None:
        if gram.device.type != "cpu":
            raise _arrays.invalid("gram is on %s but w is on the CPU: both must be on one device" % gram.device)
        h: np.ndarray = _arrays.torch_float32(torch, gram, "gram", halves=False).numpy()
        return h
    return _arrays.numpy_float32(_arrays.host_array(gram, "gram"), "gram", halves=False)


def _device_gram(torch: Any, gram: Any, device: Any, cols: int) -> Any:
    """A gram tensor on w's CUDA device, float32, cols x cols, readable in place."""
    if _arrays.torch_module(gram) is None or gram.device != device:
        where = str(gram.device) if _arrays.torch_module(gram) is not None else "the host"
        raise _arrays.invalid("gram is on %s but w is on %s: both must be on one device" % (where, device))
    h = _arrays.torch_float32(torch, gram, "gram", halves=False)
    if tuple(h.shape) != (cols, cols):
        raise _arrays.invalid("gram is %d x %d, w has %d columns (gram must be cols x cols)"
                              % (h.shape[0], h.shape[1], cols))
    return h


def _prune_torch(torch: Any, w: Any, gram: Any, mask_opts: MaskOptions, prune_opts: PruneOptions) -> Any:
    _arrays.check_matrix(tuple(w.shape), "w")
    if w.device.type == "cuda":
        if not _core.HAS_CUDA:
            raise RuntimeError(NO_CUDA)
        if mask_opts.method == "exact" and mask_opts.m > _core.CUDA_MAX_M_EXACT:
            # no GPU solver for these: prune host copies, hand the results back on the device
            host_gram = None if gram is None else _device_gram(torch, gram, w.device, int(w.shape[1])).cpu()
            pruned, keep, report = _prune_torch(torch, w.cpu(), host_gram, mask_opts, prune_opts)
            return pruned.to(w.device), keep.to(w.device), report
        return _prune_cuda(torch, w, gram, mask_opts, prune_opts)
    if w.device.type != "cpu":
        raise _arrays.invalid("w is on device %s; tsenor takes CPU and CUDA tensors" % w.device)
    w32 = _arrays.torch_float32(torch, w, "w")
    h = None if gram is None else _host_gram(gram)
    out = torch.empty(tuple(w32.shape), dtype=torch.float32)
    keep = torch.empty(tuple(w32.shape), dtype=torch.uint8)
    report = PruneReport(*_core.prune_host(w32.numpy(), h, out.numpy(), keep.numpy(), *mask_opts, *prune_opts))
    pruned = out if w.dtype == torch.float32 else out.to(w.dtype)
    return pruned, keep.view(torch.bool), report


def _prune_cuda(torch: Any, w: Any, gram: Any, mask_opts: MaskOptions, prune_opts: PruneOptions) -> Any:
    w32 = _arrays.torch_float32(torch, w, "w")
    rows, cols = (int(d) for d in w32.shape)
    h = None if gram is None else _device_gram(torch, gram, w.device, cols)
    out = torch.empty((rows, cols), dtype=torch.float32, device=w.device)
    keep = torch.empty((rows, cols), dtype=torch.uint8, device=w.device)
    stream = _arrays.torch_cuda_stream(torch, w.device.index)
    report = PruneReport(*_core.prune_device(
        w32.data_ptr(), rows, cols, _arrays.torch_leading_dimension(w32),
        0 if h is None else h.data_ptr(), 0 if h is None else _arrays.torch_leading_dimension(h),
        out.data_ptr(), cols, keep.data_ptr(), cols, w.device.index, stream, *mask_opts, *prune_opts))
    pruned = out if w.dtype == torch.float32 else out.to(w.dtype)
    return pruned, keep.view(torch.bool), report


@overload
def gram(x: "torch.Tensor", out: Optional["torch.Tensor"] = ..., *, threads: Optional[int] = ...) -> "torch.Tensor": ...
@overload
def gram(x: Any, out: Any = ..., *, threads: Optional[int] = ...) -> "NDArray[np.float32]": ...


def gram(x: Any, out: Any = None, *, threads: Optional[int] = None) -> Any:
    """Accumulates the Gram matrix of calibration inputs: out += x^T x.

    x: the inputs of a linear layer, tokens x cols, or any (..., cols) array whose
       leading dimensions are flattened into tokens (a batch of sequences, say): NumPy
       (float32, float16, ml_dtypes.bfloat16), torch (CPU or CUDA) or a CPU DLPack
       array. Half precision is converted to float32. Never written.
    out: None (a new zero cols x cols float32 array or tensor on x's device), or the
       float32 cols x cols gram to add to, on x's device, writable, with rows of unit
       inner stride (it is written in place, never copied). Call gram() once per
       batch with the same out to accumulate over batches.
    threads: CPU threads (default all; CUDA ignores it).

    Returns out (the one given, or the new one); both triangles are written, so it
    stays exactly symmetric. The sums are in float32 (tsenor_gram_f32; cuBLAS SYRK on
    the GPU, on torch's current stream).

    Raises ValueError (bad shape or dtype, NaN or infinity in x, an unusable out),
    TypeError (arguments of the wrong type), RuntimeError (a CUDA tensor without a
    usable GPU or CUDA backend). On any error out is left exactly as it was."""
    nthreads = integer("threads", threads, True)
    torch = _arrays.torch_module(x)
    if torch is not None:
        return _gram_torch(torch, x, out, nthreads)
    a = _tokens(_arrays.host_array(x, "x"))
    a = _arrays.numpy_float32(a, "x")
    cols = a.shape[1]
    target = np.zeros((cols, cols), np.float32) if out is None else out
    _core.gram_host(a, _arrays.writable_float32(target, "out"), nthreads)
    return target


def _tokens(x: Any) -> Any:
    """x (..., cols) as tokens x cols (a view where possible)."""
    shape = tuple(x.shape)
    if len(shape) < 2:
        raise _arrays.invalid("x must be tokens x cols, or (..., cols), got %d-D (shape %s)" % (len(shape), shape))
    if 0 in shape:
        raise _arrays.invalid("x is empty (shape %s)" % (shape,))
    return x.reshape(-1, shape[-1])


def _gram_torch(torch: Any, x: Any, out: Any, threads: int) -> Any:
    x2 = _tokens(x.detach())
    cols = int(x2.shape[1])
    if x.device.type == "cuda":
        if not _core.HAS_CUDA:
            raise RuntimeError(NO_CUDA)
        x32 = _arrays.torch_float32(torch, x2, "x")
        target = torch.zeros((cols, cols), dtype=torch.float32, device=x.device) if out is None else out
        _check_device_out(torch, target, x.device, cols)
        stream = _arrays.torch_cuda_stream(torch, x.device.index)
        _core.gram_device(x32.data_ptr(), int(x32.shape[0]), cols, _arrays.torch_leading_dimension(x32),
                          target.data_ptr(), _arrays.torch_leading_dimension(target), x.device.index, stream)
        return target
    if x.device.type != "cpu":
        raise _arrays.invalid("x is on device %s; tsenor takes CPU and CUDA tensors" % x.device)
    x32 = _arrays.torch_float32(torch, x2, "x")
    target = torch.zeros((cols, cols), dtype=torch.float32) if out is None else out
    _core.gram_host(x32.numpy(), _arrays.writable_float32(target, "out"), threads)
    return target


def _check_device_out(torch: Any, out: Any, device: Any, cols: int) -> None:
    """The checks gram_host's buffer protocol does, for a CUDA out (raw pointers carry
    no shape)."""
    if _arrays.torch_module(out) is None or out.device != device:
        where = str(out.device) if _arrays.torch_module(out) is not None else "the host"
        raise _arrays.invalid("out is on %s but x is on %s: both must be on one device" % (where, device))
    if out.layout != torch.strided or out.dtype != torch.float32:
        raise _arrays.invalid("out is a %s %s tensor; it must be a dense torch.float32 tensor" % (out.layout, out.dtype))
    if tuple(out.shape) != (cols, cols):
        raise _arrays.invalid("out is %s, x has %d columns (out must be cols x cols)" % (tuple(out.shape), cols))
    if not _arrays.in_place((cols, cols), tuple(s * 4 for s in out.stride()), 4):
        raise _arrays.invalid("out's rows must have unit inner stride and a leading dimension >= cols (strides %s); "
                              "it is written in place, so it cannot be copied" % (tuple(out.stride()),))
