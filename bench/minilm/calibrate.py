"""Calibration-aware pruning of the 36 linear layers, with a pruner the caller supplies:
prune(name, W, H) -> W_new, W rows = outputs x cols = inputs (float32, a copy), H = XᵀX of
that layer's calibration inputs (float64, cols x cols, a copy; padding tokens excluded).

prune_sequential goes encoder layer by encoder layer, as SparseGPT and ALPS do: the
calibration activations are carried forward through the already pruned layers, so each
layer's H is measured on the inputs it will see in the pruned model. Within a layer,
`within_layer` says whether its four input groups ({query, key, value}, then
attention.output.dense, intermediate.dense, output.dense) are pruned one after the other,
each H measured behind the pruned groups before it ("sequential", the default), or all
from one pass through the dense layer ("parallel"). prune_one_shot takes every H from
the dense model, as a command-line tool pruning a checkpoint from saved grams would."""
import time
from dataclasses import dataclass

import numpy as np

from .model import batches, linear_name

QKV = ("attention.self.query", "attention.self.key", "attention.self.value")


@dataclass
class LayerInfo:
    name: str
    shape: tuple
    tokens: int
    relative_error: float    # tr(ΔHΔᵀ) / tr(WHWᵀ), Δ = W_new - W, H as given to prune()
    prune_seconds: float


def gram(activations):
    """(XᵀX in float64, token count) over a list of tokens x cols float32 blocks."""
    cols = activations[0].shape[1]
    h = np.zeros((cols, cols), dtype=np.float64)
    tokens = 0
    for x in activations:
        h += x.T @ x        # float32 within a block of a few thousand tokens, float64 across
        tokens += len(x)
    return (h + h.T) * 0.5, tokens     # exactly symmetric, whatever the BLAS summation order


def relative_output_error(w, w_new, h):
    """tr(ΔHΔᵀ) / tr(WHWᵀ). The products run in float32 (half the time of float64, and
    a few digits are all a ratio needs); Δ is formed and the traces summed in float64."""
    h32 = np.asarray(h, dtype=np.float32)
    w32 = np.asarray(w, dtype=np.float32)
    d32 = (np.asarray(w_new, dtype=np.float64) - w32).astype(np.float32)
    total = np.sum((w32 @ h32) * w32, dtype=np.float64)
    return float(np.sum((d32 @ h32) * d32, dtype=np.float64) / total) if total > 0 else 0.0


def _prune_one(prune, name, w, h, tokens, infos):
    start = time.perf_counter()
    w_new = prune(name, w.copy(), h.copy())
    seconds = time.perf_counter() - start
    w_new = np.asarray(w_new)
    if w_new.shape != w.shape:
        raise ValueError(f"{name}: prune returned shape {w_new.shape}, expected {w.shape}")
    if not np.all(np.isfinite(w_new)):
        raise ValueError(f"{name}: prune returned non-finite weights")
    w_new = w_new.astype(np.float32)
    infos.append(LayerInfo(name, w.shape, tokens, relative_output_error(w, w_new, h), seconds))
    return w_new


def cross_gram(activations, dense_activations):
    """Σ XᵀX_dense in float64: the pruned stream's inputs against the dense model's."""
    cols = activations[0].shape[1]
    c = np.zeros((cols, cols), dtype=np.float64)
    for x, xd in zip(activations, dense_activations):
        c += x.T @ xd
    return c


def dense_target(w, h, c, damping=0.01):
    """The weights that best reproduce the dense layer's outputs from the pruned stream's
    inputs: argmin_V ||X_dense Wᵀ - X Vᵀ||² + λ||V - W||² = W (Cᵀ + λI)(H + λI)⁻¹, with
    C = XᵀX_dense, H = XᵀX and λ `damping` times H's mean diagonal (as the pruner damps).
    The ridge pulls towards W, not towards 0, so directions the calibration text does not
    reach keep their dense weights, and undisturbed inputs (C = H) give W itself.
    Pruning V under H then minimises the error against the dense outputs, not against
    this layer's own outputs on already perturbed inputs: errors stop compounding."""
    lam = damping * max(float(np.mean(np.diag(h))), 1e-30)
    eye = np.eye(len(h))
    return np.linalg.solve(h + lam * eye, (c + lam * eye) @ w.astype(np.float64).T).T.astype(np.float32)


def _prune_group(model, k, kinds, activations, prune, infos, dense=None, dense_activations=None):
    h, tokens = gram(activations)
    c = None if dense_activations is None else cross_gram(activations, dense_activations)
    for kind in kinds:
        name = linear_name(k, kind)
        w = model.linears[name] if c is None else dense_target(dense.linears[name], h, c)
        model.linears[name] = _prune_one(prune, name, w, h, tokens, infos)


