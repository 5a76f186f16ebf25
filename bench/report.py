"""The `## Detectors` section of docs/benchmarks.md, written in place (other sections are kept).

Every figure in the section comes from the run that writes it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.isolated import ROUNDS

logger = logging.getLogger(__name__)

HEADING = "## Detectors"
TARGETS = "Targets: >= 1.6x the naive path in fp32, >= 3x in int8, >= 70 % of fp32 peak for YOLO11n at batch 1."
SILU = "QuickGelu"  # ONNX Runtime fuses x * sigmoid(x) (SiLU) into its QuickGelu kernel


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


@dataclass(frozen=True, slots=True)
class Measured:
    """Everything one `python -m bench` run measured."""

    rows: Sequence[Row]
    peak: float
    peak_how: str
    machine: str
    frames: int
    yolo_flops: float
    yolox_flops: float
    plain_export_ms: float
    naive_stages: Mapping[str, float]
    decode_ms: float
    preprocess_ms: float
    profile: Mapping[str, float]
    batch: Mapping[int, float]
    layouts: Mapping[str, float]

    def row(self, path: str, model: str = "yolo11n") -> Row:
        return next(r for r in self.rows if r.model == model and r.path.startswith(path))


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| path | model | input | frames/s | x naive | inference ms | GFLOP/s | share of fp32 peak |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.path} | {r.model} | {r.input} | {r.fps:.1f} | {_num(r.ratio, '.2f')} | "
            f"{_num(r.infer_ms, '.1f')} | {_num(r.gflops, '.1f')} | {_num(r.peak_share, '.0%')} |"
        )
    return "\n".join(lines)


def verdicts(m: Measured) -> str:
    """Each YOLO11n target, met or missed, with the measured value and the margin."""
    fp32, int8 = m.row("ours fp32"), m.row("ours int8")
    assert fp32.ratio is not None and int8.ratio is not None and fp32.peak_share is not None
    checks = [
        ("fp32 >= 1.6x the naive path as a user runs it", fp32.ratio, 1.6, f"{fp32.ratio:.2f}x"),
        ("int8 >= 3x the naive path as a user runs it", int8.ratio, 3.0, f"{int8.ratio:.2f}x"),
        ("YOLO11n fp32 >= 70 % of peak", fp32.peak_share, 0.70, f"{fp32.peak_share:.1%}"),
    ]
    lines = []
    for name, value, bar, shown in checks:
        verdict = "met" if value >= bar else f"MISSED by {(bar - value) / bar:.1%} of the bar"
        lines.append(f"- {name}: {verdict} ({shown})")
    tuned = m.row("naive, glibc").fps

    def against(ratio: float, bar: float) -> str:
        return f"{ratio:.2f}x ({'at or above' if ratio >= bar else 'below'} {bar:g}x)"

    lines.append(
        "- against the naive path with glibc's malloc tuned (a setting its users would have to know to make): "
        f"fp32 {against(fp32.fps / tuned, 1.6)}, int8 {against(int8.fps / tuned, 3.0)}"
    )
    return "\n".join(lines)


def where_time_goes(m: Measured) -> str:
    """Per-frame costs of both paths and the fp32 operator profile, from this run's measurements."""
    naive, fp32, int8 = m.row("naive"), m.row("ours fp32"), m.row("ours int8")
    assert fp32.infer_ms is not None and int8.infer_ms is not None
    naive_ms, fp32_ms, int8_ms = 1000 / naive.fps, 1000 / fp32.fps, 1000 / int8.fps
    stages = m.naive_stages
    torch_ms = stages.get("inference", 0.0)
    naive_rest = naive_ms - sum(stages.values())
    fixed = m.decode_ms + m.preprocess_ms
    total = sum(m.profile.values())
    conv = m.profile.get("Conv", 0.0)
    silu = m.profile.get(SILU, 0.0)
    top = ", ".join(f"{op} {ms:.1f} ms" for op, ms in list(m.profile.items())[:6])
    conv_share = m.yolo_flops / (conv / 1000) / m.peak if conv else 0.0
    return f"""Where the time goes (medians of this run):
- naive, {naive_ms:.1f} ms a frame: ultralytics' own stage times are preprocess {stages.get("preprocess", 0):.1f} ms,
  torch inference {torch_ms:.1f} ms, postprocess {stages.get("postprocess", 0):.1f} ms; decoding and the rest
  about {max(naive_rest, 0.0):.1f} ms (the frame time is a mean over all frames, the stage times are medians).
- ours fp32, {fp32_ms:.1f} ms a frame: decode {m.decode_ms:.1f} ms (one FFmpeg thread), letterbox + tensor
  {m.preprocess_ms:.1f} ms, `session.run` {fp32.infer_ms:.1f} ms (each a median measured apart); the frame
  time less these, for output decode, NMS and Python: {fp32_ms - fixed - fp32.infer_ms:.1f} ms.
- ours int8, {int8_ms:.1f} ms a frame, of which `session.run` {int8.infer_ms:.1f} ms.
- the CPU rewrites of our export (DFL softmax on the last axis, split convs divided; `gridwatch/export.py`):
  ultralytics' plain export takes {m.plain_export_ms:.1f} ms in `session.run`, ours {fp32.infer_ms:.1f} ms.
- ONNX Runtime's profiler on our fp32 YOLO11n ({total:.1f} ms of kernels a run, profiling on): {top}.
  The convolutions alone run at {conv_share:.0%} of the FMA peak; SiLU ({SILU}, not fusable into ONNX
  Runtime's convolutions) takes {silu / total:.0%} of the kernel time and concatenations, layout reorders and the
  head the rest, which is the gap between the whole model's share of peak and the convolutions'.
- The int8 "share of fp32 peak" counts the same FLOPs at int8 speed (VNNI), so it can exceed 100 %."""


