# The C extension (csrc/). Use the documented wrappers in tsenor/__init__.py.
from typing import Any, Tuple

HAS_CUDA: int
MAX_M: int
CUDA_MAX_M: int
CUDA_MAX_M_EXACT: int
DTYPE_F32: int
DTYPE_F16: int
DTYPE_BF16: int
CHECK_TRANSPOSABLE: int
CHECK_AT_MOST: int
ERR_INVALID_ARGUMENT: int
METHODS: Tuple[str, str, str, str]
PRUNE_METHODS: Tuple[str, str, str, str]

# (error, seconds, iterations, backend, projection_seconds, projections, cg_iterations,
#  factor_seconds, factorizations)
PruneReportTuple = Tuple[float, float, int, str, float, int, int, float, int]

def version() -> str: ...
def status_string(status: int) -> str: ...
def cuda_device_count() -> int: ...
def mask_host(w: Any, dtype: int, out: Any, n: int, m: int, method: str, iterations: int, tau: float,
              threads: int) -> None: ...
def mask_device(w_ptr: int, dtype: int, rows: int, cols: int, ld: int, mask_ptr: int, mask_ld: int, device: int,
                stream: int, n: int, m: int, method: str, iterations: int, tau: float, threads: int) -> None: ...
def check(mask: Any, n: int, m: int, flags: int) -> Tuple[bool, int, int, int, int, bool, int, bool]: ...
def prune_host(w: Any, gram: Any, out: Any, mask: Any, n: int, m: int, mask_method: str, mask_iterations: int,
               tau: float, threads: int, method: str, damping: float, iterations: int, cg_iterations: int,
               rho: float) -> PruneReportTuple: ...
def prune_device(w_ptr: int, rows: int, cols: int, ld: int, gram_ptr: int, gram_ld: int, out_ptr: int, out_ld: int,
                 mask_ptr: int, mask_ld: int, device: int, stream: int, n: int, m: int, mask_method: str,
                 mask_iterations: int, tau: float, threads: int, method: str, damping: float, iterations: int,
                 cg_iterations: int, rho: float) -> PruneReportTuple: ...
def gram_host(x: Any, gram: Any, threads: int) -> None: ...
def gram_device(x_ptr: int, tokens: int, cols: int, ld: int, gram_ptr: int, gram_ld: int, device: int,
                stream: int) -> None: ...
