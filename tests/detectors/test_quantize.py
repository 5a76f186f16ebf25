from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import numpy_helper

from core.errors import ModelError
from core.types import Detections
from detectors.detector import FAMILIES, Detector
from detectors.manifest import ModelManifest, load_manifest
from detectors.session import create_session
from gridwatch.agreement import agreement, match_count, read_frames
from gridwatch.cli import main
from gridwatch.modelstore import resolve_model, sha256_file
from gridwatch.quantize import float_nodes, leading_nodes, quantize_onnx, stem_space_to_depth

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

    tries = [line for line in lines if line.startswith("first ")]

    assert weights.name == "yolox_nano-int8.onnx" and manifest.sha256 == sha256_file(weights)
    assert manifest.family == "yolox" and manifest.input_size == (416, 416) and manifest.download_url is None
    # all-int8 YOLOX-nano loses too many boxes, so the automatic choice keeps its first convs in fp32
    assert tries[0].startswith("first 0 convs in fp32: 30 frames") and len(tries) >= 2
    assert f"the first {len(tries) - 1} convs kept in fp32" in manifest.description
    assert manifest.input_dtype == "float32"  # its first conv is fp32, so the input stays float
    assert lines[len(tries)].startswith("yolox-nano-int8: ")
    assert "agreement of yolox-nano-int8 with yolox-nano on vtest_h264.mp4: 50 frames" in lines[len(tries) + 1]


def test_int8_agrees_with_fp32_on_the_footage(
    quantized: tuple[Path, list[str]], yolox: Detector, yolox_manifest: ModelManifest, footage_path: Path
) -> None:
    models, _ = quantized
    manifest, weights = resolve_model(models, "yolox-nano-int8")
    int8 = Detector(create_session(weights), manifest)
    frames = read_frames(footage_path, 30, step=29)  # others than the ones the automatic choice judged on

    result = agreement(yolox, int8, frames, below=int8.with_conf_threshold(0.25))

    assert result.near is not None and 0 <= result.near <= result.missed
    assert f"({result.near} of them just below the threshold in int8)" in result.summary()
    assert result.reference > 100
    assert result.match_rate >= 0.9  # all-int8 matched 84 %, with its first two convs in fp32 about 98 %
    assert result.extra <= 0.1 * result.reference


def test_only_an_ultralytics_dfl_and_box_decoding_stay_in_fp32(
    yolo11n_export: tuple[Path, Path], yolox_path: Path, yolox_manifest: ModelManifest
) -> None:
    models_dir = yolo11n_export[1]
    manifest = load_manifest(models_dir / "yolo11n.yaml")
    graph = onnx.load(str(models_dir / manifest.file)).graph

    kept = set(float_nodes(manifest, models_dir / manifest.file))

    ops = {n.name: n.op_type for n in graph.node}
    assert {"Softmax", "MatMul", "Sub", "Concat"} <= {ops[name] for name in kept}
    assert "Conv" not in {ops[name] for name in kept}
    assert next(n.name for n in graph.node if graph.output[0].name in n.output) in kept
    assert float_nodes(yolox_manifest, yolox_path) == []


def test_int8_yolo11n_keeps_its_class_scores(
    tmp_path: Path, yolo11n_export: tuple[Path, Path], footage_path: Path
) -> None:
    """A quantised output concat once put class scores on the scale of pixel coordinates: all 0."""
    models_dir = yolo11n_export[1]
    manifest = load_manifest(models_dir / "yolo11n.yaml")
    int8 = tmp_path / "yolo11n-int8.onnx"
    assert quantize_onnx(manifest, models_dir / manifest.file, int8, read_frames(footage_path, 4))
    frame = read_frames(footage_path, 1, step=1)
    tensor = FAMILIES[manifest.family](manifest).preprocess(frame)[0]
    pixels = FAMILIES[manifest.family](manifest.model_copy(update={"input_dtype": "uint8"})).preprocess(frame)[0]

    want = _run(onnx.load(str(models_dir / manifest.file)), tensor)[0, 4:].max(axis=0)
    got = _run(onnx.load(str(int8)), pixels)[0, 4:].max(axis=0)

    assert want.max() > 0.05
    assert 0.5 * want.max() < got.max() < 2 * want.max()


def _run(model: onnx.ModelProto, tensor: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: tensor})[0])


