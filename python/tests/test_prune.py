"""tsenor.prune_layer and tsenor.gram on NumPy arrays and CPU torch tensors: the C
library's results bit for bit, dtypes, layouts, options and the report."""
import os
import subprocess
import sysconfig

import numpy as np
import pytest

import tsenor
from tsenor import _arrays
from conftest import REPO, assert_valid, weights

PATTERNS = [(2, 4), (8, 16), (16, 32)]


def calibration(tokens, cols, seed=0):
    """Correlated inputs, as a layer's activations are: a random mixing of Gaussians."""
    rng = np.random.default_rng(seed + 100)
    mix = rng.standard_normal((cols, cols)) / np.sqrt(cols) + np.eye(cols)
    return (rng.standard_normal((tokens, cols)) @ mix).astype(np.float32)


def layer(rows, cols, seed=0, tokens=None):
    """(w, gram) of a layer and its calibration inputs."""
    x = calibration(tokens or 2 * cols, cols, seed)
    return weights(rows, cols, seed), tsenor.gram(x)


def relative_error(w, pruned, gram):
    """tr(D H D^T) / tr(W H W^T) in float64."""
    w = np.asarray(w, np.float64)
    d = w - np.asarray(pruned, np.float64)
    h = np.asarray(gram, np.float64)
    return float(np.einsum("ij,jk,ik->", d, h, d) / np.einsum("ij,jk,ik->", w, h, w))


# ---- the C library's answer ---------------------------------------------------------

@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """Runs python/tests/prune_reference.c, built with the flags setuptools gives the
    extension (the compiler's choices of vector code and contraction then agree)."""
    source = REPO / "python" / "tests" / "prune_reference.c"
    folder = REPO / "build" / "python" if (REPO / "build").is_dir() else tmp_path_factory.mktemp("reference")
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / "prune_reference"
    inputs = [source, REPO / "tsenor.h"]
    if not program.is_file() or any(p.stat().st_mtime > program.stat().st_mtime for p in inputs):
        flags = " ".join(sysconfig.get_config_var(v) or "" for v in ("CC", "CFLAGS", "CCSHARED")).split()
        command = flags + ["-O2", "-fopenmp", "-I", str(REPO), "-o", str(program), str(source), "-lm"]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True)
        except FileNotFoundError:
            pytest.skip("no C compiler (%s) to build the reference program" % flags[0])
        except subprocess.CalledProcessError as e:
            pytest.fail("the reference program did not build:\n%s" % e.stderr)
    tmp = tmp_path_factory.mktemp("runs")

    def prune(w, gram, n, m, mask_method="tsenor", mask_iterations=0, tau=0.0, threads=0, method="alps",
              damping=0.0, iterations=0, cg_iterations=0, rho=0.0):
        rows, cols = w.shape
        w.astype("<f4").tofile(tmp / "w")
        if gram is not None:
            gram.astype("<f4").tofile(tmp / "gram")
        args = [str(program), "prune", str(tmp / "w"), str(rows), str(cols), str(tmp / "gram") if gram is not None else "-",
                str(n), str(m), mask_method, str(mask_iterations), repr(tau), str(threads), method, repr(damping),
                str(iterations), str(cg_iterations), repr(rho), str(tmp / "out"), str(tmp / "mask")]
        run = subprocess.run(args, capture_output=True, text=True)
        assert run.returncode == 0, (run.returncode, run.stderr)
        error, its, cg = run.stdout.split()
        out = np.fromfile(tmp / "out", "<f4").reshape(rows, cols)
        mask = np.fromfile(tmp / "mask", np.uint8).reshape(rows, cols)
        return out, mask, float(error), int(its), int(cg)

    def gram(x, start, threads=0):
        tokens, cols = x.shape
        x.astype("<f4").tofile(tmp / "x")
        start.astype("<f4").tofile(tmp / "g0")
        run = subprocess.run([str(program), "gram", str(tmp / "x"), str(tokens), str(cols), str(tmp / "g0"),
                              str(threads), str(tmp / "g1")], capture_output=True, text=True)
        assert run.returncode == 0, (run.returncode, run.stderr)
        return np.fromfile(tmp / "g1", "<f4").reshape(cols, cols)

    prune.gram = gram
    return prune