def prune_sequential(model, id_lists, prune, within_layer="sequential", batch_tokens=4096, target="pruned"):
    """(pruned model, [LayerInfo] in pruning order). The input model is left unchanged;
    id_lists are the calibration sentences as token ids (Tokenizer.encode_all).
    target "pruned" prunes each W against its own outputs on the pruned stream's inputs
    (SparseGPT's and ALPS's calibration); "dense" (sequential order only) prunes
    dense_target(W) instead, whose outputs on those inputs best match the dense model's."""
    if within_layer not in ("sequential", "parallel"):
        raise ValueError("within_layer is 'sequential' or 'parallel'")
    if target not in ("pruned", "dense") or (target == "dense" and within_layer != "sequential"):
        raise ValueError("target is 'pruned', or 'dense' with the sequential order")
    work = model.with_linears({})
    groups = [b for _, b in batches(id_lists, batch_tokens)]
    xs = [work.embeddings(b) for b in groups]      # the current layer's input, per batch
    xds = list(xs) if target == "dense" else None  # the dense model's, for target "dense"
    infos = []
    for k in range(work.layers):
        if within_layer == "sequential":
            d = {} if xds is None else {"dense": model}
            ctx_d = hs_d = us_d = None
            if xds is not None:
                ctx_d = [model.attention_context(k, x, b) for x, b in zip(xds, groups)]
                hs_d = [model.attention_block(k, c, x) for c, x in zip(ctx_d, xds)]
                us_d = [model.ffn_hidden(k, h) for h in hs_d]
            _prune_group(work, k, QKV, xs, prune, infos, dense_activations=xds, **d)
            ctx = [work.attention_context(k, x, b) for x, b in zip(xs, groups)]
            _prune_group(work, k, ("attention.output.dense",), ctx, prune, infos, dense_activations=ctx_d, **d)
            hs = [work.attention_block(k, c, x) for c, x in zip(ctx, xs)]
            del ctx
            _prune_group(work, k, ("intermediate.dense",), hs, prune, infos, dense_activations=hs_d, **d)
            us = [work.ffn_hidden(k, h) for h in hs]
            _prune_group(work, k, ("output.dense",), us, prune, infos, dense_activations=us_d, **d)
            if xds is not None:
                xds = [model.ffn_block(k, u, h) for u, h in zip(us_d, hs_d)]
                del ctx_d, hs_d, us_d
        else:
            ctx = [work.attention_context(k, x, b) for x, b in zip(xs, groups)]
            hs = [work.attention_block(k, c, x) for c, x in zip(ctx, xs)]
            us = [work.ffn_hidden(k, h) for h in hs]
            for kinds, inputs in ((QKV, xs), (("attention.output.dense",), ctx),
                                  (("intermediate.dense",), hs), (("output.dense",), us)):
                _prune_group(work, k, kinds, inputs, prune, infos)
            del ctx
            # the pruned layer's own activations feed layer k+1
            hs = [work.attention_block(k, work.attention_context(k, x, b), x) for x, b in zip(xs, groups)]
            us = [work.ffn_hidden(k, h) for h in hs]
        xs = [work.ffn_block(k, u, h) for u, h in zip(us, hs)]
        del hs, us
    return work, infos


def collect_grams(model, id_lists, batch_tokens=4096):
    """{linear name: (H, tokens)} for all 36 layers from one pass of the model as it is.
    query, key and value see the same input, so they share one H."""
    sums, counts = {}, {}

    def hook(name, x):
        if name.endswith(("key.weight", "value.weight")):
            return                     # same x as the query just before
        h = sums.setdefault(name, np.zeros((x.shape[1], x.shape[1]), dtype=np.float64))
        h += x.T @ x
        counts[name] = counts.get(name, 0) + len(x)

    model.embed(id_lists, hook=hook, batch_tokens=batch_tokens)
    grams = {}
    for k in range(model.layers):
        for kind in ("attention.self.query", "attention.output.dense", "intermediate.dense", "output.dense"):
            name = linear_name(k, kind)
            grams[name] = ((sums[name] + sums[name].T) * 0.5, counts[name])
        for kind in QKV[1:]:
            grams[linear_name(k, kind)] = grams[linear_name(k, QKV[0])]
    return grams


def prune_one_shot(model, id_lists, prune, batch_tokens=4096, grams=None):
    """(pruned model, [LayerInfo]) with every H from the dense model (collect_grams)."""
    grams = grams or collect_grams(model, id_lists, batch_tokens)
    infos, pruned = [], {}
    for name, w in model.linears.items():
        h, tokens = grams[name]
        pruned[name] = _prune_one(prune, name, w, h, tokens, infos)
    return model.with_linears(pruned), infos
