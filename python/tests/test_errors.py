"""Bad input: the exception, its text, and the caller's arrays left untouched."""
import numpy as np
import pytest

import tsenor
from tsenor import _core
from conftest import weights

INVALID = _core.status_string(_core.ERR_INVALID_ARGUMENT)
NONFINITE = "input holds NaN or infinity"


@pytest.mark.parametrize("shape", [(64,), (4, 8, 16), ()])
def test_rank_other_than_two_is_refused(shape):
    with pytest.raises(ValueError, match="must be 2-D") as info:
        tsenor.mask(np.ones(shape, np.float32), 2, 4)
    assert INVALID in str(info.value)


@pytest.mark.parametrize("shape", [(0, 16), (16, 0)])
def test_empty_is_refused(shape):
    with pytest.raises(ValueError, match="empty"):
        tsenor.mask(np.ones(shape, np.float32), 2, 4)


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.uint16, np.bool_, np.complex64])
def test_other_dtypes_are_refused(dtype):
    with pytest.raises(ValueError, match="dtype") as info:
        tsenor.mask(np.ones((8, 8), dtype), 2, 4)
    assert INVALID in str(info.value)


@pytest.mark.parametrize("n,m", [(0, 4), (4, 4), (5, 4), (2, 65), (1, 1), (-1, 4), (2, 2**40)])
def test_bad_n_or_m_gives_the_library_text(n, m):
    with pytest.raises(ValueError) as info:
        tsenor.mask(weights(8, 8), n, m)
    assert INVALID in str(info.value)


@pytest.mark.parametrize("options", [dict(iterations=0), dict(iterations=-3), dict(threads=0), dict(tau=0.0),
                                     dict(tau=-1.0), dict(tau=float("nan")), dict(tau=1e-6), dict(tau=1e9)])
def test_bad_option_values(options):
    with pytest.raises(ValueError) as info:
        tsenor.mask(weights(8, 8), 2, 4, **options)
    assert INVALID in str(info.value)


def test_unknown_method_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown method 'fast'.*tsenor, exact, greedy, rowwise"):
        tsenor.mask(weights(8, 8), 2, 4, method="fast")
    with pytest.raises(ValueError, match="unknown method"):
        tsenor.mask(weights(8, 8), 2, 4, method="TSENOR")


@pytest.mark.parametrize("call", [
    lambda w: tsenor.mask(w.tolist(), 2, 4),
    lambda w: tsenor.mask("w", 2, 4),
    lambda w: tsenor.mask(w, 2.0, 4),
    lambda w: tsenor.mask(w, True, 4),
    lambda w: tsenor.mask(w, 2, "4"),
    lambda w: tsenor.mask(w, 2, 4, method=1),
    lambda w: tsenor.mask(w, 2, 4, iterations=1.5),
    lambda w: tsenor.mask(w, 2, 4, tau="0.1"),
    lambda w: tsenor.mask(w, 2, 4, threads=2.0),
    lambda w: tsenor.check(w.tolist(), 2, 4),
])
def test_wrong_types_raise_type_error(call):
    with pytest.raises(TypeError):
        call(weights(8, 8))


def test_numpy_integers_are_ints():
    keep = tsenor.mask(weights(8, 8), np.int64(2), np.int32(4), iterations=np.int16(50))
    assert tsenor.check(keep, np.int64(2), 4)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_nonfinite_input_is_refused_and_untouched(dtype, bad):
    if dtype == "bfloat16":
        dtype = pytest.importorskip("ml_dtypes").bfloat16
    w = weights(32, 48).astype(dtype)
    w[17, 33] = bad
    before = w.copy()
    with pytest.raises(ValueError, match=NONFINITE):
        tsenor.mask(w, 8, 16)
    assert np.array_equal(w.view(np.uint8), before.view(np.uint8))


def test_nan_in_the_padding_of_a_row_slice_is_not_part_of_the_matrix():
    base = weights(32, 40)
    base[:, 32:] = np.nan
    assert tsenor.check(tsenor.mask(base[:, :32], 2, 4), 2, 4)


def test_check_refuses_bad_masks_arguments():
    keep = np.zeros((8, 8), bool)
    with pytest.raises(ValueError, match="dtype"):
        tsenor.check(keep.astype(np.float32), 2, 4)
    with pytest.raises(ValueError, match="2-D"):
        tsenor.check(keep.reshape(2, 4, 8), 2, 4)
    with pytest.raises(ValueError, match="empty"):
        tsenor.check(np.zeros((0, 8), bool), 2, 4)
    for n, m in [(0, 4), (4, 4), (2, 65)]:
        with pytest.raises(ValueError) as info:
            tsenor.check(keep, n, m)
        assert INVALID in str(info.value)


def test_the_c_entry_points_check_layouts_themselves():
    w = weights(8, 16)
    out = np.zeros((8, 16), np.uint8)
    with pytest.raises(ValueError, match="unit inner stride"):
        _core.mask_host(w.T, _core.DTYPE_F32, out.T.copy(), 2, 4, "tsenor", 0, 0.0, 0)
    with pytest.raises(ValueError, match="4-byte elements|2-byte elements"):
        _core.mask_host(w, _core.DTYPE_F16, out, 2, 4, "tsenor", 0, 0.0, 0)
    with pytest.raises(ValueError, match="the mask is 8 x 8"):
        _core.mask_host(w, _core.DTYPE_F32, out[:, :8], 2, 4, "tsenor", 0, 0.0, 0)
    assert not out.any()


def test_mask_written_only_on_success():
    w = weights(16, 16)
    w[3, 3] = np.nan
    out = np.full((16, 16), 7, np.uint8)
    with pytest.raises(ValueError, match=NONFINITE):
        _core.mask_host(w, _core.DTYPE_F32, out, 2, 4, "tsenor", 0, 0.0, 0)
    assert (out == 7).all()


def test_overlapping_input_and_output_are_refused():
    raw = np.zeros((16, 16), np.float32)
    with pytest.raises(ValueError) as info:
        _core.mask_host(raw, _core.DTYPE_F32, raw.view(np.uint8)[:, :16], 2, 4, "tsenor", 0, 0.0, 0)
    assert INVALID in str(info.value)


def test_read_only_output_is_refused():
    out = np.zeros((8, 8), np.uint8)
    out.setflags(write=False)
    with pytest.raises((BufferError, ValueError)):
        _core.mask_host(weights(8, 8), _core.DTYPE_F32, out, 2, 4, "tsenor", 0, 0.0, 0)