def same_bits(a, b):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("method", tsenor.PRUNE_METHODS)
@pytest.mark.parametrize("n,m", PATTERNS)
def test_numpy_equals_the_c_library_bit_for_bit(reference, method, n, m):
    w, gram = layer(3 * m + 5, 4 * m + 3, seed=m)         # partial blocks at both edges
    pruned, keep, report = tsenor.prune_layer(w, gram, n, m, method=method, threads=2)
    out, mask, error, iterations, cg = reference(w, gram, n, m, method=method, threads=2)
    assert same_bits(pruned, out)
    assert same_bits(keep.view(np.uint8), mask)
    assert report.error == error and report.iterations == iterations and report.cg_iterations == cg
    assert_valid(keep, n, m)


@pytest.mark.parametrize("mask_method", ["exact", "greedy", "rowwise"])
@pytest.mark.parametrize("method", ["wanda", "sparsegpt", "alps"])
def test_every_mask_method_equals_the_c_library(reference, method, mask_method):
    w, gram = layer(48, 64, seed=3)
    pruned, keep, report = tsenor.prune_layer(w, gram, 4, 8, method=method, mask_method=mask_method)
    out, mask, error, _, _ = reference(w, gram, 4, 8, method=method, mask_method=mask_method)
    assert same_bits(pruned, out) and same_bits(keep.view(np.uint8), mask) and report.error == error
    assert_valid(keep, 4, 8, transposable=mask_method != "rowwise")


def test_options_reach_the_library(reference):
    w, gram = layer(64, 64, seed=4)
    options = dict(damping=0.05, iterations=7, cg_iterations=3, rho=0.2, mask_iterations=20, tau=0.05, threads=1)
    pruned, keep, report = tsenor.prune_layer(w, gram, 8, 16, **options)
    out, mask, error, iterations, cg = reference(w, gram, 8, 16, damping=0.05, iterations=7, cg_iterations=3,
                                                 rho=0.2, mask_iterations=20, tau=0.05, threads=1)
    assert same_bits(pruned, out) and same_bits(keep.view(np.uint8), mask) and report.error == error
    assert report.iterations == iterations <= 7 and report.cg_iterations == cg <= 3
    default = tsenor.prune_layer(w, gram, 8, 16)[0]
    assert not np.array_equal(pruned, default)


def test_cg_iterations_zero_means_none(reference):
    w, gram = layer(32, 64, seed=5)
    pruned, _, report = tsenor.prune_layer(w, gram, 8, 16, cg_iterations=0)
    assert report.cg_iterations == 0
    assert same_bits(pruned, reference(w, gram, 8, 16, cg_iterations=-1)[0])


def test_magnitude_needs_no_gram(reference):
    w = weights(40, 48, seed=6)
    pruned, keep, report = tsenor.prune_layer(w, None, 8, 16, method="magnitude")
    out, mask, _, _, _ = reference(w, None, 8, 16, method="magnitude")
    assert same_bits(pruned, out) and same_bits(keep.view(np.uint8), mask)
    assert report.error == 0.0
    assert np.array_equal(keep, tsenor.mask(w, 8, 16))           # the mask of |w| itself
    assert np.array_equal(pruned, np.where(keep, w, 0))


def test_gram_equals_the_c_library_bit_for_bit(reference):
    x = calibration(300, 72, seed=7)
    start = tsenor.gram(calibration(50, 72, seed=8))
    assert same_bits(tsenor.gram(x, start.copy(), threads=2), reference.gram(x, start, threads=2))
    assert same_bits(tsenor.gram(x), reference.gram(x, np.zeros((72, 72), np.float32)))


def test_thread_counts_give_the_same_bits():
    w, gram = layer(80, 96, seed=9)
    for method in tsenor.PRUNE_METHODS:
        one = tsenor.prune_layer(w, gram, 8, 16, method=method, threads=1)
        two = tsenor.prune_layer(w, gram, 8, 16, method=method, threads=2)
        assert same_bits(one[0], two[0]) and np.array_equal(one[1], two[1]) and one[2].error == two[2].error
    x = calibration(200, 96)
    assert same_bits(tsenor.gram(x, threads=1), tsenor.gram(x, threads=2))


