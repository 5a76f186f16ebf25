from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from core.types import Detections, Image
from detectors.batcher import MicroBatcher, OverloadedError
from detectors.detector import Detector

# how long a test waits for a result it expects: a guard against a hang, never a measured assertion
RESULT_WAIT_S = 30.0


class FaultyDetector:
    """A real detector behind a faulty wrapper: `detect_batch` waits for `gate`, and its first batch comes back
    with `extra` results too many (negative: too few)."""

    def __init__(self, inner: Detector, *, extra: int = 0, gated: bool = False) -> None:
        self.inner = inner
        self.extra = extra
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.calls = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def labels(self) -> list[str]:
        return self.inner.labels

    @property
    def dynamic_batch(self) -> bool:
        return self.inner.dynamic_batch

    def detect_batch(self, images: Sequence[Image]) -> list[Detections]:
        self.gate.wait(RESULT_WAIT_S)
        self.calls += 1
        results = self.inner.detect_batch(images)
        if self.calls > 1 or self.extra == 0:
            return results
        return results + results[: self.extra] if self.extra > 0 else results[: self.extra]


def assert_same(got: Detections, want: Detections, atol: float = 0.0) -> None:
    assert len(got) == len(want)
    np.testing.assert_allclose(got.xyxy, want.xyxy, atol=atol)
    np.testing.assert_allclose(got.confidence, want.confidence, atol=atol)
    np.testing.assert_array_equal(got.class_id, want.class_id)


def test_static_batch_model_runs_frame_by_frame(
    yolox: Detector, bus: Image, zidane: Image, footage_frame: Image
) -> None:
    images = [bus, zidane, footage_frame] * 3
    with MicroBatcher(yolox, max_batch=8, max_wait_ms=50) as batcher, ThreadPoolExecutor(6) as pool:
        results = list(pool.map(batcher.detect, images))

    assert batcher.max_batch == 1
    assert (batcher.stats.batches, batcher.stats.frames) == (9, 9)
    for got, image in zip(results, images, strict=True):
        assert_same(got, yolox.detect(image))


def test_dynamic_batch_model_batches_and_matches_one_by_one(yolo11n: Detector, bus: Image, zidane: Image) -> None:
    images = [bus, zidane, bus, zidane]
    batcher = MicroBatcher(yolo11n, max_batch=4, max_wait_ms=60_000, autostart=False)
    futures = [batcher.submit(image) for image in images]

    batcher.start()
    results = [future.result(timeout=60) for future in futures]
    batcher.close()

    assert (batcher.stats.batches, batcher.stats.frames) == (1, 4)  # closed at max_batch, not the deadline
    for got, image in zip(results, images, strict=True):
        assert_same(got, yolo11n.detect(image), atol=0.05)


def test_a_lone_frame_leaves_at_its_deadline(yolo11n: Detector, bus: Image) -> None:
    with MicroBatcher(yolo11n, max_batch=8, max_wait_ms=5) as batcher:
        got = batcher.submit(bus).result(timeout=60)

    assert (batcher.stats.batches, batcher.stats.frames) == (1, 1)
    assert_same(got, yolo11n.detect(bus), atol=0.05)


def test_a_full_queue_pushes_back(yolox: Detector, bus: Image) -> None:
    batcher = MicroBatcher(yolox, max_queue=2, submit_timeout_s=0.01, high_water=1.0, autostart=False)
    first, second = batcher.submit(bus), batcher.submit(bus)

    assert batcher.queue_depth == 2 and batcher.saturated
    with pytest.raises(OverloadedError, match="inference queue full \\(2 frames\\)"):
        batcher.submit(bus)

    batcher.start()
    assert len(first.result(timeout=60)) == len(second.result(timeout=60)) > 0
    batcher.close()
    assert batcher.queue_depth == 0 and not batcher.saturated


def test_a_failing_batch_fails_its_callers_only(yolox: Detector, bus: Image) -> None:
    grey = np.zeros((32, 32), np.uint8)  # not HxWx3: the letterbox refuses it
    with MicroBatcher(yolox) as batcher:
        with pytest.raises(ValueError, match="expected an HxWx3 uint8 image"):
            batcher.detect(grey)
        assert len(batcher.detect(bus)) > 0

    assert batcher.stats.failures == 1


def test_a_closed_batcher_refuses_frames(yolox: Detector, bus: Image) -> None:
    batcher = MicroBatcher(yolox)
    batcher.close()

    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(bus)


@pytest.mark.parametrize(("extra", "count"), [(-1, 0), (1, 2)])
def test_a_miscounted_batch_fails_its_callers_and_the_next_call_works(
    yolox: Detector, bus: Image, extra: int, count: int
) -> None:
    with MicroBatcher(FaultyDetector(yolox, extra=extra)) as batcher:
        with pytest.raises(RuntimeError, match=rf"{count} results for a batch of 1 images"):
            batcher.submit(bus).result(timeout=RESULT_WAIT_S)
        assert len(batcher.submit(bus).result(timeout=RESULT_WAIT_S)) > 0

    assert (batcher.stats.failures, batcher.stats.batches) == (1, 1)
    assert not batcher.saturated


