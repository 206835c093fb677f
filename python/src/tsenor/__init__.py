"""tsenor: transposable N:M sparse masks and calibration-aware pruning for NumPy arrays
and PyTorch tensors.

A transposable N:M mask keeps exactly N of every M weights along the rows and the
columns of every M x M block, so that both W*S and (W*S)^T are N:M sparse. tsenor finds
the mask that keeps the most magnitude with the TSENOR algorithm (or exactly), in C
(tsenor.h) on the CPU and, when built with the CUDA backend, on the GPU.

    import numpy as np, tsenor
    w = np.random.default_rng(0).standard_normal((256, 512), dtype=np.float32)
    keep = tsenor.mask(w, 8, 16)          # bool, same shape: keep 8 of every 16
    assert tsenor.check(keep, 8, 16)

What runs where:
- NumPy arrays (float32, float16, ml_dtypes.bfloat16) and CPU torch tensors (float32,
  float16, bfloat16) are solved on the CPU and read in place; the mask is a NumPy bool
  array or a torch.bool tensor. Other CPU arrays that speak DLPack (JAX, ...) are read
  through np.from_dlpack and get a NumPy mask.
- torch CUDA tensors are solved on their own GPU, on torch's current stream of that
  device, and get a torch.bool mask on that device (this needs the CUDA backend, built
  when nvcc is found). Every method runs there up to m = CUDA_MAX_M (64) but EXACT, up
  to CUDA_MAX_M_EXACT (32); beyond, the tensor is copied to the host, solved by the
  CPU, and the mask copied back to the device. The GPU's EXACT keeps
  the same magnitude as the CPU's; where several masks are optimal it may pick another.
  Other CUDA arrays (CuPy, JAX): pass torch.from_dlpack(x).
- Layout: rows with unit inner stride and a leading dimension >= cols (a row slice of a
  wider matrix) are read in place; other layouts (transposed, negative or zero strides,
  a step in the inner dimension) are copied to a contiguous array first.

Pruning with calibration data: prune_layer(w, gram, n, m, method="alps") prunes one
linear layer given the Gram matrix H = X^T X of its inputs, which gram(x, out) sums
batch by batch (both in _prune.py); tsenor.torch.prune(model, batches, n, m) prunes a
whole PyTorch model with them (imported on first use of tsenor.torch);
`python -m tsenor.grams MODEL_DIR --text FILE -o GRAMS.safetensors` writes the grams of
a Hugging Face model's layers for the command line's --gram (tsenor/grams.py).

Errors: bad values (shape, dtype, n/m, options, NaN or infinity in w, unknown method)
raise ValueError with the C library's status text; a wrong kind of argument raises
TypeError; a GPU that cannot be used raises RuntimeError with CUDA's text. The inputs
are never written. The GIL is released while the C library works, so threads may call
tsenor at once.
"""
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Tuple, overload

import numpy as np

from . import _arrays, _core
from ._options import NO_CUDA as _NO_CUDA
from ._options import MaskOptions as _Options
from ._options import integer as _int
from ._options import mask_options as _options

if TYPE_CHECKING:
    import torch
    from numpy.typing import NDArray

from ._prune import PRUNE_METHODS, PruneReport, gram, prune_layer

__all__ = ["mask", "check", "check_report", "CheckReport", "prune_layer", "gram", "PruneReport", "METHODS",
           "PRUNE_METHODS", "CUDA_BUILT", "CUDA_MAX_M", "CUDA_MAX_M_EXACT", "cuda_device_count",
           "__version__"]

__version__: str = _core.version()
"""The C library's version, tsenor_version()."""

METHODS: Tuple[str, ...] = tuple(_core.METHODS)
"""The method names: "tsenor" (default), "exact", "greedy", "rowwise"."""

CUDA_BUILT: bool = bool(_core.HAS_CUDA)
"""Whether this build has the CUDA backend (torch CUDA tensors can be passed)."""

CUDA_MAX_M: int = _core.CUDA_MAX_M
"""Largest m the GPU solves (64, every m the library takes); 0 without CUDA."""

CUDA_MAX_M_EXACT: int = _core.CUDA_MAX_M_EXACT
"""Largest m EXACT solves on the GPU (32); EXACT with a larger m runs on the CPU. 0
without CUDA."""


def cuda_device_count() -> int:
    """CUDA devices the backend can use (0 without a GPU or without the CUDA backend)."""
    return _core.cuda_device_count()


@overload
def mask(w: "torch.Tensor", n: int, m: int, *, method: str = ..., iterations: Optional[int] = ...,
         tau: Optional[float] = ..., threads: Optional[int] = ...) -> "torch.Tensor": ...
@overload
def mask(w: Any, n: int, m: int, *, method: str = ..., iterations: Optional[int] = ...,
         tau: Optional[float] = ..., threads: Optional[int] = ...) -> "NDArray[np.bool_]": ...


