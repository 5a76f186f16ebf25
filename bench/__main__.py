"""`python -m bench`: naive ultralytics vs our pipeline (fp32, int8), CPU peak, threads vs processes.

Writes the `## Detectors` section of docs/benchmarks.md (other sections are left as they are). The other
sections have a module each, run by `make bench`: `bench.visits`, `bench.providers`, `bench.rules`,
`bench.intake`, `bench.video_quality`, `bench.grids`, `bench.gating` (change gating across visits) and
`bench.scheduler`.
`python -m bench scheduler [options]` runs the patrol scheduler's simulation instead (`bench/scheduler.py`).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from ultralytics import YOLO  # type: ignore[attr-defined]

from bench import scheduler
from bench.flops import model_gflops
from bench.isolated import PathSpec, interleaved_fps
from bench.peak import fma_peak_gflops
from bench.report import Measured, Row, write_section
from bench.runs import (
    decode_ms,
    layout_medians,
    layout_throughput,
    op_profile,
    preprocess_ms,
    read_frames,
    session_ms,
    single_thread_setup,
)
from detectors.detector import Detector
from detectors.manifest import ModelManifest, dump_manifest, load_manifest
from detectors.session import create_session
from gridwatch.export import export_model, export_onnx
from gridwatch.quantize import choose_fp32_convs, int8_manifest, quantize_onnx
from tests.support.assets import media_mirror, model_mirror

logger = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[1]
NAIVE = "naive: cv2.VideoCapture + YOLO.predict"
NAIVE_TUNED = "naive, glibc malloc tuned"
# glibc then keeps torch's per-frame activation buffers in its heap instead of mapping and unmapping them
MALLOC_TUNED = (("MALLOC_MMAP_THRESHOLD_", str(1 << 30)), ("MALLOC_TRIM_THRESHOLD_", str(1 << 31)))


def _int8(
    manifest: ModelManifest, fp32: Path, out: Path, calibration: list[np.ndarray], fp32_convs: int = 0
) -> ModelManifest:
    """Quantise `fp32` into `out`; the manifest to run it with (uint8 input where the quantiser made one)."""
    return int8_manifest(manifest, quantize_onnx(manifest, fp32, out, calibration, fp32_convs=fp32_convs))


def _write(manifest: ModelManifest, path: Path) -> Path:
    path.write_text(dump_manifest(manifest, "written by the benchmark"), encoding="utf-8")
    return path


def _yolo11n(work: Path, calibration: list[np.ndarray], imgsz: int) -> tuple[Path, Path, ModelManifest, Path, Path]:
    """Random-init YOLO11n (speed does not depend on the weights): .pt, ultralytics' plain ONNX export,
    our manifest at the rect input size, our rewritten export and its int8 quantisation."""
    torch.manual_seed(0)
    pt = work / "yolo11n.pt"
    YOLO("yolo11n.yaml").save(str(pt))
    plain, _, _ = export_onnx(pt, work / "plain", imgsz)
    exported, onnx = export_model(pt, work, imgsz=imgsz)
    height, width = calibration[0].shape[:2]
    scale = imgsz / max(width, height)
    size = (imgsz, round(height * scale / 32) * 32)  # the rect input ultralytics picks for a .pt
    manifest = exported.model_copy(update={"input_size": size})
    return pt, plain, manifest, onnx, work / "yolo11n-int8.onnx"


def run(args: argparse.Namespace, work: Path) -> str:
    footage = media_mirror() / "vtest_h264.mp4"
    threads = single_thread_setup()
    peak, how = fma_peak_gflops()
    logger.info("fp32 peak %.1f GFLOP/s (%s)", peak, how)
    calibration = read_frames(footage, 200)[::12][:16]
    pt, plain, yolo, onnx, yolo_int8 = _yolo11n(work, calibration, args.imgsz)
    width, height = yolo.input_size
    yolox_manifest = load_manifest(ROOT / "models" / "yolox-nano.yaml")
    yolox = model_mirror() / yolox_manifest.file
    yolox_int8 = work / "yolox_nano-int8.onnx"
    # YOLOX-nano's int8 keeps the leading fp32 convs `gridwatch models quantize` chooses for it (by agreement on
    # other frames); YOLO11n's weights are random, so agreement means nothing there and all its convs are int8
    yolox_convs, _ = choose_fp32_convs(yolox_manifest, yolox, calibration, read_frames(footage, 200)[7::6][:30])
    manifests = {
        ("ours fp32", "yolo11n"): (onnx, yolo),
        ("ours int8", "yolo11n"): (yolo_int8, _int8(yolo, onnx, yolo_int8, calibration)),
        ("ours fp32", "yolox-nano"): (yolox, yolox_manifest),
        ("ours int8", "yolox-nano"): (yolox_int8, _int8(yolox_manifest, yolox, yolox_int8, calibration, yolox_convs)),
    }
    ours = {key: Detector(create_session(model), manifest) for key, (model, manifest) in manifests.items()}
    specs = {NAIVE: PathSpec("naive", pt, imgsz=args.imgsz)}
    specs[NAIVE_TUNED] = PathSpec("naive", pt, imgsz=args.imgsz, env=MALLOC_TUNED)
    for (p, m), (model, manifest) in manifests.items():
        specs[f"{p} {m}"] = PathSpec("ours", model, _write(manifest, work / f"{p.split()[1]}-{m}.yaml"))
    timings = interleaved_fps(footage, args.frames, specs)
    fps = {name: t.fps for name, t in timings.items()}

    frame = read_frames(footage, 1)
    tensors = {key: d.input_tensor(frame) for key, d in ours.items()}
    files = {("ours fp32", "yolo11n"): onnx, ("ours int8", "yolo11n"): yolo_int8}
    files |= {("ours fp32", "yolox-nano"): yolox, ("ours int8", "yolox-nano"): yolox_int8}
    timed = {f"{p} {m}": (files[(p, m)], tensors[(p, m)]) for p, m in ours}
    timed["plain export"] = (plain, tensors[("ours fp32", "yolo11n")])
    infer = session_ms(timed)
    yolo_flops = model_gflops(onnx, (1, 3, height, width))
    yolox_flops = model_gflops(yolox, (1, 3, 416, 416))

    naive_fps = fps[NAIVE]
    rows = [Row(NAIVE, "yolo11n", f"{width}x{height}", naive_fps, 1.0, None, None, None)]
    tuned = fps[NAIVE_TUNED]
    rows.append(Row(NAIVE_TUNED, "yolo11n", f"{width}x{height}", tuned, tuned / naive_fps, None, None, None))
    for (p, m), detector in ours.items():
        w, h = detector.manifest.input_size
        ms = infer[f"{p} {m}"]
        gflops = (yolo_flops if m == "yolo11n" else yolox_flops) / (ms / 1000)
        ratio = fps[f"{p} {m}"] / naive_fps if m == "yolo11n" else None
        label = f"{p}, first {yolox_convs} convs fp32" if (p, m) == ("ours int8", "yolox-nano") and yolox_convs else p
        rows.append(Row(label, m, f"{w}x{h}", fps[f"{p} {m}"], ratio, ms, gflops, gflops / peak))

    fp32 = ours[("ours fp32", "yolo11n")]
    shape = (1, 3, height, width)
    measured = Measured(
        rows=rows,
        peak=peak,
        peak_how=how,
        machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {threads}",
        frames=args.frames,
        yolo_flops=yolo_flops,
        yolox_flops=yolox_flops,
        plain_export_ms=infer["plain export"],
        naive_stages=timings[NAIVE].stages,
        decode_ms=decode_ms(footage, args.frames),
        preprocess_ms=preprocess_ms(fp32, read_frames(footage, 30)),
        profile=op_profile(onnx, tensors[("ours fp32", "yolo11n")]),
        batch={b: layout_throughput(onnx, (b, *shape[1:]), 1, 1, max(4, 16 // b)) for b in (1, 4)},
        layouts=layout_medians(
            onnx,
            shape,
            {
                "1 process x 1 thread": (1, 1, 1),
                "1 process x 2 threads": (1, 2, 1),
                "2 processes x 1 thread": (2, 1, 1),
                "1 process, 2 concurrent runs x 1 thread (inference_workers: 2, the default on 2 cores)": (1, 1, 2),
            },
        ),
    )
    return write_section(ROOT / "docs" / "benchmarks.md", measured)


# benchmarks chosen by name: `python -m bench NAME [their options]`
SUITES: dict[str, Callable[[Sequence[str]], int]] = {"scheduler": scheduler.main}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] in SUITES:
        return SUITES[sys.argv[1]](sys.argv[2:])
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