def test_a_cancelled_frame_is_skipped_and_the_others_still_run(yolox: Detector, bus: Image) -> None:
    batcher = MicroBatcher(yolox, autostart=False)
    cancelled, kept = batcher.submit(bus), batcher.submit(bus)
    assert cancelled.cancel()

    batcher.start()
    assert len(kept.result(timeout=RESULT_WAIT_S)) > 0
    batcher.close()

    assert (batcher.stats.batches, batcher.stats.frames, batcher.stats.failures) == (1, 1, 0)


def test_detect_gives_up_on_a_result_that_does_not_come(yolox: Detector, bus: Image) -> None:
    stuck = FaultyDetector(yolox, gated=True)
    batcher = MicroBatcher(stuck, result_timeout_s=0.1)
    try:
        with pytest.raises(OverloadedError, match=r"model yolox\S*: no result within 0\.1 s"):
            batcher.detect(bus)
    finally:
        stuck.gate.set()
        batcher.close()


def test_close_does_not_wait_forever_on_a_stuck_model(
    yolox: Detector, bus: Image, caplog: pytest.LogCaptureFixture
) -> None:
    stuck = FaultyDetector(yolox, gated=True)
    batcher = MicroBatcher(stuck, close_timeout_s=0.1)
    pending = batcher.submit(bus)

    batcher.close()

    assert "batcher thread(s) still busy" in caplog.text
    stuck.gate.set()
    assert len(pending.result(timeout=RESULT_WAIT_S)) > 0


class MeetingDetector(FaultyDetector):
    """A real detector whose `detect_batch` first waits for `parties` runs to be inside it at once."""

    def __init__(self, inner: Detector, parties: int, wait_s: float) -> None:
        super().__init__(inner)
        self.meeting = threading.Barrier(parties, timeout=wait_s)

    def detect_batch(self, images: Sequence[Image]) -> list[Detections]:
        self.meeting.wait()  # BrokenBarrierError unless `parties` workers run at the same time
        return self.inner.detect_batch(images)


def test_workers_run_at_the_same_time(yolox: Detector, bus: Image, zidane: Image) -> None:
    with MicroBatcher(MeetingDetector(yolox, parties=2, wait_s=RESULT_WAIT_S), workers=2) as batcher:
        first, second = batcher.submit(bus), batcher.submit(zidane)
        assert_same(first.result(timeout=RESULT_WAIT_S), yolox.detect(bus))
        assert_same(second.result(timeout=RESULT_WAIT_S), yolox.detect(zidane))

    assert (batcher.workers, batcher.stats.batches, batcher.stats.failures) == (2, 2, 0)


def test_one_worker_runs_one_batch_at_a_time(yolox: Detector, bus: Image) -> None:
    with (
        MicroBatcher(MeetingDetector(yolox, parties=2, wait_s=0.5), workers=1) as batcher,
        pytest.raises(threading.BrokenBarrierError),
    ):
        batcher.submit(bus).result(timeout=RESULT_WAIT_S)


def test_many_workers_give_every_caller_its_own_result(
    yolox: Detector, bus: Image, zidane: Image, footage_frame: Image
) -> None:
    images = [bus, zidane, footage_frame] * 4
    with MicroBatcher(yolox, workers=3) as batcher, ThreadPoolExecutor(6) as pool:
        results = list(pool.map(batcher.detect, images))
    threads = [t for t in threading.enumerate() if t.name.startswith(f"batcher-{yolox.name}-")]

    assert not threads  # close stopped every worker
    assert (batcher.stats.batches, batcher.stats.frames) == (12, 12)
    for got, image in zip(results, images, strict=True):
        assert_same(got, yolox.detect(image))


def test_workers_must_be_at_least_one(yolox: Detector) -> None:
    with pytest.raises(ValueError, match="workers >= 1"):
        MicroBatcher(yolox, workers=0)


def test_two_workers_still_fill_one_batch(yolo11n: Detector, bus: Image) -> None:
    with MicroBatcher(yolo11n, max_batch=4, max_wait_ms=5_000, workers=2) as batcher:
        futures = []
        for _ in range(4):  # frames arriving one by one while both workers are idle
            futures.append(batcher.submit(bus))
            time.sleep(0.05)
        results = [f.result(timeout=RESULT_WAIT_S) for f in futures]

    assert (batcher.stats.batches, batcher.stats.frames) == (1, 4)
    assert all(len(r) == len(results[0]) for r in results)


def test_frames_left_at_close_fail_instead_of_waiting_forever(yolox: Detector, bus: Image) -> None:
    batcher = MicroBatcher(yolox, autostart=False)
    pending = batcher.submit(bus)

    batcher.close()

    with pytest.raises(RuntimeError, match="closed before this frame ran"):
        pending.result(timeout=RESULT_WAIT_S)
