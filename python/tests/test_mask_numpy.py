"""tsenor.mask and tsenor.check on NumPy arrays: results, dtypes, layouts."""
import subprocess

import numpy as np
import pytest

import tsenor
from tsenor import _arrays
from conftest import (assert_valid, brute_force_kept, cli_path, kept, rowwise_reference, weights)

PATTERNS = [(2, 4), (8, 16), (16, 32)]


@pytest.mark.parametrize("n,m", PATTERNS)
@pytest.mark.parametrize("method", ["tsenor", "exact", "greedy"])
def test_transposable_methods_give_valid_masks(method, n, m):
    w = weights(4 * m, 6 * m, seed=n)
    keep = tsenor.mask(w, n, m, method=method)
    assert keep.dtype == np.bool_ and keep.shape == w.shape
    assert_valid(keep, n, m)
    assert keep.sum() == n * w.size // m


@pytest.mark.parametrize("n,m", [(1, 3), (2, 4), (1, 4), (3, 4)])
def test_exact_is_optimal_against_brute_force(n, m):
    w = weights(3 * m + 1, 2 * m + 2, seed=m)     # edge blocks on both sides
    keep = tsenor.mask(w, n, m, method="exact")
    assert_valid(keep, n, m)
    assert kept(w, keep) == pytest.approx(brute_force_kept(w, n, m), rel=1e-6)


def test_tsenor_is_close_to_exact_and_better_than_greedy():
    w = weights(256, 256, seed=3)
    best = kept(w, tsenor.mask(w, 8, 16, method="exact"))
    pruned = float(np.abs(w).sum()) - best
    tsenor_error = (best - kept(w, tsenor.mask(w, 8, 16))) / pruned
    greedy_error = (best - kept(w, tsenor.mask(w, 8, 16, method="greedy"))) / pruned
    assert 0.0 <= tsenor_error <= 0.005
    assert tsenor_error < greedy_error


@pytest.mark.parametrize("n,m", [(2, 4), (8, 16), (3, 7)])
def test_rowwise_is_the_top_n_of_each_group(n, m):
    w = weights(20, 5 * m + 3, seed=m)
    keep = tsenor.mask(w, n, m, method="rowwise")
    assert np.array_equal(keep, rowwise_reference(w, n, m))
    assert tsenor.check(keep, n, m, transposable=False)


def test_same_mask_as_the_command_line(tmp_path):
    cli = cli_path()
    if cli is None:
        pytest.skip("build/tsenor not built (make), and TSENOR_CLI not set")
    for dtype in (np.float32, np.float16):
        w = weights(96, 128, seed=5, dtype=dtype)
        np.save(tmp_path / "w.npy", w)
        for method in tsenor.METHODS:
            out = tmp_path / ("mask_%s.npy" % method)
            subprocess.run([str(cli), "prune", str(tmp_path / "w.npy"), "-o", str(out), "--nm", "8:16",
                            "--masks", "--method", method, "--quiet", "--force"], check=True)
            expected = np.load(out)
            assert expected.dtype == np.uint8 and expected.shape == w.shape
            assert np.array_equal(tsenor.mask(w, 8, 16, method=method), expected.astype(bool)), (dtype, method)


@pytest.mark.parametrize("method", ["tsenor", "greedy", "rowwise"])
def test_half_precision_masks_equal_those_of_the_same_values_in_float32(method, ml_dtypes):
    w = weights(64, 96, seed=9)
    for half in (np.float16, ml_dtypes.bfloat16):
        h = w.astype(half)
        keep = tsenor.mask(h, 4, 8, method=method)
        assert np.array_equal(keep, tsenor.mask(h.astype(np.float32), 4, 8, method=method)), half


def test_options_are_passed_to_the_library():
    w = weights(128, 128, seed=11)
    default = tsenor.mask(w, 8, 16)
    assert np.array_equal(default, tsenor.mask(w, 8, 16, iterations=100, tau=0.01))
    assert np.array_equal(default, tsenor.mask(w, 8, 16, threads=1))
    few = tsenor.mask(w, 8, 16, iterations=1, tau=0.5)
    assert_valid(few, 8, 16)
    assert not np.array_equal(default, few)


def test_any_shape_from_one_element():
    assert tsenor.mask(np.array([[3.0]], np.float32), 2, 4).tolist() == [[True]]
    keep = tsenor.mask(weights(5, 7), 2, 4)
    assert keep.shape == (5, 7)
    assert_valid(keep, 2, 4)


# ---- layouts: read in place, or copied -------------------------------------------

def _same_as_contiguous(w, n=4, m=8):
    expected = tsenor.mask(np.ascontiguousarray(w), n, m)
    assert np.array_equal(tsenor.mask(w, n, m), expected)


