"""Frame loops timed in separate processes, interleaved round by round on one core.

Each path runs in a process of its own, as a user runs it: the naive path in a process with torch and
ultralytics, ours in one that has never imported either (gridwatch's runtime never does). Sharing one process
skews both ways: the torch path's speed depends on the heap that earlier work in the process left behind
(the ultralytics export made it 10-15 % faster), and ours then runs beside torch's heap and threads. The
parent pins every worker to the same core and hands out the rounds (path A `n` frames, path B `n` frames,
..., `rounds` times over), so load that other processes put on the machine falls on all paths alike.
A path may carry environment variables for its process (the naive path with glibc's malloc tuned).
This module imports neither torch nor ultralytics; a naive worker imports them when it starts.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from core.types import Image

logger = logging.getLogger(__name__)

Stages = Callable[[], dict[str, float]]

WARMUP = 3
ROUNDS = 10
START_TIMEOUT_S = 300.0
ROUND_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class PathSpec:
    """One timed path: `naive` (ultralytics' `YOLO(model).predict` at `imgsz`, FFmpeg's default decoder
    threads) or `ours` (`Detector.detect` with `model` on ONNX Runtime, one FFmpeg decoder thread)."""

    kind: Literal["naive", "ours"]
    model: Path
    manifest: Path | None = None
    imgsz: int = 640
    env: tuple[tuple[str, str], ...] = ()  # set in the worker's environment before it starts


@dataclass(frozen=True, slots=True)
class PathTiming:
    """Frames/s over all timed frames, and (naive only) ultralytics' own median stage times in ms."""

    fps: float
    stages: Mapping[str, float]


def _build(spec: PathSpec) -> tuple[Callable[[Image], object], Callable[[Path], cv2.VideoCapture], Stages]:
    """The path's per-frame call, how it opens the footage, and what it reports at the end."""
    cv2.setNumThreads(1)
    if spec.kind == "naive":
        import torch

        from bench.runs import NaivePredict

        torch.set_num_threads(1)
        naive = NaivePredict(spec.model, spec.imgsz)
        return naive, lambda footage: cv2.VideoCapture(str(footage)), naive.stage_ms
    from detectors.detector import Detector
    from detectors.manifest import load_manifest
    from detectors.session import create_session

    if spec.manifest is None:
        raise ValueError(f"{spec.model}: our path needs its manifest")
    detector = Detector(create_session(spec.model, intra_op_threads=1), load_manifest(spec.manifest))

    def one_thread(footage: Path) -> cv2.VideoCapture:
        return cv2.VideoCapture(str(footage), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])

    return detector.detect, one_thread, dict


def _first_frame(footage: Path) -> Image:
    capture = cv2.VideoCapture(str(footage))
    ok, frame = capture.read()
    capture.release()
    if not ok:
        raise RuntimeError(f"{footage}: no frame")
    return np.asarray(frame, dtype=np.uint8)


def _worker(spec: PathSpec, footage: Path, core: int, conn: Connection) -> None:
    """Build the path, warm it up, then time `n` frames per request until told to stop (None)."""
    os.sched_setaffinity(0, {core})
    process, open_capture, stages = _build(spec)
    first = _first_frame(footage)
    for _ in range(WARMUP):
        process(first)
    capture = open_capture(footage)
    conn.send("ready")
    while (frames := conn.recv()) is not None:
        done, start = 0, time.perf_counter()
        while done < frames:
            ok, frame = capture.read()
            if not ok:
                break
            process(np.asarray(frame, dtype=np.uint8))
            done += 1
        conn.send((done, time.perf_counter() - start))
    conn.send(stages())
    capture.release()


def _receive(conn: Connection, name: str, timeout_s: float) -> Any:
    """The worker's next message; RuntimeError when it died (end-of-file) or said nothing for `timeout_s`."""
    try:
        if conn.poll(timeout_s):
            return conn.recv()
    except EOFError:
        pass
    raise RuntimeError(f"benchmark worker {name} died or hung (no answer within {timeout_s:.0f} s)")


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in os.environ for the duration (a spawned worker inherits the environment at its start)."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def interleaved_fps(footage: Path, count: int, specs: Mapping[str, PathSpec]) -> dict[str, PathTiming]:
    """Frames/s of decode + process per path over the first `count` frames of `footage`, each path in its
    own process, all pinned to one core, timed in ROUNDS interleaved rounds after WARMUP frames."""
    context = multiprocessing.get_context("spawn")
    core = max(os.sched_getaffinity(0))
    workers: dict[str, tuple[multiprocessing.process.BaseProcess, Connection]] = {}
    try:
        for name, spec in specs.items():
            parent, child = context.Pipe()
            proc = context.Process(target=_worker, args=(spec, footage, core, child), name=f"bench-{name}")
            with _environment(dict(spec.env)):
                proc.start()
            child.close()  # the worker holds its end: a dead worker then reads as end-of-file here
            workers[name] = (proc, parent)
        for name, (_, conn) in workers.items():
            if _receive(conn, name, START_TIMEOUT_S) != "ready":
                raise RuntimeError(f"benchmark worker {name} did not start")
        logger.info("timing %s in separate processes on core %d, %d frames each", list(specs), core, count)
        frames = dict.fromkeys(specs, 0)
        seconds = dict.fromkeys(specs, 0.0)
        per_round = -(-count // ROUNDS)
        for _ in range(ROUNDS):
            for name, (_, conn) in workers.items():
                conn.send(min(per_round, count - frames[name]))
                done, elapsed = _receive(conn, name, ROUND_TIMEOUT_S)
                frames[name] += done
                seconds[name] += elapsed
        timings = {}
        for name, (worker, conn) in workers.items():
            conn.send(None)
            timings[name] = PathTiming(frames[name] / seconds[name], _receive(conn, name, ROUND_TIMEOUT_S))
            worker.join(30)
        return timings
    finally:
        for worker, _ in workers.values():
            if worker.is_alive():
                worker.terminate()
