"""A deadline-aware micro-batcher: frames from all grabbers of a worker share one model's inference.

One `MicroBatcher` per model: a per-model queue and `workers` worker threads, each running its own batches
on the shared session (ONNX Runtime releases the GIL while it runs, so on CPU `workers` = cores with one
intra-op thread each uses every core, which beats one run with many intra-op threads). A frame waits at most
`max_wait_ms` for companions; a batch closes at `max_batch` frames or at the oldest frame's deadline,
whichever comes first. Models whose graph has a fixed batch axis run frame by frame (no waiting). When
inference is the bottleneck the queue fills: `detect` blocks, then raises `OverloadedError` after
`submit_timeout_s`, and `saturated` / `queue_depth` tell the scheduler to slow down before that. A queued frame
whose result takes longer than `result_timeout_s` fails its `detect` call with `OverloadedError` too.

Worker threads outlive any failure: whatever goes wrong while a batch is in hand fails that batch's futures
and the thread takes the next one, so no caller waits on a future nobody will settle.

`detect(image)` has `Detector.detect`'s signature, so the visit pipeline takes either.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Protocol

from core.errors import GridwatchError
from core.types import Detections, Image

logger = logging.getLogger(__name__)


class OverloadedError(GridwatchError):
    """Inference cannot keep up: the model's queue stayed full for the whole submit timeout."""


