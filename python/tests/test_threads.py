"""Concurrency: calls from many threads, the GIL released while solving, Ctrl-C."""
import _thread
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import tsenor
from conftest import weights


def test_threads_at_once_get_the_serial_masks():
    cases = [(weights(96, 128, seed=s), method) for s in range(4) for method in tsenor.METHODS]
    serial = [tsenor.mask(w, 8, 16, method=method) for w, method in cases]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda case: tsenor.mask(case[0], 8, 16, method=case[1]), cases))
    for expected, got in zip(serial, parallel):
        assert np.array_equal(expected, got)


def test_threads_sharing_one_input():
    w = weights(128, 128, seed=8)
    w.setflags(write=False)
    expected = tsenor.mask(w, 4, 8)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: tsenor.mask(w, 4, 8, threads=1), range(8)))
    assert all(np.array_equal(expected, r) for r in results)


def test_the_gil_is_released_while_solving():
    w = weights(1024, 1024, seed=1)
    span = {}

    def solve():
        span["start"] = time.perf_counter()
        tsenor.mask(w, 8, 16, method="exact", threads=1)
        span["end"] = time.perf_counter()

    worker = threading.Thread(target=solve)
    ticks = []
    worker.start()
    while worker.is_alive():               # Python code of this thread, timestamped
        ticks.append(time.perf_counter())
    worker.join()
    duration = span["end"] - span["start"]
    assert duration > 0.05, "the call was too short to tell (%.3f s)" % duration
    # with the GIL held by the call this thread could not run inside the span
    inside = [t for t in ticks if span["start"] + 0.01 < t < span["end"] - 0.01]
    assert len(inside) > 100, "%d ticks in a %.3f s call" % (len(inside), duration)


def test_keyboard_interrupt_between_calls_is_not_swallowed(ctrl_c):
    w = weights(64, 64)
    timer = threading.Timer(0.2, _thread.interrupt_main)
    calls = 0
    deadline = time.monotonic() + 20
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            while time.monotonic() < deadline:
                tsenor.mask(w, 2, 4)
                calls += 1
    finally:
        timer.cancel()
    assert calls > 0


def _layer(rows, cols, seed):
    rng = np.random.default_rng(seed)
    return weights(rows, cols, seed), tsenor.gram(rng.standard_normal((2 * cols, cols)).astype(np.float32))


def test_prune_from_threads_at_once_gives_the_serial_results():
    cases = [(_layer(64, 96, s), method) for s in range(2) for method in tsenor.PRUNE_METHODS]
    run = lambda case: tsenor.prune_layer(case[0][0], case[0][1], 8, 16, method=case[1], threads=1)  # noqa: E731
    serial = [run(case) for case in cases]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(run, cases))
    for (w1, k1, r1), (w2, k2, r2) in zip(serial, parallel):
        assert w1.tobytes() == w2.tobytes() and np.array_equal(k1, k2) and r1.error == r2.error


def test_grams_from_threads_into_their_own_outs():
    xs = [np.random.default_rng(s).standard_normal((300, 64)).astype(np.float32) for s in range(6)]
    serial = [tsenor.gram(x) for x in xs]
    with ThreadPoolExecutor(3) as pool:
        parallel = list(pool.map(lambda x: tsenor.gram(x, threads=1), xs))
    assert all(a.tobytes() == b.tobytes() for a, b in zip(serial, parallel))


def test_the_gil_is_released_while_pruning():
    w, gram = _layer(256, 256, seed=2)
    span = {}

    def solve():
        span["start"] = time.perf_counter()
        tsenor.prune_layer(w, gram, 8, 16, method="alps", threads=1)
        span["end"] = time.perf_counter()

    worker = threading.Thread(target=solve)
    ticks = []
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
    worker.join()
    duration = span["end"] - span["start"]
    assert duration > 0.05, "the call was too short to tell (%.3f s)" % duration
    inside = [t for t in ticks if span["start"] + 0.01 < t < span["end"] - 0.01]
    assert len(inside) > 100, "%d ticks in a %.3f s call" % (len(inside), duration)
