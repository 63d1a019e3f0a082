"""The one thread that runs the model: it drains a queue of requests and batches those that came together.

Every model call happens on this thread, so the event loop never blocks on a forward pass and the model is
never entered by two threads at once. The worker takes the first waiting request, keeps collecting for a
short window (or until the token budget is full), then runs each group of texts that share a soft prompt in
length-sorted batches of at most ``max_batch_tokens`` padded tokens.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)


@dataclass
class Job:
    """One request: texts that share a soft prompt (``key``), their token counts, and where the answer goes."""

    key: Hashable
    texts: list[str]
    tokens: list[int]  # per text, soft prompt included: what a padded batch costs
    future: Future = field(default_factory=Future)


_STOP = object()


class BatchWorker:
    """``embed(key, texts) -> (len(texts), d) array`` run on a dedicated thread, batching concurrent jobs."""

    def __init__(
        self,
        embed: Callable[[Hashable, list[str]], np.ndarray],
        *,
        max_batch_tokens: int,
        window_s: float,
        on_batch: Callable[[int, int, float], None] | None = None,
    ) -> None:
        self.embed, self.max_batch_tokens, self.window_s = embed, max_batch_tokens, window_s
        self.on_batch = on_batch  # (texts, padded tokens, seconds) of each model call, for metrics
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="promptembedder-model", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closed

    def submit(self, key: Hashable, texts: list[str], tokens: list[int]) -> Future:
        job = Job(key, texts, tokens)
        with self._lock:  # no job slips in behind the stop marker
            if self._closed:
                raise RuntimeError("the model worker is shut down")
            self._queue.put(job)
        return job.future

    def close(self, timeout: float | None = None) -> None:
        """Finish every job already submitted, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)

    # ------------------------------------------------------------------ the worker thread
    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            jobs, budget, stop = [first], self.max_batch_tokens - sum(first.tokens), False
            deadline = time.monotonic() + self.window_s
            while budget > 0:
                remaining = deadline - time.monotonic()
                try:
                    job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stop = True
                    break
                jobs.append(job)
                budget -= sum(job.tokens)
            self._run(jobs)
            if stop:
                return

    def _run(self, jobs: list[Job]) -> None:
        live = [job for job in jobs if job.future.set_running_or_notify_cancel()]  # drop requests given up on
        groups: dict[Hashable, list[Job]] = {}
        for job in live:
            groups.setdefault(job.key, []).append(job)
        for key, members in groups.items():
            try:
                results = self._embed_group(key, members)
            except Exception as err:  # noqa: BLE001 - the failure belongs to these requests, not to the worker
                logger.exception("model call failed")
                for job in members:
                    job.future.set_exception(err)
                continue
            for job, vectors in zip(members, results, strict=True):
                job.future.set_result(vectors)

    def _embed_group(self, key: Hashable, jobs: list[Job]) -> list[np.ndarray]:
        items = [(j, i) for j, job in enumerate(jobs) for i in range(len(job.texts))]
        # Longest first: each batch is padded only to its own longest text, and the budget bounds the padding.
        items.sort(key=lambda item: -jobs[item[0]].tokens[item[1]])
        out: list[np.ndarray | None] = [None] * len(jobs)
        start = 0
        while start < len(items):
            longest = jobs[items[start][0]].tokens[items[start][1]]
            size = max(1, min(len(items) - start, self.max_batch_tokens // longest))
            batch = items[start : start + size]
            t0 = time.perf_counter()
            vectors = self.embed(key, [jobs[j].texts[i] for j, i in batch])
            if self.on_batch is not None:
                self.on_batch(len(batch), longest * len(batch), time.perf_counter() - t0)
            for row, (j, i) in enumerate(batch):
                if out[j] is None:
                    out[j] = np.empty((len(jobs[j].texts), vectors.shape[1]), dtype=vectors.dtype)
                out[j][i] = vectors[row]
            start += size
        return out