class BatchDetector(Protocol):
    """What the batcher needs from a detector (`detectors.detector.Detector` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def labels(self) -> list[str]: ...

    @property
    def dynamic_batch(self) -> bool: ...

    def detect_batch(self, images: Sequence[Image]) -> list[Detections]: ...


@dataclass(slots=True)
class _Request:
    image: Image
    deadline: float  # time.monotonic() by which its batch must start
    future: Future[Detections] = field(default_factory=Future)


@dataclass(slots=True)
class BatchStats:
    """Counters since start: batches run, frames run, failed batches."""

    batches: int = 0
    frames: int = 0
    failures: int = 0


_STOP = object()


class MicroBatcher:
    """Batches `detect` calls from many threads into `detector.detect_batch` runs on `workers` threads."""

    def __init__(
        self,
        detector: BatchDetector,
        *,
        max_batch: int = 8,
        max_wait_ms: float = 10.0,
        workers: int = 1,
        max_queue: int = 64,
        submit_timeout_s: float = 5.0,
        high_water: float = 0.75,
        result_timeout_s: float = 60.0,
        close_timeout_s: float = 60.0,
        autostart: bool = True,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0 or result_timeout_s <= 0 or workers < 1:
            raise ValueError(
                "need max_batch >= 1, max_queue >= 1, max_wait_ms >= 0, result_timeout_s > 0, workers >= 1; "
                f"got {max_batch}, {max_queue}, {max_wait_ms}, {result_timeout_s}, {workers}"
            )
        self._detector = detector
        self.max_batch = max_batch if detector.dynamic_batch else 1
        self._max_wait_s = max_wait_ms / 1000 if detector.dynamic_batch else 0.0
        self.max_queue = max_queue
        self._submit_timeout_s = submit_timeout_s
        self._result_timeout_s = result_timeout_s
        self._close_timeout_s = close_timeout_s
        self._high_water = max(1, int(max_queue * high_water))
        self._queue: queue.Queue[_Request | object] = queue.Queue(maxsize=max_queue)
        self.workers = workers
        self._threads = [
            threading.Thread(target=self._loop, name=f"batcher-{detector.name}-{i}", daemon=True)
            for i in range(workers)
        ]
        self._closed = False
        self.stats = BatchStats()
        self._stats_lock = threading.Lock()
        self._collecting = threading.Lock()
        if not detector.dynamic_batch and max_batch > 1:
            logger.info("model %s has a fixed batch axis: the batcher runs it frame by frame", detector.name)
        if autostart:
            self.start()

    @property
    def name(self) -> str:
        return self._detector.name

    @property
    def labels(self) -> list[str]:
        return self._detector.labels

    @property
    def queue_depth(self) -> int:
        """Frames waiting for inference now."""
        return self._queue.qsize()

    @property
    def saturated(self) -> bool:
        """True when the queue is at or above its high-water mark: the scheduler should slow down."""
        return self._queue.qsize() >= self._high_water

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, image: Image) -> Future[Detections]:
        """Queue one image; its Detections arrive on the future. Raises OverloadedError when the queue stays full."""
        if self._closed:
            raise RuntimeError(f"batcher for {self._detector.name} is closed")
        request = _Request(image, time.monotonic() + self._max_wait_s)
        try:
            self._queue.put(request, timeout=self._submit_timeout_s)
        except queue.Full:
            raise OverloadedError(
                f"model {self._detector.name}: inference queue full ({self.max_queue} frames) for "
                f"{self._submit_timeout_s:.1f} s"
            ) from None
        return request.future

    def detect(self, image: Image) -> Detections:
        """Detections on one BGR image, run in a batch with other callers' images. Raises OverloadedError when
        the queue stays full for `submit_timeout_s` or the result takes longer than `result_timeout_s`."""
        future = self.submit(image)
        try:
            return future.result(timeout=self._result_timeout_s)
        except FutureTimeout:
            future.cancel()  # still queued: the worker skips it
            raise OverloadedError(
                f"model {self._detector.name}: no result within {self._result_timeout_s:.1f} s"
            ) from None

    def close(self) -> None:
        """Finish what is queued, then stop the worker threads (waiting at most `close_timeout_s` in all)."""
        if self._closed:
            return
        self._closed = True
        alive = [t for t in self._threads if t.is_alive()]
        deadline = time.monotonic() + self._close_timeout_s
        try:
            for _ in alive:  # one stop mark per worker: each takes exactly one and returns
                self._queue.put(_STOP, timeout=max(deadline - time.monotonic(), 0.001))
        except queue.Full:
            logger.warning("model %s: batcher queue still full at close", self._detector.name)
        for thread in alive:
            thread.join(timeout=max(deadline - time.monotonic(), 0.001))
        busy = sum(t.is_alive() for t in alive)
        if busy:
            logger.warning(
                "model %s: %d batcher thread(s) still busy %.1f s after close", self.name, busy, self._close_timeout_s
            )
        else:
            self._fail_leftovers()

    def _fail_leftovers(self) -> None:
        """Fail what is still queued once every worker has stopped (a `submit` that raced `close`)."""
        closed = RuntimeError(f"batcher for {self._detector.name} closed before this frame ran")
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Request) and not item.future.done():
                item.future.set_exception(closed)

    def __enter__(self) -> MicroBatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _collect(self, batch: list[_Request]) -> bool:
        """Add to `batch` (its first request in place) whatever arrives before the first one's deadline, up to
        max_batch; whether to stop after this batch."""
        deadline = batch[0].deadline
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return True
            assert isinstance(item, _Request)
            batch.append(item)
        return False

    def _loop(self) -> None:
        while True:
            # one worker at a time takes frames and fills its batch (otherwise the queue would hand every other
            # frame to an idle worker and split batches); the runs themselves overlap
            with self._collecting:
                item = self._queue.get()
                if item is _STOP:
                    return
                assert isinstance(item, _Request)
                batch, stop = [item], False
                try:
                    stop = self._collect(batch)
                except Exception as exc:  # the thread must outlive any failure, or its callers wait forever
                    logger.exception("model %s: collecting a batch failed", self.name)
                    self._fail(batch, exc)
                    continue
            try:
                self._run([r for r in batch if r.future.set_running_or_notify_cancel()])
            except Exception as exc:  # the thread must outlive any failure, or its callers wait forever
                logger.exception("model %s: batch of %d failed", self.name, len(batch))
                self._fail(batch, exc)
            if stop:
                return

    def _run(self, batch: list[_Request]) -> None:
        if not batch:
            return
        try:
            results = self._detector.detect_batch([r.image for r in batch])
        except Exception as exc:
            logger.exception("model %s: batch of %d failed", self.name, len(batch))
            self._fail(batch, exc)
            return
        if len(results) != len(batch):
            raise RuntimeError(f"model {self.name}: {len(results)} results for a batch of {len(batch)} images")
        with self._stats_lock:
            self.stats.batches += 1
            self.stats.frames += len(batch)
        for request, result in zip(batch, results, strict=True):
            request.future.set_result(result)

    def _fail(self, batch: list[_Request], exc: Exception) -> None:
        """Fail every request of `batch` that has no outcome yet with `exc`."""
        with self._stats_lock:
            self.stats.failures += 1
        for request in batch:
            if not request.future.done():
                request.future.set_exception(exc)
