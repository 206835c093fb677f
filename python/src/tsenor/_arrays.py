"""How arrays reach the C library.

The library reads a matrix in place when its rows have unit inner stride and a positive
leading dimension of at least `cols` elements (a row slice of a wider array, say); any
other layout (transposed, negative or zero strides, a non-unit inner stride, unaligned
or non-native byte order) is first copied to a C-contiguous array. bfloat16 travels as
its 16-bit pattern (a uint16/int16 view of the same memory), as tsenor.h takes it."""
import sys
from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import _core

DLPACK_CPU = 1  # DLDeviceType kDLCPU


def invalid(detail: str) -> ValueError:
    """A ValueError with the library's invalid-argument text and what was wrong."""
    return ValueError("%s: %s" % (_core.status_string(_core.ERR_INVALID_ARGUMENT), detail))


def torch_module(obj: Any) -> Optional[Any]:
    """torch when obj is a torch tensor (torch is never imported here just to ask)."""
    torch = sys.modules.get("torch")
    return torch if torch is not None and isinstance(obj, torch.Tensor) else None


def in_place(shape: Tuple[int, ...], strides: Tuple[int, ...], itemsize: int) -> bool:
    """Whether the library can read a 2-D layout as it is (strides in bytes)."""
    rows, cols = shape
    inner_ok = cols == 1 or strides[1] == itemsize
    lead_ok = rows == 1 or (strides[0] > 0 and strides[0] % itemsize == 0 and strides[0] // itemsize >= cols)
    return inner_ok and lead_ok


def check_matrix(shape: Tuple[int, ...], name: str) -> None:
    if len(shape) != 2:
        raise invalid("%s must be 2-D, got %d-D (shape %s)" % (name, len(shape), tuple(shape)))
    if shape[0] == 0 or shape[1] == 0:
        raise invalid("%s is empty (shape %s)" % (name, tuple(shape)))


def host_array(obj: Any, name: str) -> np.ndarray:
    """obj as a NumPy array sharing its memory: ndarrays as they are, CPU DLPack arrays
    through np.from_dlpack. Anything else is a TypeError."""
    if isinstance(obj, np.ndarray):
        return obj
    if hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__"):
        device_type = obj.__dlpack_device__()[0]
        if device_type != DLPACK_CPU:
            raise TypeError("%s is a %s on a DLPack device of type %d; on the GPU tsenor takes torch tensors: "
                            "pass torch.from_dlpack(%s)" % (name, type(obj).__name__, device_type, name))
        return np.from_dlpack(obj)
    raise TypeError("%s must be a NumPy array, a torch tensor or a DLPack array, not %s"
                    % (name, type(obj).__name__))


def numpy_weights(a: np.ndarray) -> Tuple[np.ndarray, int]:
    """(array the library can read, dtype code) for a NumPy weight matrix."""
    check_matrix(a.shape, "w")
    if a.dtype.name == "bfloat16":  # ml_dtypes.bfloat16: its bits, as uint16
        code = _core.DTYPE_BF16
    elif a.dtype.kind == "f" and a.dtype.itemsize == 4:
        code = _core.DTYPE_F32
    elif a.dtype.kind == "f" and a.dtype.itemsize == 2:
        code = _core.DTYPE_F16
    else:
        raise invalid("w has dtype %s; tsenor takes float32, float16 and bfloat16 (ml_dtypes)" % a.dtype)
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if not (a.flags.aligned and in_place(a.shape, a.strides, a.itemsize)):
        a = np.require(a, requirements=["C_CONTIGUOUS", "ALIGNED"])
    if code == _core.DTYPE_BF16:
        a = a.view(np.uint16)
    return a, code


_TORCH_CODES: Dict[Any, int] = {}


def torch_dtype_code(torch: Any, t: Any) -> int:
    if t.dim() != 2 or not t.shape[0] or not t.shape[1]:
        check_matrix(tuple(t.shape), "w")
    if t.layout != torch.strided:
        raise invalid("w has layout %s; tsenor takes dense (strided) tensors" % t.layout)
    if not _TORCH_CODES:
        _TORCH_CODES.update({torch.float32: _core.DTYPE_F32, torch.float16: _core.DTYPE_F16,
                             torch.bfloat16: _core.DTYPE_BF16})
    code = _TORCH_CODES.get(t.dtype)
    if code is None:
        raise invalid("w has dtype %s; tsenor takes torch.float32, torch.float16 and torch.bfloat16" % t.dtype)
    return code


def torch_in_place(t: Any) -> Any:
    """t, or a contiguous copy of it on its device when the library cannot read it as
    it is (torch strides are in elements)."""
    if t.is_contiguous():
        return t
    itemsize = t.element_size()
    if in_place(tuple(t.shape), tuple(s * itemsize for s in t.stride()), itemsize):
        return t
    return t.contiguous()


def torch_cuda_stream(torch: Any, device: int) -> int:
    """The cudaStream_t of torch's current stream on device, as an integer: torch's own
    accessor of the raw handle where it has one (it skips building a Stream object),
    else the public torch.cuda.current_stream(device).cuda_stream."""
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if raw is not None:
        return int(raw(device))
    return int(torch.cuda.current_stream(device).cuda_stream)


def torch_leading_dimension(t: Any) -> int:
    return int(t.shape[1] if t.shape[0] == 1 else t.stride(0))


def torch_host_view(torch: Any, t: Any) -> np.ndarray:
    """A NumPy view of a CPU tensor's memory (bfloat16 as its int16 bits)."""
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    view: np.ndarray = t.numpy()
    return view


def mask_bytes(obj: Any) -> np.ndarray:
    """A 0/1 mask (bool or uint8, 2-D) as a uint8 NumPy array on the host the library
    can read: NumPy arrays and CPU tensors in place, CUDA tensors copied to the host."""
    torch = torch_module(obj)
    if torch is not None:
        t = obj.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        if t.layout != torch.strided:
            raise invalid("the mask has layout %s; tsenor takes dense (strided) tensors" % t.layout)
    a: np.ndarray = t.numpy() if torch is not None else host_array(obj, "mask")
    check_matrix(a.shape, "the mask")
    if a.dtype == np.bool_:
        a = a.view(np.uint8)
    elif a.dtype != np.uint8:
        raise invalid("the mask has dtype %s; tsenor checks bool and uint8 masks" % a.dtype)
    if not in_place(a.shape, a.strides, 1):
        a = np.ascontiguousarray(a)
    return a


def numpy_float32(a: np.ndarray, name: str, halves: bool = True) -> np.ndarray:
    """A NumPy matrix as float32 the library can read in place: float32 as it is when
    its layout allows, float16 and bfloat16 (halves=True) converted. Other dtypes are a
    ValueError."""
    check_matrix(a.shape, name)
    is_half = a.dtype.name == "bfloat16" or (a.dtype.kind == "f" and a.dtype.itemsize == 2)
    if not (a.dtype.kind == "f" and a.dtype.itemsize == 4) and not (halves and is_half):
        raise invalid("%s has dtype %s; tsenor takes %s" % (name, a.dtype, "float32, float16 and bfloat16 (ml_dtypes)"
                                                             if halves else "float32"))
    if a.dtype != np.float32 or not (a.flags.aligned and in_place(a.shape, a.strides, 4)):
        a = np.ascontiguousarray(a, dtype=np.float32)
    return a


def torch_float32(torch: Any, t: Any, name: str, halves: bool = True) -> Any:
    """A 2-D torch tensor as float32 on its device that the library can read in place
    (float16 and bfloat16 converted when halves=True)."""
    check_matrix(tuple(t.shape), name)
    if t.layout != torch.strided:
        raise invalid("%s has layout %s; tsenor takes dense (strided) tensors" % (name, t.layout))
    accepted = (torch.float32, torch.float16, torch.bfloat16) if halves else (torch.float32,)
    if t.dtype not in accepted:
        raise invalid("%s has dtype %s; tsenor takes %s" % (name, t.dtype, ", ".join(str(d) for d in accepted)))
    return torch_in_place(t.detach().float())


def writable_float32(obj: Any, name: str) -> np.ndarray:
    """A host matrix that the library accumulates into in place: float32 (native byte
    order), writable, with a layout it can read as it is (never copied, since the
    caller's own memory must receive the result)."""
    torch = torch_module(obj)
    if torch is not None:
        if obj.device.type != "cpu":
            raise invalid("%s is on %s; it must be where x is (the CPU)" % (name, obj.device))
        if obj.layout != torch.strided or obj.dtype != torch.float32:
            raise invalid("%s is a %s %s tensor; it must be a dense torch.float32 tensor" % (name, obj.layout, obj.dtype))
        a: np.ndarray = obj.detach().numpy()
    else:
        a = host_array(obj, name)
    check_matrix(a.shape, name)
    if a.dtype != np.dtype(np.float32):
        raise invalid("%s has dtype %s; it must be float32" % (name, a.dtype))
    if not a.flags.writeable:
        raise invalid("%s is read-only" % name)
    if not (a.flags.aligned and in_place(a.shape, a.strides, 4)):
        raise invalid("%s's rows must have unit inner stride and a leading dimension >= cols (strides %s bytes); "
                      "it is written in place, so it cannot be copied" % (name, a.strides))
    return a
