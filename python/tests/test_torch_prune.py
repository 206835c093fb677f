"""tsenor.torch.prune on small models built here: the order of pruning (each block on
the outputs of the blocks pruned before), which layers, reports, progress, masks kept
during fine-tuning, Ctrl-C, bad input."""
import _thread
import copy
import re
import threading

import numpy as np
import pytest

import tsenor
from conftest import REPO

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.filterwarnings("ignore:tsenor.torch.prune.*never ran"),
              pytest.mark.filterwarnings("ignore:tsenor.torch.prune. fit=.dense. on")]   # small calibration sets
import tsenor.torch as tt  # noqa: E402  (needs torch)
from torch import nn  # noqa: E402


class Block(nn.Module):
    """A residual MLP block, as in a transformer."""

    def __init__(self, width, hidden):
        super().__init__()
        self.up = nn.Linear(width, hidden)
        self.down = nn.Linear(hidden, width)

    def forward(self, x, scale=1.0):
        return x + scale * self.down(torch.relu(self.up(x)))


class Tiny(nn.Module):
    """Embedding-like input projection, a stack of blocks, a norm and a head."""

    def __init__(self, width=64, hidden=128, depth=3, vocab=96):
        super().__init__()
        self.embed_in = nn.Linear(vocab, width)          # excluded by default (embeddings)
        self.layers = nn.ModuleList(Block(width, hidden) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.mix = nn.Linear(width, width)               # after the stack: pruned on its own
        self.lm_head = nn.Linear(width, vocab)           # excluded by default (head)
        self.unused = nn.Linear(width, width)            # never runs

    def forward(self, x, scale=1.0):
        h = self.embed_in(x)
        for layer in self.layers:
            h = layer(h, scale=scale)
        return self.lm_head(self.mix(self.norm(h)))


def tiny(seed=0, **kw):
    torch.manual_seed(seed)
    return Tiny(**kw)


def batches(count=3, tokens=40, vocab=96, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, tokens // 2, vocab, generator=g) for _ in range(count)]


def prune_quietly(model, calibration, n=8, m=16, **kw):
    kw.setdefault("method", "sparsegpt")
    return tt.prune(model, calibration, n, m, progress=False, **kw)


def reference_prune(model, calibration, groups, n, m, **options):
    """The documented algorithm, written out plainly: group by group, Grams of the
    layers' inputs with the groups before already pruned, then prune_layer."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for group in groups:
            grams = {}
            hooks = [modules[name].register_forward_hook(
                lambda mod, inp, out, name=name: grams.__setitem__(name, tsenor.gram(inp[0], grams.get(name))))
                for name in group]
            for batch in calibration:
                model(batch)
            for h in hooks:
                h.remove()
            for name in group:
                pruned, _, _ = tsenor.prune_layer(modules[name].weight, grams[name], n, m, **options)
                modules[name].weight.copy_(pruned)


BLOCK_GROUPS = [["layers.%d.up" % k, "layers.%d.down" % k] for k in range(3)] + [["mix"]]


@pytest.mark.parametrize("method", ["sparsegpt", "alps"])
def test_each_block_sees_the_blocks_pruned_before(method):
    model, calibration = tiny(), batches()
    expected = copy.deepcopy(model)
    options = dict(method=method, iterations=5) if method == "alps" else dict(method=method)
    reports = prune_quietly(model, calibration, **options)
    assert [r.name for r in reports] == [name for group in BLOCK_GROUPS for name in group]
    reference_prune(expected, calibration, BLOCK_GROUPS, 8, 16, **options)
    for (name, a), (_, b) in zip(model.named_parameters(), expected.named_parameters()):
        assert torch.equal(a, b), name


class Counting(Tiny):
    """Tiny that counts its forwards; chained=False puts an op between the blocks, so
    a block's input is not the previous block's output (no replay from cached inputs)."""

    def __init__(self, chained=True, **kw):
        super().__init__(**kw)
        self.chained, self.forwards = chained, 0

    def forward(self, x, scale=1.0):
        self.forwards += 1
        h = self.embed_in(x)
        for layer in self.layers:
            h = layer(h, scale=scale) if self.chained else layer(h, scale=scale) * 1.0
        return self.lm_head(self.mix(self.norm(h)))


@pytest.mark.parametrize("chained", [True, False])
def test_the_stack_runs_from_cached_inputs_when_it_chains(chained, monkeypatch):
    torch.manual_seed(3)
    model, calibration = Counting(chained=chained, depth=4), batches(count=3)
    slow = copy.deepcopy(model)
    reports = prune_quietly(model, calibration, method="alps", iterations=5)
    monkeypatch.setattr(tt, "REPLAY", False)
    prune_quietly(slow, calibration, method="alps", iterations=5)
    assert len(reports) == 4 * 2 + 1
    for (name, a), (_, b) in zip(model.named_parameters(), slow.named_parameters()):
        assert torch.equal(a, b), name
    # whole-model forwards: the grouping pass, then per batch one for each group (slow:
    # 4 blocks, mix, and unused, which never runs), or one to record the first block's
    # inputs and one for each group outside the stack; unchained, the slow way after the
    # one forward that found it out
    assert slow.forwards == 1 + 3 * (4 + 2)
    assert model.forwards == (1 + 3 * (1 + 2) if chained else slow.forwards + 1)


def test_pruning_every_layer_on_dense_inputs_would_differ():
    # the check above can fail: Grams of the dense model's inputs give other weights
    model, calibration = tiny(), batches()
    dense_inputs = copy.deepcopy(model)
    prune_quietly(model, calibration)
    reference_prune(dense_inputs, calibration, [sum(BLOCK_GROUPS, [])], 8, 16, method="sparsegpt")
    assert not torch.equal(model.layers[2].up.weight, dense_inputs.layers[2].up.weight)
    assert torch.equal(model.layers[0].up.weight, dense_inputs.layers[0].up.weight)   # nothing before it


def test_reports_and_masks():
    model, calibration = tiny(), batches()
    before = copy.deepcopy(model)
    reports = prune_quietly(model, calibration, n=4, m=8)
    modules = dict(model.named_modules())
    for r in reports:
        weight = modules[r.name].weight
        assert r.shape == tuple(weight.shape) and r.pattern == "4:8 transposable" and r.method == "sparsegpt"
        assert r.tokens == 3 * 40 and r.seconds > 0 and 0 < r.error < 1 and r.error == r.report.error
        assert r.mask.dtype == torch.bool and tuple(r.mask.shape) == r.shape
        assert tsenor.check(r.mask, 4, 8) and not weight[~r.mask].any()
        assert not torch.equal(weight, dict(before.named_modules())[r.name].weight)
    rowwise = prune_quietly(tiny(), calibration, n=2, m=4, mask_method="rowwise", method="wanda")
    assert all(r.pattern == "2:4 row-wise" and tsenor.check(r.mask, 2, 4, transposable=False) for r in rowwise)


def test_layers_left_out_are_untouched():
    model, calibration = tiny(), batches()
    before = copy.deepcopy(model)
    with pytest.warns(UserWarning, match="unused never ran"):
        reports = prune_quietly(model, calibration, exclude=[r"layers\.1\."], include=None)
    pruned = {r.name for r in reports}
    assert pruned == {"layers.0.up", "layers.0.down", "layers.2.up", "layers.2.down", "mix"}
    for name, p in model.named_parameters():
        if name.rsplit(".", 1)[0] not in pruned or name.endswith(".bias"):
            assert torch.equal(p, dict(before.named_parameters())[name]), name


def test_which_layers_by_the_command_lines_rules():
    model = tiny()
    names = lambda **kw: [n for n, _ in tt.prunable_layers(model, **kw)]  # noqa: E731
    blocks = ["layers.%d.%s" % (k, p) for k in range(3) for p in ("up", "down")]
    assert names() == blocks + ["mix", "unused"]
    assert names(include="lm_head|embed") == ["embed_in", "lm_head"]       # include overrides the defaults
    assert names(include=[r"\.up\.weight$"], exclude=[r"layers\.0"]) == ["layers.1.up", "layers.2.up"]
    assert names(default_excludes=False) == ["embed_in"] + blocks + ["mix", "lm_head", "unused"]
    with pytest.raises(ValueError, match="include"):
        names(include="(")


def test_default_excludes_are_the_command_lines():
    source = (REPO / "cli" / "tsenor_cli.c").read_text()
    table = re.search(r"default_excludes\[\] = \{(.*?)\n\};", source, re.S).group(1)
    c_patterns = [bytes(p, "ascii").decode("unicode_escape") for p in re.findall(r'\{"((?:[^"\\]|\\.)*)", "', table)]
    assert c_patterns == [p for p, _ in tt.DEFAULT_EXCLUDES]
    for weight, excluded in [("model.embed_tokens.weight", True), ("transformer.wte.weight", True),
                             ("lm_head.weight", True), ("classifier.weight", True), ("encoder.output.dense.weight", False),
                             ("layers.0.input_layernorm.weight", True), ("h.0.ln_1.weight", True),
                             ("layers.0.mlp.up_proj.weight", False)]:
        assert any(re.search(p, weight, re.I) for p, _ in tt.DEFAULT_EXCLUDES) == excluded, weight


def test_batches_of_every_kind_and_dtypes_kept():
    class Keywords(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = tiny()

        def forward(self, inputs, scale=1.0):
            return self.body(inputs, scale)

    calibration = batches(2)
    as_tensors = prune_quietly(tiny(), calibration)
    as_dicts = prune_quietly(Keywords(), [{"inputs": b, "scale": 1.0} for b in calibration])
    as_tuples = prune_quietly(tiny(), [(b, 1.0) for b in calibration])
    assert [r.error for r in as_tensors] == [r.error for r in as_dicts] == [r.error for r in as_tuples]
    model = tiny().to(torch.bfloat16)
    reports = prune_quietly(model, [b.to(torch.bfloat16) for b in calibration])
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert all(tsenor.check(r.mask, 8, 16) for r in reports)


def test_modes_are_restored():
    model = tiny().train()
    model.config = type("Config", (), {"use_cache": True})()
    seen = []
    model.mix.register_forward_hook(lambda mod, inp, out: seen.append((model.training, model.config.use_cache,
                                                                       torch.is_grad_enabled())))
    prune_quietly(model, batches(1))
    assert seen and all(s == (False, False, False) for s in seen)
    assert model.training and model.config.use_cache
    assert all(not m._forward_hooks or m is model.mix for m in model.modules())


def test_progress_bar_or_plain_lines(capsys, monkeypatch):
    pytest.importorskip("tqdm")
    tt.prune(tiny(), batches(1), 8, 16, method="magnitude")
    err = capsys.readouterr().err
    assert "tsenor" in err and "8/8" in err and "layer" in err        # tqdm's bar
    monkeypatch.setitem(__import__("sys").modules, "tqdm", None)        # as if not installed
    monkeypatch.setitem(__import__("sys").modules, "tqdm.auto", None)
    tt.prune(tiny(), batches(1), 8, 16, method="magnitude")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("tsenor: [1/8] layers.0.up 128x64 magnitude 8:16 transposable: error ")
    assert lines[-2].startswith("tsenor: [7/8] mix 64x64")
    assert lines[-1] == "tsenor: [8/8] unused never ran on the calibration data: left dense"
    tt.prune(tiny(), batches(1), 8, 16, method="magnitude", progress=False)
    assert capsys.readouterr().err == ""


def test_ctrl_c_between_layers_leaves_whole_layers(monkeypatch, ctrl_c):
    model, calibration = tiny(), batches()
    before = copy.deepcopy(model)
    real = tt.prune_layer
    calls = []

    def interrupted_during_the_third(*args, **kw):
        calls.append(1)
        if len(calls) < 3:
            return real(*args, **kw)
        ctrl_c = threading.Thread(target=_thread.interrupt_main)     # arrives while C works
        ctrl_c.start()
        result = real(*args, **kw)
        ctrl_c.join()
        return result

    monkeypatch.setattr(tt, "prune_layer", interrupted_during_the_third)
    with pytest.raises(KeyboardInterrupt):
        prune_quietly(model.train(), calibration)
    assert len(calls) == 3                      # the option check, then two layers
    now, then = dict(model.named_modules()), dict(before.named_modules())
    assert not torch.equal(now["layers.0.up"].weight, then["layers.0.up"].weight)
    assert tsenor.check(now["layers.0.up"].weight != 0, 8, 16, at_most=True)
    for name in ("layers.0.down", "layers.1.up", "mix"):
        assert torch.equal(now[name].weight, then[name].weight), name
    assert model.training and all(not m._forward_hooks for m in model.modules())


def reference_prune_dense(model, calibration, groups, n, m, damping=0.01, **options):
    """fit="dense" written out plainly: each group's layers see the inputs of the model
    as pruned so far (X) and of an untouched copy of it (X_dense); V = W (C^T + lam I)(H + lam
    I)^-1 with H = X^T X, C = X^T X_dense, then prune_layer(V, H)."""
    dense = copy.deepcopy(model)
    modules, dense_modules = dict(model.named_modules()), dict(dense.named_modules())
    with torch.no_grad():
        for group in groups:
            seen, grams, cross = {}, {}, {}

            def pruned_hook(mod, inp, out, name):
                x, xd = inp[0], seen[name]
                grams[name] = tsenor.gram(x, grams.get(name))
                c = x.reshape(-1, x.shape[-1]).T @ xd.reshape(-1, x.shape[-1])
                cross[name] = c if name not in cross else cross[name] + c

            hooks = [dense_modules[name].register_forward_hook(
                lambda mod, inp, out, name=name: seen.__setitem__(name, inp[0])) for name in group]
            hooks += [modules[name].register_forward_hook(
                lambda mod, inp, out, name=name: pruned_hook(mod, inp, out, name)) for name in group]
            for batch in calibration:
                dense(batch)
                model(batch)
            for h in hooks:
                h.remove()
            for name in group:
                h, c, w = grams[name].double(), cross[name].double(), modules[name].weight.double()
                lam = damping * float(h.diagonal().mean())
                eye = torch.eye(len(h), dtype=torch.float64)
                v = torch.linalg.solve(h + lam * eye, (c + lam * eye) @ w.T).T.float()
                pruned, _, _ = tsenor.prune_layer(v, grams[name], n, m, damping=damping, **options)
                modules[name].weight.copy_(pruned)


@pytest.mark.parametrize("method", ["sparsegpt", "alps"])
def test_fit_dense_is_the_ridge_fit_of_the_dense_outputs(method):
    model, calibration = tiny(), batches()
    expected = copy.deepcopy(model)
    options = dict(method=method, iterations=5) if method == "alps" else dict(method=method)
    reports = prune_quietly(model, calibration, fit="dense", **options)
    assert [r.name for r in reports] == [name for group in BLOCK_GROUPS for name in group]
    # the stack's layers fit the dense outputs one after the other; "mix", after the
    # stack, its own (as "pruned")
    reference_prune_dense(expected, calibration, [[name] for group in BLOCK_GROUPS[:-1] for name in group], 8, 16,
                          **options)
    reference_prune(expected, calibration, BLOCK_GROUPS[-1:], 8, 16, **options)
    for (name, a), (_, b) in zip(model.named_parameters(), expected.named_parameters()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), name


def stack_output(model, x):
    """The output of Tiny's stack of blocks (what the pruned layers make)."""
    h = model.embed_in(x)
    for layer in model.layers:
        h = layer(h)
    return h


def stack_error_by_fit(**kw):
    """{fit: squared distance of the pruned stack's outputs to the dense one's on
    held-out inputs} for SPARSEGPT 4:8 of a 4-block Tiny; asserts every mask valid."""
    torch.manual_seed(5)
    dense = Tiny(depth=4)
    held_out = batches(count=2, seed=9)
    by_fit = {}
    for fit in ("pruned", "dense"):
        model = copy.deepcopy(dense)
        reports = prune_quietly(model, batches(count=6, tokens=120), 4, 8, fit=fit, **kw)
        assert all(tsenor.check(r.mask, 4, 8) for r in reports)
        with torch.no_grad():
            by_fit[fit] = sum(float((stack_output(model, x) - stack_output(dense, x)).square().sum())
                              for x in held_out)
    return by_fit, reports, dense


def test_fit_dense_tracks_the_dense_model_better():
    # can fail: on held-out inputs the dense fit's outputs are nearer the dense model's
    by_fit, _, dense = stack_error_by_fit()
    assert by_fit["dense"] < 0.9 * by_fit["pruned"], by_fit
    # the first layer sees the dense inputs either way: the fit is W itself there
    a, b = copy.deepcopy(dense), copy.deepcopy(dense)
    prune_quietly(a, batches(), fit="dense", include=[r"layers\.[01]\."])
    prune_quietly(b, batches(), fit="pruned", include=[r"layers\.[01]\."])
    assert torch.allclose(a.layers[0].up.weight, b.layers[0].up.weight, atol=1e-5)
    assert not torch.allclose(a.layers[1].up.weight, b.layers[1].up.weight, atol=1e-3)


def test_fit_dense_outside_a_chained_stack_fits_the_pruned_outputs():
    torch.manual_seed(3)
    model, calibration = Counting(chained=False, depth=2), batches()
    other = copy.deepcopy(model)
    with pytest.warns(UserWarning, match="fitted no layer to the dense outputs"):
        prune_quietly(model, calibration, fit="dense")
    prune_quietly(other, calibration, fit="pruned")
    for (name, a), (_, b) in zip(model.named_parameters(), other.named_parameters()):
        assert torch.equal(a, b), name


def test_bad_options_change_nothing():
    model = tiny()
    before = copy.deepcopy(model)
    for kw, match in [(dict(n=4, m=4), "n=4, m=4"), (dict(damping=-1.0), "damping"), (dict(method="obs"), "obs"),
                      (dict(mask_method="fast"), "fast"), (dict(fit="teacher"), "teacher"),
                      (dict(fit="dense", method="magnitude"), "needs method"),
                      (dict(fit="dense", method="wanda"), "needs method")]:
        args = dict(n=8, m=16)
        args.update(kw)
        with pytest.raises(ValueError, match=match):
            tt.prune(model, batches(1), args.pop("n"), args.pop("m"), progress=False, **args)
    with pytest.raises(ValueError, match="no calibration batches"):
        tt.prune(model, [], 8, 16, progress=False)
    for a, b in zip(model.parameters(), before.parameters()):
        assert torch.equal(a, b)


def test_keep_masks_during_a_few_training_steps():
    model, calibration = tiny(), batches()
    reports = prune_quietly(model, calibration)
    tt.keep_masks(model, reports)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    target = torch.randn(2, 20, 96)
    losses = []
    for step in range(5):                             # a few steps of fine-tuning
        loss = nn.functional.mse_loss(model(calibration[0]), target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    modules = dict(model.named_modules())
    for r in reports:
        weight = modules[r.name].weight               # the parametrized weight: weight * mask
        assert not weight[~r.mask].any() and tsenor.check(weight != 0, 8, 16, at_most=True)
    changed = modules["mix"].weight.detach().clone()
    tt.remove_masks(model)
    assert not torch.nn.utils.parametrize.is_parametrized(modules["mix"])
    assert torch.equal(modules["mix"].weight, changed)
    assert not torch.equal(changed[reports[-1].mask], torch.zeros_like(changed[reports[-1].mask]))
    with pytest.raises(ValueError, match="no module"):
        tt.keep_masks(model, [tt.LayerReport("nope", (1, 1), "", "", 0.0, 0.0, 0, None, torch.ones(1, 1, dtype=bool))])


def test_module_attribute_imports_on_first_use():
    assert tsenor.torch is tt
    with pytest.raises(AttributeError):
        tsenor.no_such_thing


@pytest.mark.skipif(not torch.cuda.is_available() or not tsenor.CUDA_BUILT, reason="no CUDA device or CUDA build")
def test_cuda_device_runs_there_and_comes_back():
    model, calibration = tiny(), batches()
    on_cpu = copy.deepcopy(model)
    reports = prune_quietly(model, calibration, device="cuda")
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert all(r.mask.device.type == "cpu" and r.report.backend == "cuda" for r in reports)
    cpu_reports = prune_quietly(on_cpu, calibration)
    for r, c in zip(reports, cpu_reports):
        assert tsenor.check(r.mask, 8, 16) and abs(r.error - c.error) <= 0.02 * c.error + 1e-4
    np.testing.assert_array_equal([r.name for r in reports], [c.name for c in cpu_reports])


@pytest.mark.skipif(not torch.cuda.is_available() or not tsenor.CUDA_BUILT, reason="no CUDA device or CUDA build")
def test_fit_dense_on_the_gpu():
    by_fit, reports, _ = stack_error_by_fit(device="cuda")
    assert all(r.report.backend == "cuda" for r in reports)
    assert by_fit["dense"] < 0.9 * by_fit["pruned"], by_fit