def test_row_slice_is_read_in_place():
    base = weights(64, 160)
    w = base[:, :128]                              # leading dimension 160 > 128 columns
    assert np.shares_memory(_arrays.numpy_weights(w)[0], w)
    _same_as_contiguous(w)


def test_trailing_sub_block_is_read_in_place():
    base = weights(64, 160)
    w = base[16:, 40:]                             # its last row ends where the buffer ends
    assert np.shares_memory(_arrays.numpy_weights(w)[0], w)
    _same_as_contiguous(w)


def test_single_column_of_a_matrix_is_read_in_place():
    base = weights(64, 16)
    w = base[:, 3:4]
    assert np.shares_memory(_arrays.numpy_weights(w)[0], w)
    _same_as_contiguous(w)


@pytest.mark.parametrize("view", ["transposed", "fortran", "reversed_rows", "reversed_cols", "every_other_col",
                                  "broadcast", "unaligned", "big_endian"])
def test_other_layouts_are_copied_first(view):
    base = weights(64, 128)
    if view == "transposed":
        w = weights(128, 64).T
    elif view == "fortran":
        w = np.asfortranarray(base)
    elif view == "reversed_rows":
        w = base[::-1]
    elif view == "reversed_cols":
        w = base[:, ::-1]
    elif view == "every_other_col":
        w = weights(64, 256)[:, ::2]
    elif view == "broadcast":
        w = np.broadcast_to(base[0], (64, 128))
    elif view == "unaligned":
        raw = np.zeros(base.nbytes + 1, np.uint8)
        w = raw[1:].view(np.float32).reshape(base.shape)
        w[...] = base
        assert not w.flags.aligned
    else:
        w = base.astype(">f4")
    assert not np.shares_memory(_arrays.numpy_weights(w)[0], w)
    _same_as_contiguous(w)


def test_read_only_input_is_accepted_and_never_written():
    w = weights(32, 32)
    before = w.copy()
    w.setflags(write=False)
    assert_valid(tsenor.mask(w, 2, 4), 2, 4)
    assert np.array_equal(w, before)


def test_mask_owns_fresh_memory():
    w = weights(32, 32)
    keep = tsenor.mask(w, 2, 4)
    assert keep.flags.c_contiguous and keep.base is not None and keep.base.dtype == np.uint8
    assert not np.shares_memory(keep, w)


class DLPackOnly:
    """An array known only by its DLPack methods (as JAX's and others' are)."""
    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


def test_dlpack_arrays_on_the_cpu():
    w = weights(32, 64)
    keep = tsenor.mask(DLPackOnly(w), 4, 8)
    assert isinstance(keep, np.ndarray) and np.array_equal(keep, tsenor.mask(w, 4, 8))
    assert tsenor.check(DLPackOnly(keep), 4, 8)


# ---- check and check_report ------------------------------------------------------

def test_check_report_says_where_a_mask_fails():
    keep = tsenor.mask(weights(32, 48), 8, 16).copy()
    assert tsenor.check_report(keep, 8, 16) == tsenor.CheckReport(True, 6, 0, 0, 0, False, 0, False)
    row, col = 5, 20
    keep[row, col] = not keep[row, col]
    report = tsenor.check_report(keep, 8, 16)
    count = 9 if keep[row, col] else 7
    assert report == tsenor.CheckReport(False, 6, 1, row, 16, False, count, False)
    assert not tsenor.check(keep, 8, 16)
    assert not tsenor.check(keep, 8, 16, transposable=False)


def test_check_of_a_byte_other_than_zero_and_one():
    keep = tsenor.mask(weights(16, 16), 8, 16).astype(np.uint8)
    keep[3, 4] = 2
    report = tsenor.check_report(keep, 8, 16)
    assert not report.valid and report.bad_value and (report.row, report.col, report.count) == (3, 4, 2)


def test_check_rules_rowwise_and_at_most():
    w = weights(64, 64, seed=2)
    rowwise = tsenor.mask(w, 2, 4, method="rowwise")
    assert tsenor.check(rowwise, 2, 4, transposable=False)
    assert not tsenor.check(rowwise, 2, 4)
    empty = np.zeros((8, 8), bool)
    assert not tsenor.check(empty, 2, 4)
    assert tsenor.check(empty, 2, 4, at_most=True)
    assert not tsenor.check(np.ones((8, 8), bool), 2, 4, at_most=True)


def test_check_reads_uint8_and_strided_masks():
    keep = tsenor.mask(weights(32, 32), 2, 4)
    wide = np.zeros((32, 40), np.uint8)
    wide[:, :32] = keep
    assert tsenor.check(wide[:, :32], 2, 4)
    assert tsenor.check(np.asfortranarray(keep), 2, 4)
    assert tsenor.check(keep.T, 2, 4)          # a transposable mask, transposed, still is