# ---- what the results are -----------------------------------------------------------

@pytest.mark.parametrize("method", tsenor.PRUNE_METHODS)
def test_results_and_report(method):
    w, gram = layer(64, 96, seed=10)
    pruned, keep, report = tsenor.prune_layer(w, gram, 8, 16, method=method)
    assert pruned.dtype == np.float32 and pruned.shape == w.shape
    assert keep.dtype == np.bool_ and keep.shape == w.shape
    assert_valid(keep, 8, 16)
    assert (pruned[~keep] == 0).all()
    if method in ("magnitude", "wanda"):
        assert np.array_equal(pruned[keep], w[keep])                # kept weights unchanged
    assert isinstance(report, tsenor.PruneReport)
    assert report.error == pytest.approx(relative_error(w, pruned, gram), rel=1e-3)
    assert 0 < report.error < 1
    assert report.seconds > 0 and report.backend and report.projections >= 1
    assert (report.iterations > 0) == (method == "alps")
    if method == "alps":
        assert report.factorizations >= 1 and report.projection_seconds <= report.seconds


def test_updating_methods_lower_the_error():
    w, gram = layer(128, 128, seed=11, tokens=160)
    errors = {method: tsenor.prune_layer(w, gram, 8, 16, method=method)[2].error for method in tsenor.PRUNE_METHODS}
    assert errors["alps"] < errors["sparsegpt"] < errors["magnitude"]
    assert errors["wanda"] < errors["magnitude"]


def test_report_is_frozen():
    report = tsenor.prune_layer(*layer(16, 16), 2, 4)[2]
    with pytest.raises(Exception):
        report.error = 0.0
    assert "error=" in repr(report)


def test_inputs_are_never_written():
    w, gram = layer(48, 64, seed=12)
    w0, g0 = w.copy(), gram.copy()
    tsenor.prune_layer(w, gram, 4, 8)
    assert same_bits(w, w0) and same_bits(gram, g0)


def test_gram_accumulates_and_flattens_leading_dimensions():
    x = calibration(240, 48, seed=13)
    total = tsenor.gram(x[:100])
    returned = tsenor.gram(x[100:], total)
    assert returned is total
    assert np.allclose(total, x.astype(np.float64).T @ x, rtol=1e-4, atol=1e-3)
    assert np.array_equal(total, total.T)                           # both triangles, exactly
    batch = x.reshape(4, 60, 48)                                    # (batch, sequence, features)
    assert same_bits(tsenor.gram(batch), tsenor.gram(x))


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_half_precision_is_computed_in_float32(half, ml_dtypes):
    dtype = ml_dtypes.bfloat16 if half == "bfloat16" else np.float16
    w, gram = layer(48, 64, seed=14)
    wh = w.astype(dtype)
    pruned, keep, report = tsenor.prune_layer(wh, gram, 4, 8)
    widened, keep32, report32 = tsenor.prune_layer(wh.astype(np.float32), gram, 4, 8)
    assert pruned.dtype == wh.dtype
    assert np.array_equal(keep, keep32) and report.error == report32.error
    assert same_bits(pruned, widened.astype(dtype))
    x = calibration(64, 32, seed=15).astype(dtype)
    assert same_bits(tsenor.gram(x), tsenor.gram(x.astype(np.float32)))