def mask(w: Any, n: int, m: int, *, method: str = "tsenor", iterations: Optional[int] = None,
         tau: Optional[float] = None, threads: Optional[int] = None) -> Any:
    """The transposable n:m mask of the 2-D matrix w that keeps the most magnitude.

    w: a 2-D NumPy array (float32, float16, ml_dtypes.bfloat16), a torch tensor
       (torch.float32, torch.float16, torch.bfloat16; CPU or CUDA) or a CPU DLPack array.
       Any shape >= 1 x 1: a partial block at the right or bottom edge is solved as if
       zero-padded, so its rows and columns keep at most n. Never written.
    n, m: keep n of every m, 1 <= n < m <= 64.
    method: "tsenor" (default), "exact" (optimal per block), "greedy", or "rowwise"
       (ordinary N:M along rows, not transposable).
    iterations: Dykstra iterations (default 100); tau: the entropy strength relative to
       each block's largest |w| (default 0.01); threads: CPU threads (default all).

    Returns a bool mask of w's shape on w's device (True = keep): a NumPy array for
    NumPy and DLPack input, a torch.bool tensor for torch input. The same input and
    options give the same mask whatever the thread count.

    Raises ValueError (bad shape, dtype, n/m or option, NaN or infinity in w, unknown
    method), TypeError (w of an unsupported type, options of the wrong type),
    RuntimeError (a CUDA tensor without a usable GPU or CUDA backend)."""
    opts = _options(n, m, method, iterations, tau, threads)
    torch = _arrays.torch_module(w)
    if torch is not None:
        return _mask_torch(torch, w, opts)
    a, code = _arrays.numpy_weights(_arrays.host_array(w, "w"))
    out = np.empty(a.shape, np.uint8)
    _core.mask_host(a, code, out, *opts)
    return out.view(np.bool_)


def _mask_torch(torch: Any, w: Any, opts: _Options) -> Any:
    code = _arrays.torch_dtype_code(torch, w)
    if w.device.type == "cuda":
        if not CUDA_BUILT:
            raise RuntimeError(_NO_CUDA)
        if opts.m > (CUDA_MAX_M_EXACT if opts.method == "exact" else CUDA_MAX_M):
            # no GPU solver for these: solve a host copy, hand the mask back on the device
            return _mask_torch(torch, w.cpu(), opts).to(w.device)
        return _mask_cuda(torch, w, code, opts)
    if w.device.type != "cpu":
        raise _arrays.invalid("w is on device %s; tsenor takes CPU and CUDA tensors" % w.device)
    w = _arrays.torch_in_place(w.detach())
    out = torch.empty(tuple(w.shape), dtype=torch.uint8)
    _core.mask_host(_arrays.torch_host_view(torch, w), code, out.numpy(), *opts)
    return out.view(torch.bool)


def _mask_cuda(torch: Any, w: Any, code: int, opts: _Options) -> Any:
    # the per-call cost matters here (a small mask takes tens of microseconds on the GPU):
    # a contiguous tensor goes as it is, and the mask is written as 0/1 bytes straight
    # into a torch.bool tensor (one byte, the same representation)
    w = _arrays.torch_in_place(w)
    rows, cols = w.shape
    device = w.device
    out = torch.empty((rows, cols), dtype=torch.bool, device=device)
    _core.mask_device(w.data_ptr(), code, rows, cols, _arrays.torch_leading_dimension(w), out.data_ptr(), cols,
                      device.index, _arrays.torch_cuda_stream(torch, device.index), *opts)
    return out


@dataclass(frozen=True)
class CheckReport:
    """Where a mask breaks the pattern (tsenor_check_report). The position fields are
    those of the first failure in row-major block order, zeros when valid."""
    valid: bool        # the mask satisfies the pattern
    blocks: int        # M x M blocks checked
    bad_blocks: int    # blocks that break it
    row: int           # first element of the failing block row or column, or of the bad byte
    col: int
    column: bool       # True: a block column fails; False: a block row
    count: int         # entries that line keeps (or the bad byte's value)
    bad_value: bool    # True: the failure is a byte other than 0 and 1


def check_report(mask: Any, n: int, m: int, transposable: bool = True, *, at_most: bool = False) -> CheckReport:
    """Checks a 0/1 mask (bool or uint8, 2-D; NumPy, torch or CPU DLPack) against n:m
    and says where it fails. transposable: rows and columns of every block (else the
    row groups only). at_most: every row/column keeps at most n (a mask at least as
    sparse as n:m) instead of exactly n in full blocks. Edge blocks (partial at the
    right or bottom) may always keep fewer than n. A CUDA tensor is copied to the host
    for the check. Raises ValueError for a bad shape, dtype or n/m."""
    flags = (_core.CHECK_TRANSPOSABLE if transposable else 0) | (_core.CHECK_AT_MOST if at_most else 0)
    return CheckReport(*_core.check(_arrays.mask_bytes(mask), _int("n", n), _int("m", m), flags))


def check(mask: Any, n: int, m: int, transposable: bool = True, *, at_most: bool = False) -> bool:
    """True when the mask satisfies the n:m pattern (see check_report for the rules)."""
    return check_report(mask, n, m, transposable, at_most=at_most).valid



def __getattr__(name: str) -> Any:
    # tsenor.torch (model pruning) and tsenor.grams (the grams command) are imported on
    # first use, so that `import tsenor` never imports torch
    if name in ("torch", "grams"):
        import importlib
        return importlib.import_module(".torch", __name__)
    raise AttributeError("module 'tsenor' has no attribute %r" % name)


# Further calls of tsenor.h each get a file in csrc/ with an entry in module.c's table,
# and a wrapper (here or in a module of its own, as _prune.py) that brings their arrays
# through _arrays as mask() does.
