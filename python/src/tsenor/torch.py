"""Pruning a whole PyTorch model with calibration data: tsenor.torch.prune.

    import tsenor.torch
    reports = tsenor.torch.prune(model, batches, 16, 32, method="alps")
    for r in reports:
        print(r.name, r.shape, r.pattern, r.method, "%.4f" % r.error, "%.2f s" % r.seconds)

Layers are pruned group by group in the order the model runs them, as SparseGPT and
ALPS do: a group is one block of the model's main stack of repeated blocks (the
nn.ModuleList or nn.Sequential whose children hold the most prunable layers, such as
a transformer's encoder.layer), or one prunable layer outside it. For each group the
calibration batches are run through the model as pruned so far (stopping after the
group where that is safe), forward hooks accumulate every layer's Gram matrix
H = X^T X of its inputs (tsenor.gram), and each layer of the group is pruned by
tsenor.prune_layer. So each block's layers see the outputs of the blocks pruned before
them.

The blocks of the main stack are fed from cached inputs, so the cost is about one
forward of the calibration data in all (plus one for what runs after the stack): the
inputs of the first block are recorded once per batch, and each block runs on the
outputs of the block before it, as pruned. This needs the usual chaining, which is
checked on the first batch: every block runs once per forward, in order; a block's
first input (positional, or hidden_states=) is the previous block's output (or its
first element); every other argument is the same object for every block. When a model
breaks that, each group is calibrated by a forward of the whole model as pruned so far
(stopped after the group where safe), and the cost grows with the square of the depth.
The cached inputs take one block's activations per batch (batch x tokens x width).

To keep the masks applied while fine-tuning, see keep_masks (torch.nn.utils.parametrize).
"""
import re
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.nn.utils import parametrize

from . import _arrays
from ._options import integer
from ._prune import PruneReport, gram, prune_layer

__all__ = ["prune", "LayerReport", "DEFAULT_EXCLUDES", "prunable_layers", "weight_selector", "keep_masks",
           "remove_masks", "MaskedWeight"]

# What usually stays dense, the command line's list (cli/tsenor_cli.c), matched
# case-insensitively against the weight's name ("<module name>.weight").
DEFAULT_EXCLUDES: Tuple[Tuple[str, str], ...] = (
    (r"embed|(^|[._])(wte|wpe|shared)([._]|$)", "embeddings (a lookup, not a matrix product)"),
    (r"position|token_type", "position / token-type tables"),
    (r"lm_head|(^|[._])(output|classifier|score)\.weight$", "output heads (sensitive, small)"),
    (r"norm|(^|[._])ln_?[0-9a-z]*([._]|$)", "normalisation weights"),
    (r"bias$", "biases"),
)

Patterns = Union[None, str, Sequence[str]]


@dataclass
class LayerReport:
    """One pruned layer."""
    name: str                    # the module's name in model.named_modules()
    shape: Tuple[int, int]       # the weight's (rows, cols) = (out_features, in_features)
    pattern: str                 # "16:32 transposable" or "2:4 row-wise"
    method: str                  # the pruning method ("alps", ...)
    error: float                 # the layer's relative output error on its calibration inputs
    seconds: float               # wall time of the layer's pruning
    tokens: int                  # calibration rows (tokens) its Gram matrix summed
    report: PruneReport = field(repr=False)         # everything tsenor.prune_layer reported
    mask: torch.Tensor = field(repr=False)          # bool, the weight's shape (True = kept)


def _patterns(value: Patterns, name: str) -> List["re.Pattern[str]"]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    try:
        return [re.compile(p) for p in value]
    except (TypeError, re.error) as e:
        raise ValueError("%s: %s" % (name, e)) from None


