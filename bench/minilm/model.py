"""The forward pass of all-MiniLM-L6-v2 (BERT encoder, mean pooling, L2 normalisation, as
sentence-transformers runs it) in float32 NumPy.

Tokens are kept packed (tokens x features, no padding) through every per-token step;
only attention scatters them into a padded batch. So padding costs nothing, and the
hook sees exactly the real tokens: hook(name, x) is called with each linear layer's
input x (tokens x in_features) just before the layer is applied."""
import json

import numpy as np

from . import paths

LINEAR_KINDS = ("attention.self.query", "attention.self.key", "attention.self.value",
                "attention.output.dense", "intermediate.dense", "output.dense")


def linear_name(layer, kind):
    return f"encoder.layer.{layer}.{kind}.weight"


def load_checkpoint(path=None):
    """The checkpoint's tensors, name -> array (names as stored, no prefix)."""
    from safetensors.numpy import load_file
    return load_file(path or paths.checkpoint_file("model.safetensors"))


def load_config(path=None):
    with open(path or paths.checkpoint_file("config.json"), encoding="utf-8") as f:
        return json.load(f)


_ERF_COEFFICIENTS = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erf_into(x, out):
    """out = erf(x), float32, Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7; NumPy has no erf)."""
    a = np.abs(x, out=out)
    t = a * np.float32(0.3275911)
    t += 1
    np.reciprocal(t, out=t)
    p = t * np.float32(_ERF_COEFFICIENTS[-1])
    for c in _ERF_COEFFICIENTS[-2::-1]:
        p += np.float32(c)
        p *= t
    np.multiply(a, a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    p *= a
    np.subtract(1, p, out=p)
    return np.copysign(p, x, out=out)


def erf(x):
    return _erf_into(np.asarray(x, dtype=np.float32), np.empty(np.shape(x), dtype=np.float32))


def gelu(x):
    """x * (1 + erf(x / sqrt 2)) / 2, in slices of rows: the dozen elementwise steps then
    run in cache, several times faster than on the whole matrix."""
    out = np.empty_like(x)
    rows = max(1, 32768 // max(1, x.shape[-1]))
    for i in range(0, len(x), rows):
        xs, os_ = x[i:i + rows], out[i:i + rows]
        _erf_into(xs * np.float32(0.7071067811865476), os_)
        os_ += 1
        os_ *= xs
        os_ *= np.float32(0.5)
    return out


class TokenBatch:
    """Sentences as packed token ids plus what attention and pooling need to unpack them."""

    def __init__(self, id_lists):
        self.lengths = np.array([len(ids) for ids in id_lists], dtype=np.int64)
        self.ids = np.concatenate([np.asarray(ids, dtype=np.int64) for ids in id_lists])
        self.positions = np.concatenate([np.arange(n) for n in self.lengths])
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.width = int(self.lengths.max())
        rows = np.repeat(np.arange(len(self.lengths)), self.lengths)
        self.padded_index = rows * self.width + self.positions      # packed token -> flat padded slot
        self.valid = np.zeros((len(self.lengths), self.width), dtype=bool)
        self.valid.flat[self.padded_index] = True
        self.key_bias = np.where(self.valid, np.float32(0), np.float32(-np.inf)).astype(np.float32)

    @property
    def tokens(self):
        return len(self.ids)


class MiniLM:
    def __init__(self, tensors, config=None):
        config = config or load_config()
        if config.get("hidden_act") != "gelu":
            raise ValueError(f"expected the erf GELU, got {config.get('hidden_act')}")
        self.tensors = tensors
        self.layers = config["num_hidden_layers"]
        self.heads = config["num_attention_heads"]
        self.hidden = config["hidden_size"]
        self.eps = config["layer_norm_eps"]
        self.config = config
        # the replaceable weights: swap an entry (same shape) to run a pruned layer
        self.linears = {linear_name(k, kind): tensors[linear_name(k, kind)]
                        for k in range(self.layers) for kind in LINEAR_KINDS}

    @classmethod
    def load(cls):
        return cls(load_checkpoint(), load_config())

    def with_linears(self, replacements):
        """A model sharing every tensor with this one but the given linear weights."""
        model = MiniLM(self.tensors, self.config)
        model.linears = dict(self.linears)
        for name, w in replacements.items():
            if name not in model.linears or model.linears[name].shape != w.shape:
                raise ValueError(f"{name}: not a linear layer of this shape")
            model.linears[name] = np.asarray(w, dtype=np.float32)
        return model

    # ---- building blocks ------------------------------------------------------------
    def layer_norm(self, x, prefix):
        centred = x - x.mean(axis=-1, keepdims=True)
        var = np.einsum("ij,ij->i", centred, centred)[:, None] / np.float32(x.shape[-1])
        centred *= 1 / np.sqrt(var + np.float32(self.eps))
        centred *= self.tensors[prefix + ".weight"]
        centred += self.tensors[prefix + ".bias"]
        return centred

    def linear(self, name, x, hook=None):
        if hook is not None:
            hook(name, x)
        out = x @ self.linears[name].T
        out += self.tensors[name[:-len("weight")] + "bias"]
        return out

    def embeddings(self, batch):
        t = self.tensors
        x = (t["embeddings.word_embeddings.weight"][batch.ids]
             + t["embeddings.position_embeddings.weight"][batch.positions]
             + t["embeddings.token_type_embeddings.weight"][0])
        return self.layer_norm(x, "embeddings.LayerNorm")

    def attention_context(self, k, x, batch, hook=None):
        """Multi-head self-attention of layer k up to the context (input of attention.output.dense)."""
        b, width, dh = len(batch.lengths), batch.width, self.hidden // self.heads

        def heads(kind):
            packed = self.linear(linear_name(k, kind), x, hook)
            padded = np.zeros((b * width, self.hidden), dtype=np.float32)
            padded[batch.padded_index] = packed
            return padded.reshape(b, width, self.heads, dh).transpose(0, 2, 1, 3)

        q = heads("attention.self.query")
        key = heads("attention.self.key")
        v = heads("attention.self.value")
        scores = q @ key.transpose(0, 1, 3, 2)
        scores *= np.float32(1.0 / np.sqrt(dh))
        scores += batch.key_bias[:, None, None, :]       # padding keys get -inf
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(b * width, self.hidden)
        return ctx[batch.padded_index]

    def attention_block(self, k, ctx, x, hook=None):
        out = self.linear(linear_name(k, "attention.output.dense"), ctx, hook)
        return self.layer_norm(out + x, f"encoder.layer.{k}.attention.output.LayerNorm")

    def ffn_hidden(self, k, h, hook=None):
        return gelu(self.linear(linear_name(k, "intermediate.dense"), h, hook))

    def ffn_block(self, k, u, h, hook=None):
        out = self.linear(linear_name(k, "output.dense"), u, hook)
        return self.layer_norm(out + h, f"encoder.layer.{k}.output.LayerNorm")

    def layer(self, k, x, batch, hook=None):
        h = self.attention_block(k, self.attention_context(k, x, batch, hook), x, hook)
        return self.ffn_block(k, self.ffn_hidden(k, h, hook), h, hook)

    def pool(self, x, batch):
        """Mean over each sentence's tokens, then unit L2 norm."""
        mean = np.add.reduceat(x, batch.starts, axis=0) / batch.lengths[:, None].astype(np.float32)
        norm = np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), np.float32(1e-12))
        return (mean / norm).astype(np.float32)

    # ---- whole passes ---------------------------------------------------------------
    def encode(self, batch, hook=None):
        x = self.embeddings(batch)
        for k in range(self.layers):
            x = self.layer(k, x, batch, hook)
        return self.pool(x, batch)

    def embed(self, id_lists, hook=None, batch_tokens=4096):
        """Sentence embeddings (n x hidden) of token id lists, in their order."""
        out = np.empty((len(id_lists), self.hidden), dtype=np.float32)
        for index, batch in batches(id_lists, batch_tokens):
            out[index] = self.encode(batch, hook)
        return out


def batches(id_lists, batch_tokens=4096):
    """Sentences grouped by length (shortest first) so attention pads little: a list of
    (indices, TokenBatch), each at most about batch_tokens tokens padded, and none with
    a sentence over twice as long as its shortest (attention cost grows with the square)."""
    order = sorted(range(len(id_lists)), key=lambda i: len(id_lists[i]))
    groups, current = [], []
    for i in order:
        n = len(id_lists[i])
        if current and (n * (len(current) + 1) > batch_tokens or n > 2 * len(id_lists[current[0]])):
            groups.append(current)
            current = []
        current.append(i)
    if current:
        groups.append(current)
    return [(np.array(g), TokenBatch([id_lists[i] for i in g])) for g in groups]