def section(m: Measured) -> str:
    batch_line = ", ".join(f"batch {b}: {v:.1f} images/s" for b, v in m.batch.items())
    layout_line = ", ".join(f"{k}: {v:.1f} images/s" for k, v in m.layouts.items())
    return f"""{HEADING}

How to run: `make bench` (or `.venv/bin/python -m bench --frames {m.frames}`); needs the `export` extra
(ultralytics, torch, onnx, onnxslim) and the shared footage and models. Each path decodes the same {m.frames}
frames of `vtest_h264.mp4` (768x576) after a warm-up of 3 frames. Each path runs in a fresh process of its
own, as a user would run it (ours never imports torch); all are pinned to the same core and timed in {ROUNDS}
interleaved rounds (each path 1/{ROUNDS} of the frames in turn, `bench/isolated.py`), so other load on the
machine falls on all of them alike.

Machine: {m.machine}.
fp32 peak: {m.peak:.1f} GFLOP/s per core, measured with {m.peak_how}.
Model FLOPs are counted from the ONNX graph (2 x the multiply-accumulates of Conv, MatMul and Gemm after
onnx shape inference): YOLO11n {m.yolo_flops:.2f} GFLOPs at the benchmark input, YOLOX-nano {m.yolox_flops:.2f}
GFLOPs at 416x416. GFLOP/s = FLOPs / median `session.run` latency (inference alone, batch 1, 1 thread, 40
runs per model on one core, in 8 interleaved rounds of 5).

The naive path is what a user writes: `cv2.VideoCapture(path)` (FFmpeg's default decoder threads) and
`YOLO("yolo11n.pt").predict(frame, imgsz=640, verbose=False)` per frame with ultralytics' defaults (fused
Conv+BN, fp32, rect letterbox, conf 0.25, iou 0.7) and `torch.set_num_threads(1)`. In a fresh process glibc
maps and unmaps torch's large per-frame activation buffers on every frame; the row "naive, glibc malloc tuned"
is the same path with `MALLOC_MMAP_THRESHOLD_=1 GiB` and `MALLOC_TRIM_THRESHOLD_=2 GiB`, which keeps them in
the heap (timing the naive path in one process after an ultralytics export gives about the same effect,
because the export grows glibc's dynamic mmap threshold). Ours decodes with
`cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])` and runs `Detector.detect`
(letterbox, ONNX Runtime, output decode, class-aware NMS at conf 0.35, iou 0.45) on the export of the same
random-init `yolo11n.yaml` (speed does not depend on the weights) from `gridwatch models export` (dynamic
axes, CPU rewrites), at the same input size: the 640 rect letterbox ultralytics picks for 4:3 frames.
int8 = ONNX Runtime static QDQ (`gridwatch.quantize`), per-channel int8 weights, uint8 activations, the
DFL and box decoding kept in fp32, the first conv as SpaceToDepth on the uint8 input + a 2x2 conv, one
scale shared by each Concat/Add's inputs and output, calibrated on 16 frames of the footage; the int8 graphs
take the uint8 pixels (the input quantised at one pixel step, exact), so their preprocessing makes no float
tensor. YOLOX-nano's int8 keeps the leading convs in fp32 that `gridwatch models quantize` chooses for it (the
fewest with which int8 matches 97 % of the fp32 boxes on other frames; then its input stays float), YOLO11n's
(random weights, so agreement means nothing) has every conv in int8.

{table(m.rows)}

Batching on CPU (YOLO11n, 1 thread, session.run alone): {batch_line}.
Threads vs processes (YOLO11n, all running at once, not pinned; median of 3 interleaved rounds): {layout_line}.

GPU: images/s at batch 1, 8 and 32 per ONNX Runtime provider are in `## Providers and batch sizes` below
(`make bench-gpu` on a GPU machine); no GPU machine was lent to this work, so it holds CPU figures only.

{TARGETS}

{verdicts(m)}

{where_time_goes(m)}
"""


def replace_section(path: Path, heading: str, text: str) -> None:
    """Replace (or append) the section of `path` that starts with the line `heading`; other sections stay."""
    old = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _: text + "\n", old, count=1) if pattern.search(old) else old.rstrip() + "\n\n" + text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")
    logger.info("wrote %s", path)


def write_section(path: Path, measured: Measured) -> str:
    """Replace (or append) the `## Detectors` section of `path`; returns the section."""
    text = section(measured)
    replace_section(path, HEADING, text)
    return text