def test_stem_space_to_depth_is_exact(yolo11n_export: tuple[Path, Path], footage_frame: np.ndarray) -> None:
    models_dir = yolo11n_export[1]
    manifest = load_manifest(models_dir / "yolo11n.yaml")
    model = onnx.load(str(models_dir / manifest.file))
    tensor = np.ascontiguousarray(footage_frame[:480, :640, ::-1].transpose(2, 0, 1)[None], np.float32) / 255

    before = _run(model, tensor)
    assert stem_space_to_depth(model)

    assert [n.op_type for n in model.graph.node[:2]] == ["SpaceToDepth", "Conv"]
    np.testing.assert_allclose(_run(model, tensor), before, rtol=1e-4, atol=1e-3)


def test_stem_space_to_depth_leaves_a_focus_stem(yolox_path: Path) -> None:
    model = onnx.load(str(yolox_path))

    assert not stem_space_to_depth(model)


def test_concat_inputs_share_one_scale_after_quantisation(quantized: tuple[Path, list[str]]) -> None:
    models, _ = quantized
    _, weights = resolve_model(models, "yolox-nano-int8")
    model = onnx.load(str(weights))
    producer = {out: n for n in model.graph.node for out in n.output}
    init = {t.name: float(numpy_helper.to_array(t)) for t in model.graph.initializer if not t.dims}
    concats = [n for n in model.graph.node if n.op_type == "Concat" and n.input[0] in producer]
    dequantised = [[producer[i] for i in n.input if producer[i].op_type == "DequantizeLinear"] for n in concats]

    scales = [{init[dq.input[1]] for dq in dqs} for dqs in dequantised if len(dqs) > 1]
    assert scales and all(len(s) == 1 for s in scales)


def _input_dequantisers(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The DequantizeLinear nodes that read the graph input, directly or through layout-only ops."""
    layout_only = {"SpaceToDepth", "Gather", "Slice", "Reshape", "Transpose"}
    reached, found = {model.graph.input[0].name}, []
    for node in model.graph.node:  # topological order
        if not any(name in reached for name in node.input):
            continue
        if node.op_type == "DequantizeLinear":
            found.append(node)
        elif node.op_type in layout_only:
            reached.update(node.output)
    return found


@pytest.fixture(scope="module")
def all_int8(tmp_path_factory: pytest.TempPathFactory, yolox_path: Path, footage_path: Path) -> tuple[Path, bool]:
    """YOLOX-nano with every conv in int8: the weights and whether its input became uint8."""
    out = tmp_path_factory.mktemp("int8") / "yolox_nano-int8.onnx"
    manifest = load_manifest(MODELS_DIR / "yolox-nano.yaml")
    return out, quantize_onnx(manifest, yolox_path, out, read_frames(footage_path, 8), fp32_convs=0)


def test_int8_takes_the_uint8_pixels_at_their_exact_scale(all_int8: tuple[Path, bool]) -> None:
    weights, as_uint8 = all_int8
    model = onnx.load(str(weights))
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}

    dequantisers = _input_dequantisers(model)

    assert as_uint8
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert "QuantizeLinear" not in {n.op_type for n in model.graph.node if model.graph.input[0].name in n.input}
    assert dequantisers  # after YOLOX's Focus: pixel value v reads as exactly v, as the fp32 model saw it
    assert all(float(init[dq.input[1]]) == 1.0 and int(init[dq.input[2]]) == 0 for dq in dequantisers)


def test_an_int8_graph_with_the_fp32_manifest_is_refused(
    all_int8: tuple[Path, bool], yolox_manifest: ModelManifest
) -> None:
    weights, _ = all_int8

    with pytest.raises(ModelError, match="graph input is uint8, the manifest feeds it float32"):
        Detector(create_session(weights), yolox_manifest)


def test_leading_nodes_stop_before_the_next_conv(yolox_path: Path) -> None:
    nodes = list(onnx.load(str(yolox_path)).graph.node)
    ops = {n.name: n.op_type for n in nodes}

    kept = leading_nodes(yolox_path, 2)

    assert [ops[name] for name in kept].count("Conv") == 2
    assert kept == [n.name for n in nodes[: len(kept)]]
    assert nodes[len(kept)].op_type == "Conv"
    assert leading_nodes(yolox_path, 0) == []
