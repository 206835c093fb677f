"""Bad input to prune_layer and gram: ValueError with the library's status text, and
nothing written: not the inputs, not the caller's gram `out`."""
import numpy as np
import pytest

import tsenor
from tsenor import _core
from conftest import weights

INVALID = _core.status_string(_core.ERR_INVALID_ARGUMENT)
NONFINITE = "input holds NaN or infinity"


def layer(rows=16, cols=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3 * cols, cols)).astype(np.float32)
    return weights(rows, cols, seed), tsenor.gram(x)


def invalid(call, match=None):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert INVALID in str(info.value), str(info.value)
    return str(info.value)


# ---- prune_layer ----------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(32,), (2, 16, 32), ()])
def test_prune_w_of_other_rank(shape):
    _, gram = layer()
    invalid(lambda: tsenor.prune_layer(np.ones(shape, np.float32), gram, 2, 4), "w must be 2-D")


@pytest.mark.parametrize("gram_shape,match", [((32,), "gram must be 2-D"), ((16, 16), "gram is 16 x 16"),
                                              ((32, 31), "gram is 32 x 31"), ((2, 32, 32), "gram must be 2-D")])
def test_prune_gram_of_the_wrong_shape(gram_shape, match):
    w, _ = layer()
    invalid(lambda: tsenor.prune_layer(w, np.ones(gram_shape, np.float32), 2, 4), match)


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.uint16, np.bool_, np.complex64])
def test_prune_w_of_other_dtypes(dtype):
    _, gram = layer()
    invalid(lambda: tsenor.prune_layer(np.ones((16, 32), dtype), gram, 2, 4), "w has dtype")


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32])
def test_prune_gram_must_be_float32(dtype):
    w, gram = layer()
    invalid(lambda: tsenor.prune_layer(w, gram.astype(dtype), 2, 4), "gram has dtype")


@pytest.mark.parametrize("n,m", [(0, 4), (4, 4), (5, 4), (2, 65), (1, 1), (-1, 4), (2, 2**40)])
def test_prune_bad_n_or_m(n, m):
    w, gram = layer()
    invalid(lambda: tsenor.prune_layer(w, gram, n, m))


@pytest.mark.parametrize("options", [dict(damping=0.0), dict(damping=-1.0), dict(damping=float("nan")),
                                     dict(damping=1e9), dict(rho=0.0), dict(rho=-0.5), dict(rho=1e9),
                                     dict(iterations=0), dict(iterations=-2), dict(cg_iterations=-1),
                                     dict(threads=0), dict(mask_iterations=0), dict(tau=0.0), dict(tau=1e9)])
def test_prune_bad_option_values(options):
    w, gram = layer()
    invalid(lambda: tsenor.prune_layer(w, gram, 2, 4, **options))


def test_out_of_range_options_are_named():
    w, gram = layer()
    assert "damping=1e+09" in invalid(lambda: tsenor.prune_layer(w, gram, 2, 4, damping=1e9))
    assert "options out of range" in invalid(lambda: tsenor.prune_layer(w, gram, 2, 4, rho=1e9))


def test_unknown_methods_name_the_known_ones():
    w, gram = layer()
    invalid(lambda: tsenor.prune_layer(w, gram, 2, 4, method="obs"),
            "unknown pruning method 'obs'.*magnitude, wanda, sparsegpt, alps")
    invalid(lambda: tsenor.prune_layer(w, gram, 2, 4, method="ALPS"), "unknown pruning method")
    invalid(lambda: tsenor.prune_layer(w, gram, 2, 4, mask_method="alps"), "unknown method 'alps'")


@pytest.mark.parametrize("method", ["wanda", "sparsegpt", "alps"])
def test_no_gram_is_for_magnitude_only(method):
    w, _ = layer()
    invalid(lambda: tsenor.prune_layer(w, None, 2, 4, method=method), "no gram: only method 'magnitude'")


