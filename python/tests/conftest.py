"""Shared helpers of the tsenor package's tests. Run with the package installed
(pip install ./python) or built by `make python` (PYTHONPATH=build/python/site)."""
import itertools
import os
from pathlib import Path

import numpy as np
import pytest

import tsenor

REPO = Path(__file__).resolve().parents[2]


def weights(rows, cols, seed=0, dtype=np.float32):
    """A Gaussian matrix with log-normal column scales (distinct values, no ties)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, cols)) * np.exp(rng.standard_normal(cols) * 0.5)
    return w.astype(dtype)


def kept(w, keep):
    return float(np.abs(np.asarray(w, np.float64))[np.asarray(keep)].sum())


def transposable_selections(n, m):
    """Every m x m 0/1 matrix with n ones in each row and column."""
    rows = [np.isin(np.arange(m), c) for c in itertools.combinations(range(m), n)]
    found = []
    for choice in itertools.product(range(len(rows)), repeat=m):
        s = np.array([rows[i] for i in choice])
        if (s.sum(axis=0) == n).all():
            found.append(s)
    return np.array(found)


def brute_force_kept(w, n, m):
    """The largest kept sum of |w| over transposable n:m masks, block by block, edge
    blocks zero-padded (as the library solves them)."""
    selections = transposable_selections(n, m)
    rows, cols = w.shape
    total = 0.0
    for r0 in range(0, rows, m):
        for c0 in range(0, cols, m):
            block = np.zeros((m, m))
            part = np.abs(w[r0:r0 + m, c0:c0 + m].astype(np.float64))
            block[:part.shape[0], :part.shape[1]] = part
            total += (selections * block).sum(axis=(1, 2)).max()
    return total


def rowwise_reference(w, n, m):
    """Top n |w| of every m consecutive entries of each row."""
    keep = np.zeros(w.shape, bool)
    a = np.abs(w.astype(np.float64))
    for c0 in range(0, w.shape[1], m):
        group = a[:, c0:c0 + m]
        top = np.argsort(-group, axis=1, kind="stable")[:, :n]
        np.put_along_axis(keep[:, c0:c0 + m], top, True, axis=1)
    return keep


def cli_path():
    """The command line build/tsenor (or $TSENOR_CLI), or None."""
    path = Path(os.environ.get("TSENOR_CLI", REPO / "build" / "tsenor"))
    return path if path.is_file() and os.access(path, os.X_OK) else None


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def ctrl_c():
    """Ctrl-C raises KeyboardInterrupt during the test, as in an interactive shell. A
    process started in the background by a non-interactive shell inherits SIGINT
    ignored, and Python then leaves it ignored (_thread.interrupt_main does nothing)."""
    import signal
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, signal.SIG_DFL, None):
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if previous in (signal.SIG_IGN, signal.SIG_DFL):
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def ml_dtypes():
    return pytest.importorskip("ml_dtypes")


def sentence_embeddings(tokenizer, model, sentences, device="cpu", batch=64):
    """all-MiniLM-L6-v2's sentence embeddings as sentence-transformers makes them: mean of
    the last hidden states over the real tokens, L2-normalised (torch, on the CPU)."""
    import torch
    out = []
    for i in range(0, len(sentences), batch):
        b = tokenizer(sentences[i:i + batch], padding=True, truncation=True, max_length=128,
                      return_tensors="pt").to(device)
        with torch.no_grad():
            hidden = model(**b).last_hidden_state
        weights = b["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        out.append(torch.nn.functional.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1).cpu())
    return torch.cat(out)


def assert_valid(keep, n, m, transposable=True):
    report = tsenor.check_report(keep, n, m, transposable)
    assert report.valid, report
