"""`python -m bench.providers`: images/s at batch 1, 8 and 32 on every execution provider this onnxruntime offers.

Runs YOLO11n (random init, exported by `gridwatch models export` with a dynamic batch axis, 640x480 input)
and YOLOX-nano (fixed batch 1) on each of TensorRT, CUDA and CPU that `onnxruntime.get_available_providers()`
lists, feeding host numpy arrays as the micro-batcher does (so copies to and from the device are part of each
run). A provider that is listed but cannot start a session here (missing CUDA or TensorRT libraries, no
device) is reported with its error instead of a figure. With the CPU build of onnxruntime only CPU runs; on a
GPU machine, `make bench-gpu` swaps in onnxruntime-gpu first. Writes the `## Providers and batch sizes`
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import logging
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from ultralytics import YOLO  # type: ignore[attr-defined]

from bench.report import replace_section
from detectors.session import create_session
from gridwatch.export import export_model
from gridwatch.modelstore import resolve_model

logger = logging.getLogger("bench.providers")

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Providers and batch sizes"
BATCHES = (1, 8, 32)
PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
YOLO_INPUT = (480, 640)  # height, width: the rect input for 4:3 cameras


@dataclass(frozen=True, slots=True)
class Result:
    provider: str
    model: str
    batch: int
    images_per_s: float | None
    error: str = ""


def _gpu_name() -> str:
    if shutil.which("nvidia-smi") is None:
        return "no NVIDIA GPU (no nvidia-smi)"
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or f"nvidia-smi failed: {out.stderr.strip()[:200]}"


def images_per_s(session: onnxruntime.InferenceSession, shape: tuple[int, ...], seconds: float) -> float:
    """Images/s of `session.run` on a host array of `shape`, after 2 warm-up runs, over at least `seconds`
    and at least 3 runs."""
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).random(shape, np.float32)}
    for _ in range(2):
        session.run(None, feed)
    runs, start = 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - start < seconds:
        session.run(None, feed)
        runs += 1
    return runs * shape[0] / (time.perf_counter() - start)


def measure(provider: str, model: str, path: Path, input_hw: tuple[int, int], batches: Sequence[int]) -> list[Result]:
    """One session on `provider` (no silent CPU fallback: a session that lands elsewhere is an error)."""
    try:
        session = create_session(path, [provider], intra_op_threads=1)
        if session.get_providers()[0] != provider:
            raise RuntimeError(f"session runs on {session.get_providers()[0]}, not {provider}")
    except Exception as exc:  # report boundary: any failure to start is the finding for this provider
        logger.exception("%s cannot run %s (%s)", provider, model, path.name)
        return [Result(provider, model, b, None, str(exc).splitlines()[0][:160]) for b in batches]
    seconds = 1.0 if provider == "CPUExecutionProvider" else 3.0
    results = []
    for batch in batches:
        rate = images_per_s(session, (batch, 3, *input_hw), seconds)
        logger.info("%s %s batch %d: %.1f images/s", provider, model, batch, rate)
        results.append(Result(provider, model, batch, rate))
    return results


def section(results: Sequence[Result], available: Sequence[str]) -> str:
    batches = sorted({r.batch for r in results})
    lines = ["| provider | model | input | " + " | ".join(f"batch {b}" for b in batches) + " |"]
    lines.append("|---|---|---|" + "---|" * len(batches))
    errors: dict[str, None] = {}
    for provider in dict.fromkeys(r.provider for r in results):
        for model in dict.fromkeys(r.model for r in results if r.provider == provider):
            mine = {r.batch: r for r in results if r.provider == provider and r.model == model}
            size = "640x480" if model == "yolo11n" else "416x416"
            cells = []
            for b in batches:
                r = mine.get(b)
                cells.append("-" if r is None else (f"{r.images_per_s:.1f}" if r.images_per_s else "failed"))
                if r is not None and r.error:
                    errors[f"{provider}: {r.error}"] = None
            lines.append(f"| {provider} | {model} | {size} | " + " | ".join(cells) + " |")
    failed = "\n".join(f"- {e}" for e in errors) or "- none"
    return f"""{HEADING}

How to run: `make bench` runs it with the onnxruntime installed (CPU only here); on a GPU machine
`make bench-gpu` installs onnxruntime-gpu (CUDA and TensorRT providers, CUDA 13 and cuDNN 9 from PyPI) and
runs `python -m bench.providers`. Images/s of `session.run` alone on host numpy arrays (copies to and from
the device included), one intra-op thread on CPU, at least 1 s (CPU) or 3 s (GPU) per figure after 2
warm-up runs. YOLO11n: random init, dynamic batch axis; YOLOX-nano's graph has a fixed batch of 1.

Machine: {platform.processor() or platform.machine()}; GPU: {_gpu_name()}; onnxruntime {onnxruntime.__version__},
providers offered: {", ".join(available)}.

{chr(10).join(lines)}

Providers that could not run here:
{failed}
"""


def run(args: argparse.Namespace, work: Path) -> str:
    available = onnxruntime.get_available_providers()
    logger.info("onnxruntime %s offers %s", onnxruntime.__version__, available)
    if hasattr(onnxruntime, "preload_dlls") and "CUDAExecutionProvider" in available:
        onnxruntime.preload_dlls()  # CUDA and cuDNN from the nvidia-* wheels, where installed
    torch.manual_seed(0)
    pt = work / "yolo11n.pt"
    YOLO("yolo11n.yaml").save(str(pt))
    _, yolo = export_model(pt, work, imgsz=640)
    _, yolox = resolve_model(ROOT / "models", "yolox-nano")  # `make models` fetched it; sha256 checked
    results: list[Result] = []
    for provider in [p for p in PROVIDERS if p in available]:
        results += measure(provider, "yolo11n", yolo, YOLO_INPUT, args.batches)
        results += measure(provider, "yolox-nano", yolox, (416, 416), [1])
    text = section(results, available)
    replace_section(ROOT / "docs" / "benchmarks.md", HEADING, text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.providers", description=__doc__)
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="gridwatch-providers-") as tmp:
        print(run(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
