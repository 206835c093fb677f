"""Gram matrices of a Hugging Face model's linear layers, from text: the GRAMS file of
the command line's `tsenor prune ... --method M --gram GRAMS`.

    python -m tsenor.grams MODEL_DIR --text FILE -o GRAMS.safetensors
        [--paragraphs] [--max-texts N] [--max-length L] [--batch-size B] [--device D]
        [--dtype float32|bfloat16|float16] [--auto-class AutoModel]
        [--include REGEX]... [--exclude REGEX]... [--no-default-excludes]
        [--threads K] [--force] [--quiet]

The model is loaded from MODEL_DIR with transformers (AutoModel unless --auto-class
names another class, e.g. AutoModelForCausalLM), its tokenizer from the same folder.
FILE is UTF-8 text: one text per non-empty line, or with --paragraphs one text per
paragraph (blocks separated by blank lines, their lines joined by spaces). Texts are
tokenised (truncated to --max-length tokens), sorted by length so that batches pad
little, and run through the dense model in batches of --batch-size. Forward hooks on
the chosen nn.Linear layers sum each layer's H = X^T X over its inputs X (tokens x
in_features) with tsenor.gram, padding positions excluded through the attention mask.
This is the one-shot approximation: every layer's H comes from the dense model's
activations (tsenor.torch.prune is the sequential calibration, each block's H measured
behind the blocks already pruned).

GRAMS is written with one F32 tensor (in_features x in_features) per chosen layer,
named like that layer's weight in MODEL_DIR's .safetensors checkpoint, which is what
the command line looks up (the gram of encoder.layer.0.intermediate.dense.weight is
the tensor encoder.layer.0.intermediate.dense.weight). The checkpoint's names are read
from its header(s): a module "encoder.layer.0.output.dense" is written as the
checkpoint's "encoder.layer.0.output.dense.weight", or as "bert.encoder.layer.0.
output.dense.weight" when the checkpoint carries the model's base prefix. Layers are
chosen as the command line chooses weights, on those names: --include, --exclude and
the default excludes (tsenor.torch.DEFAULT_EXCLUDES; --no-default-excludes drops
them). The metadata holds tsenor.content = "grams", the texts and token counts.

The file is written without the safetensors package (8-byte header length, JSON
header, raw little-endian data) under a temporary name in the output's folder,
fsynced and renamed into place only when complete: a failure or Ctrl-C leaves no
partial file. An existing OUT is replaced only with --force.

Exit status: 0 success, 2 bad usage or bad input (one line on stderr: a MODEL_DIR that
is not a model folder, an unreadable or empty FILE, a model that transformers cannot
load, ...), 130 interrupted. Needs torch and transformers (tqdm for a progress bar).

From Python: collect(model, batches, layers) and write_safetensors(path, tensors).
"""
import argparse
import json
import os
import re
import signal
import struct
import sys
import tempfile
import time
from typing import Any, Dict, Iterable, List, Mapping, NoReturn, Optional, Sequence, Tuple

import numpy as np

PROG = "python -m tsenor.grams"


class InputError(Exception):
    """Bad usage or bad input: exit status 2 with this one-line message."""


# ---- safetensors -------------------------------------------------------------------