@pytest.mark.parametrize("where", ["w", "gram"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_prune_nonfinite_input_is_refused_and_untouched(where, bad):
    w, gram = layer()
    target = w if where == "w" else gram
    target[3, 5] = bad
    before_w, before_gram = w.copy(), gram.copy()
    with pytest.raises(ValueError, match=NONFINITE):
        tsenor.prune_layer(w, gram, 2, 4)
    assert w.tobytes() == before_w.tobytes() and gram.tobytes() == before_gram.tobytes()


@pytest.mark.parametrize("method", tsenor.PRUNE_METHODS[1:])
def test_gram_that_is_not_symmetric_or_not_definite(method):
    w, gram = layer()
    lopsided = gram.copy()
    lopsided[0, 1] += abs(gram[0, 1]) + gram[0, 0]
    invalid(lambda: tsenor.prune_layer(w, lopsided, 2, 4, method=method), "symmetric")
    indefinite = -np.eye(32, dtype=np.float32)
    invalid(lambda: tsenor.prune_layer(w, indefinite, 2, 4, method=method), "positive definite")


@pytest.mark.parametrize("call", [
    lambda w, g: tsenor.prune_layer(w.tolist(), g, 2, 4),
    lambda w, g: tsenor.prune_layer(w, g.tolist(), 2, 4),
    lambda w, g: tsenor.prune_layer(w, g, 2.0, 4),
    lambda w, g: tsenor.prune_layer(w, g, 2, 4, method=None),
    lambda w, g: tsenor.prune_layer(w, g, 2, 4, mask_method=3),
    lambda w, g: tsenor.prune_layer(w, g, 2, 4, damping="0.1"),
    lambda w, g: tsenor.prune_layer(w, g, 2, 4, iterations=2.5),
    lambda w, g: tsenor.prune_layer(w, g, 2, 4, cg_iterations=True),
    lambda w, g: tsenor.prune_layer(w, g, 2, 4, threads="2"),
    lambda w, g: tsenor.gram(w.tolist()),
    lambda w, g: tsenor.gram(w, g.tolist()),
    lambda w, g: tsenor.gram(w, threads=1.0),
])
def test_wrong_types_raise_type_error(call):
    call_args = layer()
    with pytest.raises(TypeError):
        call(*call_args)


def test_torch_gram_must_be_on_the_host_for_host_w(torch):
    w, gram = layer()
    t = torch.from_numpy(w)
    invalid(lambda: tsenor.prune_layer(t, torch.from_numpy(gram).double(), 2, 4), "gram has dtype")
    invalid(lambda: tsenor.prune_layer(t, torch.from_numpy(gram).to_sparse(), 2, 4), "layout")
    invalid(lambda: tsenor.prune_layer(t.reshape(2, 8, 32), torch.from_numpy(gram), 2, 4), "w must be 2-D")
    invalid(lambda: tsenor.prune_layer(t.to(torch.int32), torch.from_numpy(gram), 2, 4), "w has dtype")
    invalid(lambda: tsenor.prune_layer(t.to("meta"), torch.from_numpy(gram), 2, 4), "device meta")


# ---- gram -----------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(32,), ()])
def test_gram_x_of_rank_below_two(shape):
    invalid(lambda: tsenor.gram(np.ones(shape, np.float32)), "tokens x cols")


@pytest.mark.parametrize("shape", [(0, 8), (8, 0), (2, 0, 8)])
def test_gram_empty_x(shape):
    invalid(lambda: tsenor.gram(np.ones(shape, np.float32)), "empty")


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.bool_])
def test_gram_x_of_other_dtypes(dtype):
    invalid(lambda: tsenor.gram(np.ones((8, 8), dtype)), "x has dtype")