def prunable_layers(model: nn.Module, include: Patterns = None, exclude: Patterns = None,
                    default_excludes: bool = True) -> List[Tuple[str, nn.Linear]]:
    """The nn.Linear layers prune() would prune, as (name, module), by the command
    line's rules on the weight's name "<module name>.weight": with include (regular
    expressions, re.search), only names matched by one of them; never names matched by
    exclude; and unless include names them or default_excludes=False, none matched by
    DEFAULT_EXCLUDES (embeddings, position tables, output heads, norms). A module that
    appears under two names (shared) counts once, under its first."""
    selected = weight_selector(include, exclude, default_excludes)
    chosen, seen = [], set()
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or id(module) in seen:
            continue
        seen.add(id(module))
        if selected(name + ".weight"):
            chosen.append((name, module))
    return chosen


def weight_selector(include: Patterns = None, exclude: Patterns = None,
                    default_excludes: bool = True) -> Callable[[str], bool]:
    """The command line's selection rule as a function of a weight's name: with include
    (regular expressions, re.search), only names matched by one of them; never names
    matched by exclude; and unless include names them or default_excludes=False, none
    matched by DEFAULT_EXCLUDES (case-insensitively). Bad patterns raise ValueError."""
    includes, excludes = _patterns(include, "include"), _patterns(exclude, "exclude")
    defaults = [re.compile(p, re.IGNORECASE) for p, _ in DEFAULT_EXCLUDES] if default_excludes else []

    def selected(weight_name: str) -> bool:
        included = any(p.search(weight_name) for p in includes)
        if includes and not included:
            return False
        if any(p.search(weight_name) for p in excludes):
            return False
        return included or not any(p.search(weight_name) for p in defaults)

    return selected


class _StopForward(Exception):
    """Raised by a hook once the layers of interest have run: the rest of the forward
    is not needed."""