def test_layouts_read_in_place_or_copied():
    w, gram = layer(64, 160, seed=16)
    big_gram = np.zeros((160, 200), np.float32)
    big_gram[:, :160] = gram
    row_slice = big_gram[:, :160]                                   # leading dimension 200
    assert np.shares_memory(_arrays.numpy_float32(row_slice, "gram", halves=False), row_slice)
    expected = tsenor.prune_layer(w, gram, 8, 16)
    for w_view, g_view in ((w, row_slice), (np.asfortranarray(w), gram), (w.T.copy().T, gram.T)):
        got = tsenor.prune_layer(w_view, g_view, 8, 16)
        assert same_bits(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    x = calibration(100, 48, seed=17)
    assert same_bits(tsenor.gram(x[::2]), tsenor.gram(np.ascontiguousarray(x[::2])))
    assert same_bits(tsenor.gram(np.asfortranarray(x)), tsenor.gram(x))


def test_gram_out_may_be_a_row_slice_and_only_its_columns_are_written():
    x = calibration(100, 32, seed=18)
    wide = np.full((32, 40), 5.0, np.float32)
    tsenor.gram(x, wide[:, :32])
    assert same_bits(wide[:, :32], tsenor.gram(x, np.full((32, 32), 5.0, np.float32)))
    assert (wide[:, 32:] == 5.0).all()


def test_any_shape_from_one_element():
    pruned, keep, report = tsenor.prune_layer(np.array([[2.0]], np.float32), np.array([[1.0]], np.float32), 2, 4)
    assert pruned.tolist() == [[2.0]] and keep.tolist() == [[True]] and report.error == 0.0
    w, gram = layer(5, 7, seed=19)
    pruned, keep, _ = tsenor.prune_layer(w, gram, 2, 4)
    assert_valid(keep, 2, 4)


# ---- torch on the CPU -----------------------------------------------------------------

@pytest.mark.parametrize("method", ["magnitude", "sparsegpt", "alps"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_torch_equals_numpy_of_the_same_values(torch, dtype, method):
    w, gram = layer(48, 64, seed=20)
    t = torch.from_numpy(w).to(getattr(torch, dtype))
    pruned, keep, report = tsenor.prune_layer(t, torch.from_numpy(gram), 8, 16, method=method)
    assert isinstance(pruned, torch.Tensor) and pruned.dtype == t.dtype and pruned.device.type == "cpu"
    assert keep.dtype == torch.bool and tuple(keep.shape) == (48, 64)
    expected = tsenor.prune_layer(t.float().numpy(), gram, 8, 16, method=method)   # widening is exact
    assert torch.equal(pruned, torch.from_numpy(expected[0]).to(t.dtype))
    assert np.array_equal(keep.numpy(), expected[1]) and report.error == expected[2].error


def test_torch_parameters_and_numpy_grams(torch):
    w, gram = layer(32, 48, seed=21)
    p = torch.nn.Parameter(torch.from_numpy(w.copy()))
    pruned, keep, _ = tsenor.prune_layer(p, gram, 4, 8)             # a NumPy gram with a CPU tensor
    assert not pruned.requires_grad and not keep.requires_grad
    assert torch.equal(p.detach(), torch.from_numpy(w))             # not written
    assert np.array_equal(pruned.numpy(), tsenor.prune_layer(w, gram, 4, 8)[0])


def test_torch_gram(torch):
    x = calibration(120, 40, seed=22)
    t = torch.from_numpy(x).reshape(3, 40, 40)
    h = tsenor.gram(t)
    assert isinstance(h, torch.Tensor) and h.dtype == torch.float32 and tuple(h.shape) == (40, 40)
    assert same_bits(h.numpy(), tsenor.gram(x))
    out = torch.ones(40, 40)
    assert tsenor.gram(t.to(torch.bfloat16), out) is out
    assert same_bits(out.numpy(), tsenor.gram(t.to(torch.bfloat16).float().numpy(), np.ones((40, 40), np.float32)))
    x_grad = torch.from_numpy(x).requires_grad_()
    assert same_bits(tsenor.gram(x_grad).numpy(), tsenor.gram(x))


def test_torch_strided_inputs(torch):
    w, gram = layer(64, 96, seed=23)
    expected = tsenor.prune_layer(w, gram, 8, 16)
    wide = torch.zeros(64, 120)
    wide[:, :96] = torch.from_numpy(w)
    for t in (wide[:, :96], torch.from_numpy(w.T.copy()).t()):
        pruned, keep, _ = tsenor.prune_layer(t, torch.from_numpy(gram), 8, 16)
        assert np.array_equal(pruned.numpy(), expected[0]) and np.array_equal(keep.numpy(), expected[1])
