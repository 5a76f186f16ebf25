"""`python -m bench`: naive ultralytics vs our pipeline (fp32, int8), CPU peak, threads vs processes.

Writes the `## Detectors` section of docs/benchmarks.md (other sections are left as they are).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ultralytics import YOLO  # type: ignore[attr-defined]

from bench.flops import model_gflops
from bench.peak import fma_peak_gflops
from bench.report import write_section
from bench.runs import layout_throughput, naive_fps, ours_fps, read_frames, session_ms, single_thread_setup
from detectors.detector import Detector
from detectors.manifest import ModelManifest, load_manifest
from detectors.session import create_session
from gridwatch.export import export_model
from gridwatch.quantize import quantize_onnx

logger = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Row:
    path: str
    model: str
    input: str
    fps: float
    ratio: float | None
    infer_ms: float | None
    gflops: float | None
    peak_share: float | None


def _mirror(var: str, sub: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else ROOT.parent / "shared" / sub


def _ours(
    manifest: ModelManifest,
    onnx: Path,
    label: str,
    footage: Path,
    args: argparse.Namespace,
    flops: float,
    peak: float,
    naive: float | None,
) -> Row:
    detector = Detector(create_session(onnx, intra_op_threads=1), manifest)
    fps = ours_fps(detector, footage, args.frames)
    width, height = manifest.input_size
    tensor = detector.input_tensor(read_frames(footage, 1))
    infer = session_ms(onnx, tensor)
    gflops = flops / (infer / 1000)
    return Row(
        label, manifest.name, f"{width}x{height}", fps, fps / naive if naive else None, infer, gflops, gflops / peak
    )


def run(args: argparse.Namespace, work: Path) -> str:
    footage = _mirror("GRIDWATCH_MEDIA_MIRROR", "media") / "vtest_h264.mp4"
    threads = single_thread_setup()
    peak, how = fma_peak_gflops()
    logger.info("fp32 peak %.1f GFLOP/s (%s)", peak, how)
    calibration = read_frames(footage, 200)[::12][:16]

    # YOLO11n, random init (speed does not depend on the weights), exported with a dynamic batch axis
    torch.manual_seed(0)
    pt = work / "yolo11n.pt"
    YOLO("yolo11n.yaml").save(str(pt))
    exported, onnx = export_model(pt, work)
    height, width = calibration[0].shape[:2]
    scale = args.imgsz / max(width, height)
    size = (args.imgsz, round(height * scale / 32) * 32)  # the rect input ultralytics picks for a .pt
    yolo = exported.model_copy(update={"input_size": size})
    yolo_int8 = work / "yolo11n-int8.onnx"
    quantize_onnx(yolo, onnx, yolo_int8, calibration)
    yolo_flops = model_gflops(onnx, (1, 3, size[1], size[0]))

    naive = naive_fps(pt, footage, args.frames, args.imgsz)
    rows = [
        Row("naive: cv2.VideoCapture + YOLO.predict", "yolo11n", f"{size[0]}x{size[1]}", naive, 1.0, None, None, None)
    ]
    rows.append(_ours(yolo, onnx, "ours fp32", footage, args, yolo_flops, peak, naive))
    rows.append(_ours(yolo, yolo_int8, "ours int8", footage, args, yolo_flops, peak, naive))

    yolox_manifest = load_manifest(ROOT / "models" / "yolox-nano.yaml")
    yolox = _mirror("GRIDWATCH_MODEL_MIRROR", "models") / yolox_manifest.file
    yolox_int8 = work / "yolox_nano-int8.onnx"
    quantize_onnx(yolox_manifest, yolox, yolox_int8, calibration)
    yolox_flops = model_gflops(yolox, (1, 3, 416, 416))
    rows.append(_ours(yolox_manifest, yolox, "ours fp32", footage, args, yolox_flops, peak, None))
    rows.append(_ours(yolox_manifest, yolox_int8, "ours int8", footage, args, yolox_flops, peak, None))

    batch = {b: layout_throughput(onnx, (b, 3, size[1], size[0]), 1, 1, max(4, 16 // b)) for b in (1, 4)}
    layouts = {
        "1 process x 1 thread": layout_throughput(onnx, (1, 3, size[1], size[0]), 1, 1, 12),
        "1 process x 2 threads": layout_throughput(onnx, (1, 3, size[1], size[0]), 1, 2, 12),
        "2 processes x 1 thread": layout_throughput(onnx, (1, 3, size[1], size[0]), 2, 1, 12),
    }
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {threads}"
    return write_section(
        ROOT / "docs" / "benchmarks.md", rows, peak, how, machine, yolo_flops, yolox_flops, batch, layouts, args.frames
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--frames", type=int, default=100, help="frames of the shared footage per path")
    parser.add_argument("--imgsz", type=int, default=640)
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(name)s: %(message)s")
    np.random.seed(0)
    with tempfile.TemporaryDirectory(prefix="gridwatch-bench-") as tmp:
        print(run(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