def _to(obj: Any, device: Optional[torch.device]) -> Any:
    """obj with every tensor inside (dicts, lists, tuples) on device."""
    if device is None:
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, Mapping):       # a dict, or a tokenizer's BatchEncoding
        return {k: _to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(_to(v, device) for v in obj)
    return obj


def _run(model: nn.Module, batch: Any, device: Optional[torch.device]) -> None:
    """One forward of a calibration batch: a mapping is keyword arguments, a tuple or
    list positional ones, anything else the single argument."""
    batch = _to(batch, device)
    try:
        if isinstance(batch, Mapping):
            model(**batch)
        elif isinstance(batch, (tuple, list)):
            model(*batch)
        else:
            model(batch)
    except _StopForward:
        pass


def _main_stack(model: nn.Module, layers: Dict[int, str]) -> List[nn.Module]:
    """The children of the nn.ModuleList / nn.Sequential whose children hold the most
    chosen layers (at least two of them must hold some); [] when there is none."""
    best: List[nn.Module] = []
    best_count = 1
    for container in model.modules():
        if not isinstance(container, (nn.ModuleList, nn.Sequential)):
            continue
        children = list(container.children())
        count = sum(1 for child in children if any(id(m) in layers for m in child.modules()))
        if count > best_count:
            best, best_count = children, count
    return best


class _Progress:
    """tqdm when installed (and wanted), else one plain line per layer on stderr."""

    def __init__(self, total: int, enabled: bool):
        self.bar: Any = None
        self.enabled = enabled
        self.total = total
        self.done = 0
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc="tsenor", unit="layer")

    def layer(self, report: LayerReport) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str("%s error %.4f" % (report.name, report.error), refresh=False)
            self.bar.update(1)
        elif self.enabled:
            print("tsenor: [%d/%d] %s %dx%d %s %s: error %.5f, %.2f s" % (
                self.done, self.total, report.name, report.shape[0], report.shape[1], report.method, report.pattern,
                report.error, report.seconds), file=sys.stderr, flush=True)

    def skipped(self, name: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.enabled:
            print("tsenor: [%d/%d] %s never ran on the calibration data: left dense" % (self.done, self.total, name),
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def prune(model: nn.Module, calibration: Iterable[Any], n: int, m: int, *, method: str = "alps",
          mask_method: str = "tsenor", include: Patterns = None, exclude: Patterns = None,
          default_excludes: bool = True, device: Union[None, str, torch.device] = None,
          damping: Optional[float] = None, iterations: Optional[int] = None, cg_iterations: Optional[int] = None,
          rho: Optional[float] = None, mask_iterations: Optional[int] = None, tau: Optional[float] = None,
          threads: Optional[int] = None, fit: str = "pruned", progress: bool = True) -> List[LayerReport]:
    """Prunes the model's nn.Linear layers to n:m in place, with calibration data.

    model: any torch model whose forward takes the calibration batches.
    calibration: the batches, each a dict of keyword arguments (a Hugging Face
       tokenizer's output, say), a tuple/list of positional arguments, or one tensor.
       Iterated once per group of layers (a one-shot iterable is read into a list
       first). Every position of a batch is a calibration token, padding included:
       batches of sentences of similar length (or unpadded ones) calibrate best.
    n, m: keep n of every m (transposable n:m unless mask_method="rowwise").
    method, mask_method, damping, iterations, cg_iterations, rho, mask_iterations, tau,
       threads: as tsenor.prune_layer.
    include, exclude, default_excludes: which layers, as prunable_layers() says (by
       default every nn.Linear except embeddings, position tables, output heads, norms).
    device: where the forwards and the pruning run; the model is moved there for the
       call and back afterwards (when its parameters were on one device). None = where
       the model is. The batches' tensors are moved there too.
    fit: what "sparsegpt" and "alps" fit each layer of the main stack to. "pruned" (the
       published methods): its own outputs on the inputs the pruned blocks before it
       give. "dense": the dense model's outputs, so errors do not compound from block
       to block. Each block is then also run on the dense model's inputs (one more
       cached set of block inputs, one more block forward per batch), and the layer
       is pruned from V = W (C^T + lam I)(H + lam I)^-1, the ridge fit (towards W) of
       the dense outputs from the pruned inputs, C = X^T X_dense, lam = damping x H's
       mean diagonal; its report's error is against V. Layers outside the stack, and
       every layer when the stack does not chain (see above), are fitted as "pruned".
       On all-MiniLM-L6-v2 at transposable 16:32 with ALPS, "dense" raised the mean
       held-out cosine from 0.941 to about 0.947 (README, "Quality on a real model").

    The order is that of the model's forward (see the module's docstring): each
    block's layers are pruned on the outputs of the blocks pruned before them. The
    model runs in eval mode under torch.no_grad() during the call; its training mode and
    config.use_cache (set to False meanwhile) are restored. Weights keep their dtype:
    each is pruned in float32 and written back in place.

    Returns one LayerReport per pruned layer (name, shape, pattern, method, error,
    seconds, tokens, the full report and the mask), in pruning order. A chosen layer
    whose forward never ran on the calibration data (its weight used without calling
    the module) is left dense, with a warning.

    Raises what tsenor.prune_layer raises (ValueError for bad options; an invalid
    option is found before any layer changes) and whatever the model's forward raises.
    Ctrl-C (KeyboardInterrupt) stops between layers: layers pruned by then stay
    pruned, the one being pruned is left as it was, hooks and modes are restored."""
    n, m = integer("n", n), integer("m", m)
    if fit not in ("pruned", "dense"):
        raise _arrays.invalid("fit is 'pruned' or 'dense', not %r" % (fit,))
    if fit == "dense" and method not in ("sparsegpt", "alps"):
        raise _arrays.invalid("fit='dense' refits the kept weights: it needs method 'sparsegpt' or 'alps', not %r"
                              % (method,))
    options = dict(method=method, mask_method=mask_method, damping=damping, iterations=iterations,
                   cg_iterations=cg_iterations, rho=rho, mask_iterations=mask_iterations, tau=tau, threads=threads)
    # the options are checked before any layer changes: a 1 x 1 layer costs nothing
    prune_layer(torch.ones(1, 1), torch.ones(1, 1), n, m, **options)  # type: ignore[arg-type]
    batches = calibration if isinstance(calibration, (list, tuple)) else list(calibration)
    if not batches:
        raise _arrays.invalid("no calibration batches")
    chosen = prunable_layers(model, include, exclude, default_excludes)
    target = torch.device(device) if device is not None else None
    devices = {p.device for p in model.parameters()}
    home = next(iter(devices)) if len(devices) == 1 else None
    training = model.training
    config = getattr(model, "config", None)
    use_cache = getattr(config, "use_cache", None)
    pattern = "%d:%d %s" % (n, m, "row-wise" if mask_method == "rowwise" else "transposable")
    reports: List[LayerReport] = []
    bar = _Progress(len(chosen), progress)
    try:
        if target is not None:
            model.to(target)
        model.eval()
        if use_cache is not None:
            config.use_cache = False   # type: ignore[union-attr]
        run_on = target if target is not None else home
        with torch.no_grad():
            groups, blocks = _groups(model, chosen, batches, run_on)
            replay: Optional[_StackReplay] = None
            dense: Optional[_StackReplay] = None   # fit="dense": the dense model's stream
            dense_fits = 0
            chains = REPLAY              # until a capture finds that the stack does not chain
            for group, may_stop, block in groups:
                if block is not None and replay is None and chains:
                    replay = _StackReplay.capture(model, blocks, batches, run_on)
                    chains = replay is not None
                    if replay is not None and fit == "dense":
                        dense = _StackReplay(replay.blocks, list(replay.inputs))
                if block is not None and replay is not None:
                    replay.advance_to(block)
                    if dense is not None:
                        dense.advance_to(block)    # blocks without chosen layers stay dense
                        reports += _prune_group_dense(group, replay, dense, n, m, pattern, options, bar)
                        dense_fits += 1
                        continue
                    feed = replay.feeder()
                else:
                    replay = dense = None  # past the stack: its cached activations go
                    feed = _model_feeder(model, run_on)
                reports += _prune_group(group, may_stop, batches, feed, n, m, pattern, options, bar)
            if fit == "dense" and not dense_fits and reports:
                warnings.warn("tsenor.torch.prune: fit='dense' fitted no layer to the dense outputs (it needs the "
                              "chosen layers in a stack of blocks that chain, see the module's docstring): all were "
                              "fitted as fit='pruned'", stacklevel=2)
    finally:
        bar.close()
        if use_cache is not None:
            config.use_cache = use_cache   # type: ignore[union-attr]
        model.train(training)
        if target is not None and home is not None:
            model.to(home)
            for r in reports:
                r.mask = r.mask.to(home)
    return reports


Group = Tuple[List[Tuple[str, nn.Linear]], bool, Optional[int]]


def _groups(model: nn.Module, chosen: List[Tuple[str, nn.Linear]], batches: Sequence[Any],
            device: Optional[torch.device]) -> Tuple[List[Group], List[nn.Module]]:
    """The chosen layers in groups, in the order of the first batch's forward: a block of
    the main stack, or a single layer outside it; layers that never run come last,
    alone. With each group, whether its forwards may stop after it (only when each of
    its layers ran once, so that its last layer's call is the group's end) and its
    block's index in the main stack (None outside it). And the main stack's blocks."""
    names = {id(module): name for name, module in chosen}
    order: List[int] = []
    handles = [module.register_forward_hook(lambda mod, inp, out: order.append(id(mod))) for _, module in chosen]
    try:
        _run(model, batches[0], device)
    finally:
        for h in handles:
            h.remove()
    block_of: Dict[int, int] = {}
    blocks = _main_stack(model, names)
    for index, block in enumerate(blocks):
        for sub in block.modules():
            if id(sub) in names:
                block_of.setdefault(id(sub), index)
    groups: List[List[Tuple[str, nn.Linear]]] = []
    keys: List[Any] = []
    modules = {id(module): module for _, module in chosen}
    for key in dict.fromkeys(order):                          # first runs, in order
        group_key = ("block", block_of[key]) if key in block_of else ("layer", key)
        if group_key not in keys:
            keys.append(group_key)
            groups.append([])
        groups[keys.index(group_key)].append((names[key], modules[key]))
    in_block = [keys[i][1] if keys[i][0] == "block" else None for i in range(len(groups))]
    never = [[(name, module)] for name, module in chosen if id(module) not in set(order)]
    return ([(g, all(order.count(id(module)) == 1 for _, module in g), b) for g, b in zip(groups, in_block)] +
            [(g, False, None) for g in never]), blocks


Feeder = Any    # (batch index, batch) -> None: one forward that reaches the group's layers


def _model_feeder(model: nn.Module, device: Optional[torch.device]) -> Feeder:
    return lambda index, batch: _run(model, batch, device)


def _prune_group(group: List[Tuple[str, nn.Linear]], may_stop: bool, batches: Sequence[Any], feed: Feeder,
                 n: int, m: int, pattern: str, options: Dict[str, Any], bar: _Progress) -> List[LayerReport]:
    grams: Dict[int, torch.Tensor] = {}
    tokens: Dict[int, int] = {}
    calls: Dict[int, int] = {}

    def collect(module: nn.Module, inputs: Tuple[Any, ...], output: Any) -> None:
        x = inputs[0].detach()
        key = id(module)
        grams[key] = gram(x, grams.get(key), threads=options["threads"])
        tokens[key] = tokens.get(key, 0) + x.numel() // x.shape[-1]
        calls[key] = calls.get(key, 0) + 1

    handles = [module.register_forward_hook(collect) for _, module in group]
    try:
        for index, batch in enumerate(batches):
            calls.clear()
            stop = _stopper(group, calls) if may_stop else None
            try:
                feed(index, batch)
            finally:
                if stop is not None:
                    stop.remove()
    finally:
        for h in handles:
            h.remove()
    return _prune_collected(group, grams, tokens, {}, n, m, pattern, options, bar)


def _prune_collected(group: List[Tuple[str, nn.Linear]], grams: Dict[int, torch.Tensor], tokens: Dict[int, int],
                     cross: Dict[int, torch.Tensor], n: int, m: int, pattern: str, options: Dict[str, Any],
                     bar: _Progress) -> List[LayerReport]:
    """Prunes each layer of the group from its gram (and, where cross has its
    X^T X_dense, from the ridge fit of the dense outputs: fit="dense")."""
    reports = []
    for name, module in group:
        key = id(module)
        if key not in grams:
            warnings.warn("tsenor.torch.prune: %s never ran on the calibration data (its weight is used without "
                          "calling the module): left dense" % name, stacklevel=4)
            bar.skipped(name)
            continue
        start = time.perf_counter()
        weight = module.weight
        h = _without_underflow(grams.pop(key))
        w = weight.detach()
        if key in cross:
            cols = int(weight.shape[1])
            if tokens[key] < DENSE_FIT_TOKENS_PER_INPUT * cols:
                warnings.warn("tsenor.torch.prune: fit='dense' on %d calibration tokens for %s's %d inputs: the fit "
                              "needs at least %d tokens per input to help (fewer made all-MiniLM-L6-v2 worse than "
                              "fit='pruned'); give more calibration data" % (tokens[key], name, cols,
                                                                             DENSE_FIT_TOKENS_PER_INPUT), stacklevel=4)
            w = _dense_fit(w, h, cross.pop(key), options["damping"])
        pruned, keep, report = prune_layer(w, h, n, m, **options)
        weight.data.copy_(pruned)
        seconds = time.perf_counter() - start
        rows, cols = (int(d) for d in weight.shape)
        r = LayerReport(name, (rows, cols), pattern, options["method"], report.error, seconds, tokens[key], report,
                        keep)
        reports.append(r)
        bar.layer(r)
    return reports


def _dense_fit(w: torch.Tensor, h: torch.Tensor, c: torch.Tensor, damping: Optional[float]) -> torch.Tensor:
    """V = W (C^T + lam I)(H + lam I)^-1 in float64: argmin_V |X_dense W^T - X V^T|^2 +
    lam |V - W|^2, the weights whose outputs on the pruned stream's inputs X best match
    the dense layer's, pulled towards W where the calibration data says nothing."""
    h64, c64 = h.double(), c.double()
    mean = float(h64.diagonal().mean())
    if not mean > 0.0:
        return w                        # no signal at all: nothing to fit
    lam = (0.01 if damping is None else float(damping)) * mean
    eye = torch.eye(h64.shape[0], dtype=torch.float64, device=h64.device)
    v: torch.Tensor = torch.linalg.solve(h64 + lam * eye, (c64 + lam * eye) @ w.double().T).T
    return v.to(torch.float32)


def _prune_group_dense(group: List[Tuple[str, nn.Linear]], replay: "_StackReplay", dense: "_StackReplay", n: int,
                       m: int, pattern: str, options: Dict[str, Any], bar: _Progress) -> List[LayerReport]:
    """fit="dense" for one block of the stack (replay and dense both at it). The block's
    layers go in the order they run, those reading the same input (a query, key and
    value) together, each after the ones before it are pruned: correcting a deviation
    that an earlier layer of the block has already corrected would overshoot. Per
    batch and step the block runs with its dense weights on the dense stream's inputs
    (the layers' X_dense kept) and as pruned so far on the pruned stream's, where
    H = X^T X and C = X^T X_dense accumulate. At the end the block's dense outputs
    become the dense stream's next inputs."""
    names = {id(module): name for name, module in group}
    modules = {id(module): module for _, module in group}
    originals = {key: module.weight.data.clone() for key, module in modules.items()}   # the dense weights
    reports: List[LayerReport] = []

    def run_dense(index: int, hooks: List[Any]) -> Any:
        pruned_weights = {key: module.weight.data for key, module in modules.items()}
        for key, module in modules.items():
            module.weight.data = originals[key]
        try:
            return _hidden_of(dense._call(index))
        finally:
            for key, module in modules.items():
                module.weight.data = pruned_weights[key]
            for h in hooks:
                h.remove()

    # the order and the shared inputs, from the first batch's dense run
    order: List[Tuple[int, int]] = []

    def note(module: nn.Module, inputs: Tuple[Any, ...], output: Any) -> None:
        if all(key != id(module) for key, _ in order):
            order.append((id(module), inputs[0].data_ptr()))

    run_dense(0, [module.register_forward_hook(note) for module in modules.values()])
    steps: List[List[int]] = []
    for k, (key, ptr) in enumerate(order):
        if k and ptr == order[k - 1][1]:
            steps[-1].append(key)
        else:
            steps.append([key])
    for step in steps:
        seen: Dict[int, List[torch.Tensor]] = {}
        grams: Dict[int, torch.Tensor] = {}
        cross: Dict[int, torch.Tensor] = {}
        tokens: Dict[int, int] = {}

        def keep_dense(module: nn.Module, inputs: Tuple[Any, ...], output: Any) -> None:
            seen.setdefault(id(module), []).append(inputs[0].detach())

        def collect(module: nn.Module, inputs: Tuple[Any, ...], output: Any) -> None:
            x, key = inputs[0].detach(), id(module)
            pending = seen.get(key)
            if not pending or pending[0].shape != x.shape:
                raise _arrays.invalid("fit='dense': %s runs differently on the dense and the pruned inputs"
                                      % names[key])
            xd = pending.pop(0)
            grams[key] = gram(x, grams.get(key), threads=options["threads"])
            cols = x.shape[-1]
            product = x.reshape(-1, cols).float().T @ xd.reshape(-1, cols).float()
            cross[key] = product if key not in cross else cross[key].add_(product)
            tokens[key] = tokens.get(key, 0) + x.numel() // cols

        for index in range(len(replay.inputs)):
            seen.clear()
            run_dense(index, [modules[key].register_forward_hook(keep_dense) for key in step])
            handles = [modules[key].register_forward_hook(collect) for key in step]
            try:
                replay._call(index)
            finally:
                for h in handles:
                    h.remove()
        reports += _prune_collected([(names[key], modules[key]) for key in step], grams, tokens, cross, n, m,
                                    pattern, options, bar)
    for key, module in modules.items():
        if key not in {k for k, _ in order}:
            warnings.warn("tsenor.torch.prune: %s never ran on the calibration data (its weight is used without "
                          "calling the module): left dense" % names[key], stacklevel=3)
            bar.skipped(names[key])
    for index in range(len(replay.inputs)):
        dense.set_hidden(index, run_dense(index, []))
    dense.at += 1
    return reports


# fit="dense" on all-MiniLM-L6-v2 (SPARSEGPT T16:32; the widest layer has 1536 inputs):
# about 1.6 tokens per input lost 0.02 of held-out cosine against fit="pruned", 5 gained
# 0.015, 10 gained 0.024 (README, "Python")
DENSE_FIT_TOKENS_PER_INPUT = 4

# Inputs this small (|x| below 1e-15) square to a diagonal below it
_UNDERFLOW = 1e-30


def _without_underflow(h: torch.Tensor) -> torch.Tensor:
    """h with the rows and columns of numerically zero inputs cleared. A feature whose
    values are ~1e-32 (a LayerNorm output that vanished, say) has a float32 diagonal
    that underflows to 0 while its products with other features do not, which breaks
    Cauchy-Schwarz and makes the library refuse the gram as not positive semi-definite.
    Such a feature carries nothing the layer's float32 output could show."""
    dead = h.diagonal() < _UNDERFLOW
    if bool(dead.any()):
        h[dead, :] = 0.0
        h[:, dead] = 0.0
    return h


# False: every group is calibrated by forwards of the whole model (the tests compare)
REPLAY = True


def _hidden_of(output: Any) -> Any:
    """A block's output as the next block's input: the output, or its first element."""
    return output[0] if isinstance(output, (tuple, list)) else output


class _StackReplay:
    """The main stack's blocks run one at a time on cached inputs (see the module's
    docstring): inputs[i] = (args, kwargs) of the current block for batch i, its hidden
    state in args[0] or kwargs["hidden_states"]."""

    def __init__(self, blocks: List[nn.Module], inputs: List[Tuple[Tuple[Any, ...], Dict[str, Any]]]):
        self.blocks = blocks
        self.inputs = inputs
        self.at = 0                      # the block whose inputs are cached

    @staticmethod
    def capture(model: nn.Module, blocks: List[nn.Module], batches: Sequence[Any],
                device: Optional[torch.device]) -> Optional["_StackReplay"]:
        """The first block's inputs for every batch, after checking the chaining on the
        first batch's whole forward; None when the model does not chain its blocks."""
        if not blocks:
            return None
        seen: List[Tuple[int, Tuple[Any, ...], Dict[str, Any], Any]] = []

        def before(module: nn.Module, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
            seen.append((id(module), args, dict(kwargs), None))

        def after(module: nn.Module, args: Tuple[Any, ...], kwargs: Dict[str, Any], output: Any) -> None:
            if seen and seen[-1][0] == id(module) and seen[-1][3] is None:
                seen[-1] = seen[-1][:3] + (_hidden_of(output),)

        handles = [b.register_forward_pre_hook(before, with_kwargs=True) for b in blocks]
        handles += [b.register_forward_hook(after, with_kwargs=True) for b in blocks]
        try:
            _run(model, batches[0], device)
        finally:
            for h in handles:
                h.remove()
        if not _StackReplay._chained(blocks, seen):
            return None
        inputs = [(seen[0][1], seen[0][2])]
        first = blocks[0]

        def record(module: nn.Module, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
            inputs.append((args, dict(kwargs)))
            raise _StopForward()

        handle = first.register_forward_pre_hook(record, with_kwargs=True)
        try:
            for batch in batches[1:]:
                _run(model, batch, device)
        finally:
            handle.remove()
        return _StackReplay(blocks, inputs) if len(inputs) == len(batches) else None

    @staticmethod
    def _chained(blocks: List[nn.Module], seen: List[Tuple[int, Tuple[Any, ...], Dict[str, Any], Any]]) -> bool:
        if [entry[0] for entry in seen] != [id(b) for b in blocks]:
            return False                 # not every block once, in order
        _, args0, kwargs0, _ = seen[0]
        for (_, _, _, out), (_, args, kwargs, _) in zip(seen, seen[1:]):
            if bool(args) != bool(args0):
                return False
            if args:
                hidden, rest, rest0 = args[0], args[1:], args0[1:]
            else:
                hidden, rest, rest0 = kwargs.get("hidden_states"), (), ()
            if hidden is None or hidden is not out or len(rest) != len(rest0):
                return False
            if any(a is not b for a, b in zip(rest, rest0)):
                return False
            others = {k: v for k, v in kwargs.items() if args or k != "hidden_states"}
            others0 = {k: v for k, v in kwargs0.items() if args0 or k != "hidden_states"}
            if others.keys() != others0.keys() or any(others[k] is not others0[k] for k in others):
                return False
        return True

    def _call(self, index: int) -> Any:
        args, kwargs = self.inputs[index]
        return self.blocks[self.at](*args, **kwargs)

    def set_hidden(self, index: int, hidden: Any) -> None:
        """Batch index's cached hidden state becomes `hidden` (the next block's input)."""
        args, kwargs = self.inputs[index]
        if args:
            self.inputs[index] = ((hidden,) + tuple(args[1:]), kwargs)
        else:
            self.inputs[index] = (args, dict(kwargs, hidden_states=hidden))

    def advance_to(self, block: int) -> None:
        """Runs the blocks before `block` (as pruned) on the cached inputs."""
        while self.at < block:
            for i in range(len(self.inputs)):
                self.set_hidden(i, _hidden_of(self._call(i)))
            self.at += 1

    def feeder(self) -> Feeder:
        def feed(index: int, batch: Any) -> None:
            try:
                self._call(index)
            except _StopForward:
                pass
        return feed


def _stopper(group: List[Tuple[str, nn.Linear]], calls: Dict[int, int]) -> Any:
    """A hook on the group's last layer that ends the forward once every layer of the
    group has run (the rest of the model is not needed for their Gram matrices)."""
    keys = {id(module) for _, module in group}

    def stop(module: nn.Module, inputs: Tuple[Any, ...], output: Any) -> None:
        if keys.issubset(calls):
            raise _StopForward()

    return group[-1][1].register_forward_hook(stop)


# ---- keeping the masks during fine-tuning --------------------------------------------

class MaskedWeight(nn.Module):
    """A parametrization (torch.nn.utils.parametrize) that multiplies a weight by a
    fixed 0/1 mask, so the optimiser's steps never revive a pruned weight: the forward
    sees weight * mask and the gradient of pruned entries is zero."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.mask: torch.Tensor
        self.register_buffer("mask", mask.detach().clone().to(torch.bool))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask.to(weight.dtype)


def keep_masks(model: nn.Module, reports: Iterable[LayerReport]) -> None:
    """Keeps each pruned layer's mask applied from now on (for fine-tuning): registers
    MaskedWeight on the weight of each layer in reports. Training then updates only the
    kept weights; remove_masks(model) bakes the masked weights back into plain ones.

        reports = tsenor.torch.prune(model, batches, 8, 16)
        tsenor.torch.keep_masks(model, reports)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
        for batch in train_batches:           # a few steps of fine-tuning
            loss = loss_of(model, batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        tsenor.torch.remove_masks(model)      # plain nn.Linear weights, still n:m
    """
    modules = dict(model.named_modules())
    for r in reports:
        module = modules.get(r.name)
        if module is None:
            raise _arrays.invalid("the model has no module %r" % r.name)
        if parametrize.is_parametrized(module, "weight"):
            raise _arrays.invalid("%s's weight is parametrized already" % r.name)
        parametrize.register_parametrization(module, "weight", MaskedWeight(r.mask.to(module.weight.device)))


def remove_masks(model: nn.Module) -> None:
    """Undoes keep_masks: every MaskedWeight is removed and the masked weight kept as a
    plain parameter."""
    for module in model.modules():
        if not parametrize.is_parametrized(module, "weight"):
            continue
        chain = module.parametrizations["weight"]   # type: ignore[index]
        if len(chain) == 1 and isinstance(chain[0], MaskedWeight):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)

