"""Timed pieces beside the frame loops (`bench.isolated`): the naive ultralytics call, decode and preprocess
medians, raw session latencies, the operator profile, and threads vs processes.

Every timed loop runs pinned to one core (`one_core`), so no path gets the second core for its decoder or
its math.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def one_thread_capture(footage: Path) -> cv2.VideoCapture:
    """cv2.VideoCapture with one FFmpeg decoder thread: less CPU per frame when a core is all one has."""
    return cv2.VideoCapture(str(footage), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])


@contextmanager
def one_core() -> Iterator[int]:
    """Pin this process (all its threads) to one core for the duration; yields the core."""
    before = os.sched_getaffinity(0)
    core = max(before)
    os.sched_setaffinity(0, {core})
    try:
        yield core
    finally:
        os.sched_setaffinity(0, before)


class NaivePredict:
    """What a user writes: `YOLO(weights).predict(frame, imgsz=..., verbose=False)` per frame (ultralytics
    defaults otherwise: conf 0.25, iou 0.7, rect letterbox, fused Conv+BN, fp32 on CPU); keeps
    ultralytics' own per-stage times."""

    def __init__(self, weights: Path, imgsz: int) -> None:
        self._model = YOLO(str(weights))
        self._imgsz = imgsz
        self.speed: dict[str, list[float]] = defaultdict(list)

    def __call__(self, frame: Image) -> object:
        result: Any = self._model.predict(frame, imgsz=self._imgsz, verbose=False)
        for stage, ms in result[0].speed.items():
            self.speed[stage].append(ms)
        return result

    def stage_ms(self) -> dict[str, float]:
        return {stage: statistics.median(times) for stage, times in self.speed.items()}


def decode_ms(footage: Path, count: int) -> float:
    """Median ms per frame of `one_thread_capture` decoding (ours), on one core."""
    with one_core():
        capture = one_thread_capture(footage)
        times = []
        for _ in range(count):
            start = time.perf_counter()
            ok, _ = capture.read()
            if not ok:
                break
            times.append(time.perf_counter() - start)
        capture.release()
    return statistics.median(times) * 1000


def preprocess_ms(detector: Detector, frames: list[Image]) -> float:
    """Median ms of letterbox + tensor for one frame, on one core."""
    with one_core():
        times = []
        for frame in frames:
            start = time.perf_counter()
            detector.input_tensor([frame])
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def session_ms(models: Mapping[str, tuple[Path, np.ndarray]], rounds: int = 8, block: int = 5) -> dict[str, float]:
    """Median latency of `session.run` alone (no pre/post-processing) per model, in ms, on one core: `rounds`
    interleaved rounds of `block` timed runs per model, each block after one untimed run (so every model
    is timed with its weights in cache, as in the frame loop, and load now and then falls on all alike)."""
    sessions = {name: create_session(path, intra_op_threads=1) for name, (path, _) in models.items()}
    feeds = {name: {s.get_inputs()[0].name: models[name][1]} for name, s in sessions.items()}
    times: dict[str, list[float]] = {name: [] for name in sessions}
    with one_core():
        for _ in range(rounds):
            for name, session in sessions.items():
                session.run(None, feeds[name])
                for _ in range(block):
                    start = time.perf_counter()
                    session.run(None, feeds[name])
                    times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1000 for name, t in times.items()}


def op_profile(model: Path, tensor: np.ndarray, runs: int = 10) -> dict[str, float]:
    """ms per run by operator type (ONNX Runtime's profiler, 1 thread, one core), largest first."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="gridwatch-profile-") as tmp, one_core():
        options.profile_file_prefix = str(Path(tmp) / "ort")
        session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: tensor}
        for _ in range(WARMUP + runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    by_op: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"] / 1000 / (WARMUP + runs)
    return dict(sorted(by_op.items(), key=lambda kv: -kv[1]))


def _worker_throughput(model: str, shape: tuple[int, ...], threads: int, runs: int, concurrent: int) -> float:
    """Seconds for `concurrent` threads of this process to do `runs` runs each on one shared session, each
    thread warmed up by one untimed run of its own first (as every worker process is)."""
    torch.set_num_threads(1)
    session = create_session(Path(model), intra_op_threads=threads)
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).random(shape, np.float32)}
    ready = threading.Barrier(concurrent + 1, timeout=300)  # a failed warm-up breaks it instead of hanging

    def loop() -> None:
        session.run(None, feed)
        ready.wait()
        for _ in range(runs):
            session.run(None, feed)

    with ThreadPoolExecutor(concurrent) as pool:
        jobs = [pool.submit(loop) for _ in range(concurrent)]
        ready.wait()
        start = time.perf_counter()
        for job in jobs:
            job.result()
    return time.perf_counter() - start


def layout_throughput(
    model: Path, shape: tuple[int, ...], processes: int, threads: int, runs: int, concurrent: int = 1
) -> float:
    """Images/s of `processes` processes, each with `concurrent` runs at once on one session with `threads`
    intra-op threads, all running at once (not pinned: this one is about using every core)."""
    with ProcessPoolExecutor(processes) as pool:
        jobs = [pool.submit(_worker_throughput, str(model), shape, threads, runs, concurrent) for _ in range(processes)]
        elapsed = max(job.result() for job in jobs)
    return processes * concurrent * runs * shape[0] / elapsed


def layout_medians(
    model: Path, shape: tuple[int, ...], layouts: Mapping[str, tuple[int, int, int]], repeats: int = 3, runs: int = 12
) -> dict[str, float]:
    """Median images/s of each layout (processes, intra-op threads, concurrent runs per process) over `repeats`
    interleaved rounds, so a burst of load from elsewhere on the machine does not decide a comparison."""
    rates: dict[str, list[float]] = {name: [] for name in layouts}
    for _ in range(repeats):
        for name, (processes, threads, concurrent) in layouts.items():
            rates[name].append(layout_throughput(model, shape, processes, threads, runs, concurrent))
    return {name: statistics.median(values) for name, values in rates.items()}


def single_thread_setup() -> str:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    return (
        f"torch.set_num_threads(1), cv2.setNumThreads(1), ONNX Runtime {onnxruntime.__version__} "
        f"intra_op_num_threads=1, every timed loop pinned to one core (sched_setaffinity); torch {torch.__version__}"
    )
