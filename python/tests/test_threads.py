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


def test_keyboard_interrupt_between_calls_is_not_swallowed():
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
