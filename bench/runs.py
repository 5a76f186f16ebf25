"""Timed runs: the naive ultralytics loop and our pipeline on the same frames, plus raw session latencies."""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
import torch
from ultralytics import YOLO  # type: ignore[attr-defined]

from core.types import Image
from detectors.detector import Detector
from detectors.session import create_session

logger = logging.getLogger(__name__)

WARMUP = 3


def read_frames(footage: Path, count: int) -> list[Image]:
    capture = cv2.VideoCapture(str(footage))
    frames: list[Image] = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(np.asarray(frame, dtype=np.uint8))
    capture.release()
    return frames


def time_loop(footage: Path, count: int, process: Callable[[Image], object]) -> float:
    """Frames/s of decode (cv2.VideoCapture) + `process` over the first `count` frames, after a warm-up."""
    first = read_frames(footage, 1)[0]
    for _ in range(WARMUP):
        process(first)
    capture = cv2.VideoCapture(str(footage))
    done = 0
    start = time.perf_counter()
    while done < count:
        ok, frame = capture.read()
        if not ok:
            break
        process(np.asarray(frame, dtype=np.uint8))
        done += 1
    elapsed = time.perf_counter() - start
    capture.release()
    return done / elapsed


def naive_fps(weights: Path, footage: Path, count: int, imgsz: int) -> float:
    """What a user writes: cv2.VideoCapture + YOLO(...).predict per frame (ultralytics defaults)."""
    model = YOLO(str(weights))
    return time_loop(footage, count, lambda f: model.predict(f, imgsz=imgsz, verbose=False))


def ours_fps(detector: Detector, footage: Path, count: int) -> float:
    return time_loop(footage, count, detector.detect)


def session_ms(model: Path, tensor: np.ndarray, runs: int = 30, threads: int = 1) -> float:
    """Median latency of `session.run` alone (no pre/post-processing), in ms."""
    session = create_session(model, intra_op_threads=threads)
    feed = {session.get_inputs()[0].name: tensor}
    for _ in range(WARMUP):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _worker_throughput(model: str, shape: tuple[int, ...], threads: int, runs: int) -> float:
    torch.set_num_threads(1)
    session = create_session(Path(model), intra_op_threads=threads)
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).random(shape, np.float32)}
    session.run(None, feed)
    start = time.perf_counter()
    for _ in range(runs):
        session.run(None, feed)
    return time.perf_counter() - start


def layout_throughput(model: Path, shape: tuple[int, ...], processes: int, threads: int, runs: int) -> float:
    """Images/s of `processes` processes with `threads` intra-op threads each, all running at once."""
    with ProcessPoolExecutor(processes) as pool:
        jobs = [pool.submit(_worker_throughput, str(model), shape, threads, runs) for _ in range(processes)]
        elapsed = max(job.result() for job in jobs)
    return processes * runs * shape[0] / elapsed


def single_thread_setup() -> str:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    return (
        f"one thread everywhere: torch.set_num_threads(1), cv2.setNumThreads(1), ONNX Runtime "
        f"{onnxruntime.__version__} intra_op_num_threads=1; torch {torch.__version__}"
    )
