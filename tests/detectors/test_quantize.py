from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from core.types import Detections
from detectors.detector import Detector
from detectors.manifest import ModelManifest, load_manifest
from detectors.session import create_session
from gridwatch.cli import main
from gridwatch.modelstore import resolve_model, sha256_file
from gridwatch.quantize import agreement, float_nodes, match_count, read_frames

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


def dets(boxes: list[list[float]], classes: list[int]) -> Detections:
    return Detections(
        xyxy=np.asarray(boxes, np.float32).reshape(-1, 4),
        confidence=np.ones(len(classes), np.float32),
        class_id=np.asarray(classes, np.int64),
    )


@pytest.mark.parametrize(
    ("reference", "candidate", "matched"),
    [
        (dets([[0, 0, 10, 10]], [0]), dets([[1, 0, 11, 10]], [0]), 1),  # IoU 0.82
        (dets([[0, 0, 10, 10]], [0]), dets([[5, 0, 15, 10]], [0]), 0),  # IoU 0.33
        (dets([[0, 0, 10, 10]], [0]), dets([[0, 0, 10, 10]], [1]), 0),  # other class
        (dets([[0, 0, 10, 10]], [0]), dets([[0, 0, 10, 10], [0, 0, 10, 10]], [0, 0]), 1),  # one-to-one
        (dets([], []), dets([[0, 0, 10, 10]], [0]), 0),
    ],
)
def test_match_count(reference: Detections, candidate: Detections, matched: int) -> None:
    assert match_count(reference, candidate) == matched


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory, yolox_path: Path, footage_path: Path) -> tuple[Path, list[str]]:
    """`gridwatch models quantize yolox-nano` on 16 frames, run through the CLI; (models dir, output lines)."""
    models = tmp_path_factory.mktemp("models")
    shutil.copyfile(MODELS_DIR / "yolox-nano.yaml", models / "yolox-nano.yaml")
    (models / yolox_path.name).symlink_to(yolox_path)
    argv = ["models", "quantize", "yolox-nano", "--calibration", str(footage_path), "--frames", "16"]
    capture = tmp_path_factory.mktemp("out") / "stdout.txt"
    with capture.open("w") as out, pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdout", out)
        code = main([*argv, "--models-dir", str(models)])
    assert code == 0
    return models, capture.read_text().splitlines()


def test_quantize_writes_weights_and_a_checked_manifest(quantized: tuple[Path, list[str]]) -> None:
    models, lines = quantized
    manifest, weights = resolve_model(models, "yolox-nano-int8")

    assert weights.name == "yolox_nano-int8.onnx" and manifest.sha256 == sha256_file(weights)
    assert manifest.family == "yolox" and manifest.input_size == (416, 416) and manifest.download_url is None
    assert lines[0].startswith("yolox-nano-int8: ")
    assert "agreement of yolox-nano-int8 with yolox-nano on vtest_h264.mp4: 50 frames" in lines[1]


def test_int8_agrees_with_fp32_on_the_footage(
    quantized: tuple[Path, list[str]], yolox: Detector, yolox_manifest: ModelManifest, footage_path: Path
) -> None:
    models, _ = quantized
    manifest, weights = resolve_model(models, "yolox-nano-int8")
    int8 = Detector(create_session(weights), manifest)
    frames = read_frames(footage_path, 30, step=23)

    result = agreement(yolox, int8, frames)

    assert result.reference > 100
    assert result.match_rate >= 0.8  # measured 85 % on 40 frames with 16 calibration frames
    assert result.extra <= 0.1 * result.reference


def test_only_an_ultralytics_dfl_stays_in_fp32(
    yolo11n_export: tuple[Path, Path], yolox_path: Path, yolox_manifest: ModelManifest
) -> None:
    models_dir = yolo11n_export[1]
    manifest = load_manifest(models_dir / "yolo11n.yaml")

    kept = float_nodes(manifest, models_dir / manifest.file)

    assert kept and all("/dfl/" in name for name in kept)
    ops = {n.name: n.op_type for n in onnx.load(str(models_dir / manifest.file)).graph.node}
    assert {"Softmax", "MatMul"} <= {ops[name] for name in kept} and "Conv" not in {ops[name] for name in kept}
    assert float_nodes(yolox_manifest, yolox_path) == []
