"""tsenor.mask and tsenor.check on CPU torch tensors (skipped without torch)."""
import numpy as np
import pytest

import tsenor
from tsenor import _arrays
from conftest import assert_valid, weights

NONFINITE = "input holds NaN or infinity"


@pytest.mark.parametrize("method", ["tsenor", "exact", "greedy", "rowwise"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_torch_masks_equal_numpy_masks_of_the_same_values(torch, dtype, method):
    t = torch.from_numpy(weights(64, 96, seed=4)).to(getattr(torch, dtype))
    keep = tsenor.mask(t, 4, 8, method=method)
    assert isinstance(keep, torch.Tensor) and keep.dtype == torch.bool and keep.device.type == "cpu"
    assert tuple(keep.shape) == (64, 96)
    same_values = t.float().numpy()                 # exact: f16/bf16 widen to f32 without rounding
    assert np.array_equal(keep.numpy(), tsenor.mask(same_values, 4, 8, method=method))
    assert tsenor.check(keep, 4, 8, transposable=method != "rowwise")


def test_torch_bfloat16_equals_ml_dtypes_bfloat16(torch, ml_dtypes):
    t = torch.from_numpy(weights(48, 64, seed=6)).to(torch.bfloat16)
    a = t.float().numpy().astype(ml_dtypes.bfloat16)
    assert np.array_equal(a.view(np.uint16), t.view(torch.int16).numpy().view(np.uint16))
    assert np.array_equal(tsenor.mask(t, 8, 16).numpy(), tsenor.mask(a, 8, 16))


def test_mask_is_a_bool_view_of_bytes_the_library_wrote(torch):
    keep = tsenor.mask(torch.from_numpy(weights(16, 16)), 2, 4)
    assert keep.is_contiguous() and keep.view(torch.uint8).max().item() == 1


def test_autograd_tensors_and_parameters(torch):
    p = torch.nn.Parameter(torch.from_numpy(weights(32, 32)))
    keep = tsenor.mask(p, 2, 4)
    assert not keep.requires_grad
    assert torch.equal(keep, tsenor.mask(p.detach().clone(), 2, 4))


def test_row_slice_is_read_in_place(torch):
    base = torch.from_numpy(weights(64, 160))
    t = base[:, :128]
    assert _arrays.torch_in_place(t) is t
    assert np.shares_memory(_arrays.torch_host_view(torch, t), base.numpy())
    assert torch.equal(tsenor.mask(t, 4, 8), tsenor.mask(t.contiguous(), 4, 8))


@pytest.mark.parametrize("view", ["transposed", "every_other_col", "expanded"])
def test_other_layouts_are_copied_first(torch, view):
    if view == "transposed":
        t = torch.from_numpy(weights(128, 64)).t()
    elif view == "every_other_col":
        t = torch.from_numpy(weights(64, 256))[:, ::2]
    else:
        t = torch.from_numpy(weights(1, 128)).expand(64, 128)
    assert _arrays.torch_in_place(t) is not t
    assert torch.equal(tsenor.mask(t, 4, 8), tsenor.mask(t.contiguous(), 4, 8))


def test_bfloat16_row_slice(torch):
    base = torch.from_numpy(weights(32, 80)).to(torch.bfloat16)
    t = base[:, 8:72]
    assert _arrays.torch_in_place(t) is t
    assert torch.equal(tsenor.mask(t, 8, 16), tsenor.mask(t.contiguous(), 8, 16))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_nan_is_refused_and_untouched(torch, dtype):
    t = torch.from_numpy(weights(16, 32)).to(getattr(torch, dtype))
    t[5, 7] = float("nan")
    bits = torch.int32 if dtype == "float32" else torch.int16
    before = t.view(bits).clone()
    with pytest.raises(ValueError, match=NONFINITE):
        tsenor.mask(t, 2, 4)
    assert torch.equal(t.view(bits), before)


def test_bad_tensors_are_refused(torch):
    with pytest.raises(ValueError, match="dtype"):
        tsenor.mask(torch.ones(8, 8, dtype=torch.float64), 2, 4)
    with pytest.raises(ValueError, match="2-D"):
        tsenor.mask(torch.ones(2, 8, 8), 2, 4)
    with pytest.raises(ValueError, match="empty"):
        tsenor.mask(torch.ones(0, 8), 2, 4)
    with pytest.raises(ValueError, match="device meta"):
        tsenor.mask(torch.ones(8, 8, device="meta"), 2, 4)
    with pytest.raises(ValueError, match="layout"):
        tsenor.mask(torch.ones(8, 8).to_sparse(), 2, 4)


def test_check_takes_bool_and_uint8_tensors(torch):
    keep = tsenor.mask(torch.from_numpy(weights(32, 32)), 2, 4)
    assert tsenor.check(keep, 2, 4) and tsenor.check(keep.to(torch.uint8), 2, 4)
    assert tsenor.check(keep.t(), 2, 4)
    broken = keep.clone()
    broken[0, 0] = ~broken[0, 0]
    report = tsenor.check_report(broken, 2, 4)
    assert not report.valid and (report.row, report.col) == (0, 0)
    with pytest.raises(ValueError, match="dtype"):
        tsenor.check(keep.float(), 2, 4)