_DTYPES = {np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<f8"): "F64"}


def write_safetensors(path: str, tensors: Mapping[str, Any], metadata: Optional[Mapping[str, str]] = None,
                      force: bool = False) -> None:
    """Writes tensors (name -> NumPy array or CPU torch tensor; float32, float16 or
    float64) to a .safetensors file at path, atomically: a temporary file in path's
    folder, fsynced, renamed to path. metadata: strings only. An existing path is
    refused (FileExistsError) unless force. On any error (or KeyboardInterrupt) no file
    is left behind."""
    header: Dict[str, Any] = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("safetensors metadata are strings (%r: %r)" % (k, v))
        header["__metadata__"] = dict(metadata)
    arrays: List[np.ndarray] = []
    offset = 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.numpy() if hasattr(t, "numpy") and not isinstance(t, np.ndarray) else t)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        if a.dtype not in _DTYPES:
            raise TypeError("%s: dtype %s; write_safetensors takes float32, float16, float64" % (name, a.dtype))
        header[name] = {"dtype": _DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        arrays.append(a)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)               # the data section starts 8-byte aligned
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.lexists(path) and not force:
        raise FileExistsError("%s exists (--force replaces it)" % path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(raw)))
            f.write(raw)
            for a in arrays:
                f.write(a.reshape(-1).view(np.uint8).data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:                                           # the rename itself, on disk
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def read_safetensors_header(path: str) -> Dict[str, Any]:
    """The JSON header of a .safetensors file (tensor name -> dtype, shape, offsets)."""
    with open(path, "rb") as f:
        size = f.read(8)
        if len(size) != 8:
            raise InputError("%s: not a safetensors file (shorter than 8 bytes)" % path)
        (n,) = struct.unpack("<Q", size)
        if n > 100 * 1024 * 1024 or n > os.fstat(f.fileno()).st_size - 8:
            raise InputError("%s: not a safetensors file (header length %d)" % (path, n))
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise InputError("%s: not a safetensors file (%s)" % (path, e)) from None
    if not isinstance(header, dict):
        raise InputError("%s: not a safetensors file (its header is not a JSON object)" % path)
    header.pop("__metadata__", None)
    return header


def checkpoint_names(model_dir: str) -> Optional[Dict[str, Tuple[int, ...]]]:
    """{tensor name: shape} of MODEL_DIR's safetensors checkpoint (model.safetensors, or
    the shards of model.safetensors.index.json, or any one *.safetensors file); None
    when it has none."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    files: List[str] = []
    if os.path.isfile(index):
        try:
            with open(index, encoding="utf-8") as f:
                weight_map = json.load(f)["weight_map"]
            files = sorted(set(os.path.join(model_dir, v) for v in weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise InputError("%s: not a safetensors index (%s)" % (index, e)) from None
    elif os.path.isfile(os.path.join(model_dir, "model.safetensors")):
        files = [os.path.join(model_dir, "model.safetensors")]
    else:
        found = sorted(n for n in os.listdir(model_dir) if n.endswith(".safetensors"))
        if len(found) != 1:
            return None
        files = [os.path.join(model_dir, found[0])]
    names: Dict[str, Tuple[int, ...]] = {}
    for path in files:
        for name, info in read_safetensors_header(path).items():
            names[name] = tuple(info.get("shape", ())) if isinstance(info, dict) else ()
    return names


def tensor_name(module_name: str, prefix: str, checkpoint: Optional[Mapping[str, Tuple[int, ...]]]) -> Optional[str]:
    """The checkpoint's name of a linear module's weight: "<module>.weight" as it is,
    with the model's base prefix added, or with it removed; None when the checkpoint
    has none of them. Without a checkpoint, "<module>.weight"."""
    plain = module_name + ".weight"
    if checkpoint is None:
        return plain
    candidates = [plain]
    if prefix:
        if module_name.startswith(prefix + "."):
            candidates.append(plain[len(prefix) + 1:])
        else:
            candidates.append(prefix + "." + plain)
    for c in candidates:
        if c in checkpoint:
            return c
    return None


# ---- the grams ---------------------------------------------------------------------

class _SharedInputs:
    """The batch gram of the last few distinct layer inputs: q, k and v (or gate and
    up) read the same tensor, whose gram is then computed once. The inputs are held
    while cached, so that a new tensor cannot reuse the memory of a cached one."""

    def __init__(self, size: int = 4):
        self.size = size
        self.entries: List[Tuple[Any, Tuple[Any, ...], Any, int]] = []

    @staticmethod
    def _key(x: Any) -> Tuple[Any, ...]:
        return (x.data_ptr(), tuple(x.shape), tuple(x.stride()), x.dtype, x.device, x._version)

    def get(self, x: Any) -> Optional[Tuple[Any, int]]:
        key = self._key(x)
        for held, k, g, tokens in self.entries:
            if held is x or k == key:
                return g, tokens
        return None

    def put(self, x: Any, g: Any, tokens: int) -> None:
        self.entries.append((x, self._key(x), g, tokens))
        if len(self.entries) > self.size:
            self.entries.pop(0)

    def clear(self) -> None:
        self.entries = []


def _real_tokens(x: Any, mask: Any) -> Any:
    """A linear layer's input as tokens x features, without the padding positions:
    (batch, seq, features) inputs lose the positions the attention mask marks as
    padding (also when flattened to (batch*seq, features)); other inputs (a pooler's
    (batch, features)) count every row."""
    cols = x.shape[-1]
    if mask is not None:
        if x.dim() == 3 and tuple(x.shape[:2]) == tuple(mask.shape):
            return x[mask]
        if x.dim() == 2 and x.shape[0] == mask.numel() and mask.dim() == 2 and mask.shape[1] > 1:
            return x[mask.reshape(-1)]
    return x.reshape(-1, cols)


def collect(model: Any, batches: Iterable[Mapping[str, Any]], layers: Sequence[Tuple[str, Any]], *,
            device: Any = None, threads: Optional[int] = None, progress: Any = None) -> Tuple[Dict[str, Any], Dict[str, int]]:
    """({layer name: H}, {layer name: tokens}) over the batches for the given
    (name, nn.Linear) layers: H = X^T X, float32 (in x in) on the layer's device,
    summed by tsenor.gram, with the positions where a batch's "attention_mask" is 0
    left out. batches: dicts of keyword arguments of the model's forward (a tokenizer's
    output); each is moved to device when given. progress(batch_index, tokens) is
    called after each batch. The model runs in eval mode under torch.no_grad()."""
    import torch

    from . import CUDA_BUILT, gram

    grams: Dict[str, Any] = {}
    tokens: Dict[str, int] = {}
    shared = _SharedInputs()
    state: Dict[str, Any] = {"mask": None}

    def batch_gram(x: Any) -> Any:
        x = x.detach()
        if x.device.type == "cuda" and not CUDA_BUILT:
            x32 = x.float()
            return x32.T @ x32                    # tsenor without CUDA: torch's product on the GPU
        return gram(x, threads=threads)

    def hook_for(name: str) -> Any:
        def hook(module: Any, inputs: Tuple[Any, ...]) -> None:
            if not inputs or not isinstance(inputs[0], torch.Tensor):
                return
            x = inputs[0]
            found = shared.get(x)
            if found is None:
                real = _real_tokens(x, state["mask"])
                if real.shape[0] == 0:
                    return
                found = (batch_gram(real), int(real.shape[0]))
                shared.put(x, *found)
            g, count = found
            if name in grams:
                grams[name] += g
            else:
                grams[name] = g.clone()
            tokens[name] = tokens.get(name, 0) + count
        return hook

    # no key/value cache: it is not needed and would only hold memory
    config: Any = getattr(model, "config", None)
    use_cache = getattr(config, "use_cache", None)
    handles = [module.register_forward_pre_hook(hook_for(name)) for name, module in layers]
    training = model.training
    model.eval()
    try:
        if use_cache is not None:
            config.use_cache = False
        with torch.no_grad():
            for index, batch in enumerate(batches):
                batch = {k: (v.to(device) if device is not None and isinstance(v, torch.Tensor) else v)
                         for k, v in batch.items()}
                mask = batch.get("attention_mask")
                state["mask"] = None if mask is None else mask.to(torch.bool)
                model(**batch)
                shared.clear()
                if progress is not None:
                    progress(index, 0 if mask is None else int(mask.sum()))
    finally:
        for h in handles:
            h.remove()
        model.train(training)
        if use_cache is not None:
            config.use_cache = use_cache
    return grams, tokens


# ---- the command -------------------------------------------------------------------

def read_texts(path: str, paragraphs: bool) -> List[str]:
    """The texts of a UTF-8 file: its non-empty lines, or its paragraphs (blocks of
    non-empty lines, joined by spaces)."""
    try:
        with open(path, encoding="utf-8") as f:
            content = f.read()
    except UnicodeDecodeError as e:
        raise InputError("%s: not UTF-8 text (byte %d)" % (path, e.start)) from None
    except OSError as e:
        raise InputError("%s: %s" % (path, e.strerror or e)) from None
    lines = [line.strip() for line in content.splitlines()]
    if not paragraphs:
        return [line for line in lines if line]
    texts: List[str] = []
    current: List[str] = []
    for line in lines + [""]:
        if line:
            current.append(line)
        elif current:
            texts.append(" ".join(current))
            current = []
    return texts


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:      # one line, exit 2
        self.exit(2, "%s: error: %s (--help for usage)\n" % (PROG, message))


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    doc = __doc__ or ""
    p = _ArgumentParser(prog=PROG, description=doc.split("\n\n")[0].replace("\n", " "),
                        epilog="Layers with no gram in GRAMS are refused by tsenor prune --method (exit 2, naming "
                               "them) unless --allow-missing-gram; grams of weights it does not prune are ignored.")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="a Hugging Face model folder (config.json, weights, tokenizer)")
    p.add_argument("--text", required=True, metavar="FILE", help="UTF-8 calibration text: one text per line")
    p.add_argument("-o", "--output", required=True, metavar="GRAMS", help="the .safetensors file to write")
    p.add_argument("--paragraphs", action="store_true", help="one text per paragraph (blank-line separated)")
    p.add_argument("--max-texts", type=int, default=None, metavar="N", help="use the first N texts only")
    p.add_argument("--max-length", type=int, default=512, metavar="L",
                   help="tokens per text at most, longer ones truncated (default 512, at most the tokenizer's)")
    p.add_argument("--batch-size", type=int, default=16, metavar="B", help="texts per forward (default 16)")
    p.add_argument("--device", default="cpu", help="where the model runs: cpu (default), cuda, cuda:1, ...")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                   help="the model's dtype while running (default float32; the grams are float32 sums)")
    p.add_argument("--auto-class", default="AutoModel", metavar="NAME",
                   help="the transformers class that loads MODEL_DIR (default AutoModel)")
    p.add_argument("--include", action="append", default=[], metavar="REGEX",
                   help="only weights whose name matches (repeatable; Python regular expressions)")
    p.add_argument("--exclude", action="append", default=[], metavar="REGEX", help="never these (repeatable)")
    p.add_argument("--no-default-excludes", action="store_true",
                   help="do not leave out the command line's default excludes (embeddings, heads, norms)")
    p.add_argument("--threads", type=int, default=None, metavar="K", help="CPU threads (default: torch's)")
    p.add_argument("--force", action="store_true", help="replace an existing GRAMS")
    p.add_argument("--quiet", action="store_true", help="no progress, no summary")
    args = p.parse_args(argv)
    for option, patterns in (("--include", args.include), ("--exclude", args.exclude)):
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as e:
                p.error("%s %r: %s" % (option, pattern, e))
    for name in ("max_texts", "max_length", "batch_size", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error("--%s %d: need >= 1" % (name.replace("_", "-"), value))
    return args


def _check_paths(args: argparse.Namespace) -> None:
    d = args.model_dir
    if not os.path.isdir(d):
        raise InputError("%s: %s" % (d, "not a directory" if os.path.exists(d) else "no such directory"))
    if not os.path.isfile(os.path.join(d, "config.json")):
        raise InputError("%s: not a Hugging Face model folder (no config.json)" % d)
    if not os.path.isfile(args.text):
        raise InputError("%s: %s" % (args.text, "not a file" if os.path.exists(args.text) else "no such file"))
    out = args.output
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise InputError("%s: the folder %s does not exist" % (out, folder))
    if os.path.isdir(out):
        raise InputError("%s: is a directory" % out)
    if os.path.lexists(out) and not args.force:
        raise InputError("%s exists (--force replaces it)" % out)
    if os.path.exists(out) and os.path.samefile(out, args.text):
        raise InputError("%s: GRAMS is the text file" % out)
    if not os.access(folder, os.W_OK):
        raise InputError("%s: cannot write in %s" % (out, folder))


def _load(args: argparse.Namespace) -> Tuple[Any, Any, Any]:
    """(torch, tokenizer, model) or InputError."""
    try:
        import torch
        import transformers
    except ImportError as e:
        raise InputError("%s needs torch and transformers (%s: pip install torch transformers)" % (PROG, e)) from None
    try:
        device = torch.device(args.device)
    except (RuntimeError, ValueError) as e:
        raise InputError("--device %s: %s" % (args.device, e)) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device %s: torch sees no CUDA device" % args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    auto = getattr(transformers, args.auto_class, None)
    if auto is None or not hasattr(auto, "from_pretrained"):
        raise InputError("--auto-class %s: transformers has no such model class" % args.auto_class)
    # transformers 4.56 renamed torch_dtype to dtype
    version = tuple(int(v) for v in transformers.__version__.split(".")[:2] if v.isdigit())
    dtype_key = "dtype" if version >= (4, 56) else "torch_dtype"
    # transformers' progress bar and warnings stay off stderr while it loads (stderr has
    # this command's lines); its settings are restored after
    logging: Any = transformers.utils.logging
    verbosity, bar = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(args.model_dir)
        model = auto.from_pretrained(args.model_dir, **{dtype_key: getattr(torch, args.dtype)})
    except Exception as e:   # transformers raises many kinds (OSError, ValueError, KeyError, ...)
        raise InputError("%s: transformers cannot load it: %s" % (args.model_dir, _one_line(e))) from None
    finally:
        logging.set_verbosity(verbosity)
        if bar:
            logging.enable_progress_bar()
    return torch, tokenizer, model.to(device)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _batches(torch: Any, tokenizer: Any, texts: Sequence[str], max_length: int, batch_size: int
             ) -> Tuple[List[Mapping[str, Any]], int]:
    """(batches of the texts sorted by token count, tokens in all)."""
    if getattr(tokenizer, "pad_token", None) is None:
        # causal LMs often have none; the padded positions are left out of the grams anyway
        tokenizer.pad_token = getattr(tokenizer, "eos_token", None) or getattr(tokenizer, "unk_token", None)
        if tokenizer.pad_token is None:
            raise InputError("the tokenizer has no pad, eos or unk token to pad batches with")
    tokenizer.padding_side = "right"
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    batches = []
    for start in range(0, len(order), batch_size):
        chunk = [texts[i] for i in order[start:start + batch_size]]
        batches.append(tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt"))
    return batches, sum(lengths)


class _Progress:
    """tqdm on stderr when installed, else a line on stderr every tenth of the batches."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.bar = total, enabled, None
        self.tokens, self.start, self.next_line = 0, time.perf_counter(), 1
        if enabled:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, desc="tsenor.grams", unit="batch", file=sys.stderr)
            except ImportError:
                pass

    def __call__(self, index: int, tokens: int) -> None:
        self.tokens += tokens
        if self.bar is not None:
            self.bar.update(1)
        elif self.enabled and (index + 1) * 10 >= self.next_line * self.total:
            while self.next_line * self.total <= (index + 1) * 10:
                self.next_line += 1
            print("%s: batch %d/%d, %d tokens, %.1f s" % (PROG, index + 1, self.total, self.tokens,
                                                        time.perf_counter() - self.start), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _layers(model: Any, checkpoint: Optional[Mapping[str, Tuple[int, ...]]], args: argparse.Namespace
            ) -> Tuple[List[Tuple[str, Any]], Dict[str, str], List[str], int]:
    """(chosen (module name, nn.Linear), {module name: gram name}, linear modules the
    checkpoint has no weight of their shape for, how many nn.Linear modules there are)."""
    from torch import nn

    from .torch import weight_selector

    try:
        selected = weight_selector(args.include or None, args.exclude or None, not args.no_default_excludes)
    except ValueError as e:
        raise InputError(str(e)) from None
    prefix = str(getattr(model, "base_model_prefix", "") or "")
    chosen, names, unknown, seen = [], {}, [], set()
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or id(module) in seen:
            continue
        seen.add(id(module))
        out = tensor_name(name, prefix, checkpoint)
        if out is None:
            unknown.append(name)
            continue
        if checkpoint is not None and checkpoint[out] and tuple(checkpoint[out]) != tuple(module.weight.shape):
            unknown.append(name)
            continue
        if selected(out):
            chosen.append((name, module))
            names[name] = out
    return chosen, names, unknown, len(seen)


def run(args: argparse.Namespace) -> int:
    _check_paths(args)
    texts = read_texts(args.text, args.paragraphs)
    if args.max_texts is not None:
        texts = texts[:args.max_texts]
    if not texts:
        raise InputError("%s: no text in it (%s)" % (args.text, "no paragraph" if args.paragraphs else "no non-empty line"))
    checkpoint = checkpoint_names(args.model_dir)
    torch, tokenizer, model = _load(args)
    chosen, names, unknown, linears = _layers(model, checkpoint, args)
    if not chosen:
        raise InputError("no linear layer of the model is chosen (%d nn.Linear, %d without a weight in the "
                         "checkpoint; see --include, --exclude)" % (linears, len(unknown)))
    limit = getattr(tokenizer, "model_max_length", None)
    max_length = min(args.max_length, int(limit)) if isinstance(limit, int) and 0 < limit < 10**9 else args.max_length
    batches, total_tokens = _batches(torch, tokenizer, texts, max_length, args.batch_size)
    device = torch.device(args.device)
    if not args.quiet:
        print("%s: %d texts, %d tokens (at most %d per text), %d batches, %d layers on %s" % (
            PROG, len(texts), total_tokens, max_length, len(batches), len(chosen), device), file=sys.stderr, flush=True)
    start = time.perf_counter()
    bar = _Progress(len(batches), not args.quiet)
    try:
        grams, tokens = collect(model, batches, chosen, device=device, threads=args.threads, progress=bar)
    except (RuntimeError, ValueError) as e:
        raise InputError("the forward pass failed: %s" % _one_line(e)) from None
    finally:
        bar.close()
    never = [name for name, _ in chosen if name not in grams]
    out = {names[name]: grams[name].cpu() for name, _ in chosen if name in grams}
    for name, g in out.items():
        if not bool(torch.isfinite(g).all()):
            raise InputError("the gram of %s holds NaN or infinity (the model's activations overflowed; "
                             "try --dtype float32)" % name)
    import tsenor
    metadata = {"tsenor.content": "grams", "tsenor.version": tsenor.__version__,
                "tsenor.model": os.path.basename(os.path.normpath(args.model_dir)),
                "tsenor.texts": str(len(texts)), "tsenor.max_length": str(max_length),
                "tsenor.tokens": json.dumps({names[n]: tokens[n] for n, _ in chosen if n in grams})}
    write_safetensors(args.output, out, metadata, force=args.force)
    if not args.quiet:
        print("wrote %d grams (F32) from %d texts, %d tokens, to %s in %.1f s" % (
            len(out), len(texts), total_tokens, args.output, time.perf_counter() - start))
        if never:
            print("no gram for %d chosen layers that never ran on the text: %s" % (len(never), ", ".join(never[:3])
                                                                                + (", ..." if len(never) > 3 else "")))
        if unknown:
            print("skipped %d nn.Linear layers with no weight of their shape in the checkpoint: %s" % (
                len(unknown), ", ".join(unknown[:3]) + (", ..." if len(unknown) > 3 else "")))
        if checkpoint is None:
            print("note: %s has no .safetensors checkpoint; the grams are named after the modules" % args.model_dir)
    return 0


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt()


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    # SIGTERM and SIGHUP unwind like Ctrl-C, so that no temporary file is left
    signals = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {s: signal.signal(s, _raise_interrupt) for s in signals}
    try:
        return run(args)
    except InputError as e:
        print("%s: error: %s" % (PROG, e), file=sys.stderr)
        return 2
    except FileExistsError as e:
        print("%s: error: %s" % (PROG, e), file=sys.stderr)
        return 2
    except OSError as e:
        print("%s: error: %s: %s" % (PROG, getattr(e, "filename", None) or args.output, e.strerror or e),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("%s: interrupted: nothing written" % PROG, file=sys.stderr)
        return 130
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


if __name__ == "__main__":
    sys.exit(main())
