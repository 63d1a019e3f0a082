"""The model worker: one thread, jobs that arrive together batched, groups by soft prompt, budgets, failures."""

import threading

import numpy as np
import pytest

from promptembedder.serving.worker import BatchWorker


class Recorder:
    """An embed function that logs each call's thread, key and texts; the first call waits until released."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, list[str]]] = []
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, key, texts):
        self.calls.append((threading.current_thread().name, key, list(texts)))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(10)
        if key == "boom":
            raise RuntimeError("model failed")
        return np.array([[len(t), hash(key) % 7] for t in texts], dtype=np.float32)


def _block_first(recorder, worker):
    """Occupy the worker with one job so that what is submitted next queues up behind it."""
    first = worker.submit("a", ["x"], [1])
    assert recorder.entered.wait(10)
    return first


def test_jobs_waiting_together_go_in_one_call_on_the_worker_thread():
    recorder = Recorder()
    worker = BatchWorker(recorder, max_batch_tokens=1000, window_s=0.0)
    first = _block_first(recorder, worker)
    futures = [worker.submit("a", [f"t{i}", f"text{i}"], [3, 5]) for i in range(4)]
    recorder.release.set()
    assert first.result(10)[0, 0] == 1
    for i, future in enumerate(futures):
        np.testing.assert_array_equal(future.result(10)[:, 0], [len(f"t{i}"), len(f"text{i}")])
    worker.close(10)
    assert [len(texts) for _, _, texts in recorder.calls] == [1, 8]
    assert {name for name, _, _ in recorder.calls} == {"promptembedder-model"}
    # Longest first within the batch.
    assert [len(t) for t in recorder.calls[1][2]] == sorted((len(t) for t in recorder.calls[1][2]), reverse=True)


def test_groups_by_soft_prompt_and_splits_on_the_token_budget():
    recorder = Recorder()
    worker = BatchWorker(recorder, max_batch_tokens=10, window_s=0.0)
    first = _block_first(recorder, worker)
    a = worker.submit("a", ["aaaa", "aa"], [4, 2])
    b = worker.submit(None, ["bbb"], [3])
    c = worker.submit("a", ["a", "aaa"], [1, 3])
    recorder.release.set()
    for future in (first, a, b, c):
        future.result(10)
    worker.close(10)
    calls = [(key, texts) for _, key, texts in recorder.calls[1:]]
    # a and c share a soft prompt: one sorted run, cut so that texts x longest <= 10 tokens.
    assert calls == [("a", ["aaaa", "aaa"]), ("a", ["aa", "a"]), (None, ["bbb"])]
    np.testing.assert_array_equal(a.result()[:, 0], [4, 2])
    np.testing.assert_array_equal(c.result()[:, 0], [1, 3])


def test_a_failing_call_fails_its_jobs_only_and_the_worker_goes_on():
    recorder = Recorder()
    worker = BatchWorker(recorder, max_batch_tokens=100, window_s=0.0)
    first = _block_first(recorder, worker)
    bad = worker.submit("boom", ["x"], [1])
    good = worker.submit("a", ["yy"], [2])
    recorder.release.set()
    first.result(10)
    with pytest.raises(RuntimeError, match="model failed"):
        bad.result(10)
    assert good.result(10)[0, 0] == 2
    assert worker.submit("a", ["zzz"], [3]).result(10)[0, 0] == 3
    worker.close(10)


def test_a_cancelled_job_is_skipped_and_close_finishes_what_was_submitted():
    recorder = Recorder()
    worker = BatchWorker(recorder, max_batch_tokens=100, window_s=0.0)
    _block_first(recorder, worker)
    dropped = worker.submit("a", ["dropped"], [1])
    kept = worker.submit("a", ["kept"], [1])
    assert dropped.cancel()
    closer = threading.Thread(target=worker.close, args=(10,))
    closer.start()  # close waits for the queued job, which waits for the release
    recorder.release.set()
    closer.join(10)
    assert not closer.is_alive() and not worker.alive
    assert kept.result(0)[0, 0] == 4
    assert all("dropped" not in texts for _, _, texts in recorder.calls)
    with pytest.raises(RuntimeError, match="shut down"):
        worker.submit("a", ["late"], [1])