def out_cases():
    """(description, out, match) for outs that gram refuses; each must stay unchanged."""
    wide = np.full((16, 24), 3.0, np.float32)
    read_only = np.full((16, 16), 3.0, np.float32)
    read_only.setflags(write=False)
    return [
        ("float64", np.full((16, 16), 3.0), "out has dtype"),
        ("wrong shape", np.full((16, 15), 3.0, np.float32), "gram is 16 x 15"),
        ("too big", np.full((24, 24), 3.0, np.float32), "gram is 24 x 24"),
        ("3-D", np.full((1, 16, 16), 3.0, np.float32), "2-D"),
        ("read-only", read_only, "read-only"),
        ("transposed view", wide.T[:16, :], "unit inner stride"),
        ("column step", np.full((16, 32), 3.0, np.float32)[:, ::2], "unit inner stride"),
        ("big endian", np.full((16, 16), 3.0, ">f4"), "out has dtype"),
    ]


@pytest.mark.parametrize("case", range(len(out_cases())))
def test_gram_refuses_an_unusable_out_and_leaves_it_alone(case):
    _, out, match = out_cases()[case]
    before = out.copy()
    x = np.random.default_rng(1).standard_normal((40, 16)).astype(np.float32)
    invalid(lambda: tsenor.gram(x, out), match)
    assert out.dtype == before.dtype and out.tobytes() == before.tobytes()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_gram_nonfinite_x_leaves_out_alone(bad):
    x = np.random.default_rng(2).standard_normal((40, 16)).astype(np.float32)
    out = tsenor.gram(x)
    before = out.copy()
    x[39, 15] = bad
    with pytest.raises(ValueError, match=NONFINITE):
        tsenor.gram(x, out)
    assert out.tobytes() == before.tobytes()


def test_gram_out_overlapping_x_is_refused_and_untouched():
    buffer = np.random.default_rng(3).standard_normal((32, 16)).astype(np.float32)
    before = buffer.copy()
    invalid(lambda: tsenor.gram(buffer, buffer[:16]))
    assert buffer.tobytes() == before.tobytes()


def test_gram_bad_threads():
    x = np.ones((8, 8), np.float32)
    for threads in (0, -1):
        invalid(lambda: tsenor.gram(x, threads=threads), "threads")


def test_torch_gram_out_checks(torch):
    x = torch.ones(8, 16)
    for out, match in [(torch.zeros(16, 16, dtype=torch.float64), "dense torch.float32"),
                       (torch.zeros(16, 8), "gram is 16 x 8"),
                       (torch.zeros(16, 32).t()[:16], "unit inner stride")]:
        before = out.clone()
        invalid(lambda: tsenor.gram(x, out), match)
        assert torch.equal(out, before)
    invalid(lambda: tsenor.gram(torch.ones(8), None), "tokens x cols")
    invalid(lambda: tsenor.gram(x.to("meta")), "device meta")


def test_the_c_entry_points_check_shapes_themselves():
    w, gram = layer()
    out = np.zeros((16, 32), np.float32)
    keep = np.zeros((16, 32), np.uint8)
    args = (2, 4, "tsenor", 0, 0.0, 0, "alps", 0.0, 0, 0, 0.0)
    invalid(lambda: _core.prune_host(w, gram, out[:, :16], keep, *args), "out is 16 x 16")
    invalid(lambda: _core.prune_host(w, gram, out, keep[:8], *args), "the mask 8 x 32")
    invalid(lambda: _core.prune_host(w, gram[:16, :16], out, keep, *args), "gram is 16 x 16")
    invalid(lambda: _core.prune_host(w.astype(np.float16), gram, out, keep, *args), "2-byte elements, expected 4")
    assert not out.any() and not keep.any()
    # overlapping buffers: out inside gram, the mask inside out (refused, nothing written)
    before = gram.copy()
    invalid(lambda: _core.prune_host(w, gram, gram[:16], keep, *args), "overlap")
    invalid(lambda: _core.prune_host(w, gram, out, out.view(np.uint8)[:, :32], *args), "overlap")
    assert gram.tobytes() == before.tobytes() and not out.any() and not keep.any()
    invalid(lambda: _core.gram_host(w, gram[:16], 0), "gram is 16 x 32")
