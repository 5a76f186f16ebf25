"""`gridwatch models export FILE.pt`: a user's ultralytics detect model -> ONNX with a dynamic batch axis + manifest.

Needs the `export` extra (ultralytics, torch, onnx, onnxslim). This module and `bench/` are the only places
that import ultralytics; the runtime path (`detectors/`) reads the ONNX file alone.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from pathlib import Path

import ultralytics
from ultralytics import YOLO  # type: ignore[attr-defined]

from core.errors import ModelError
from detectors.manifest import ModelManifest, dump_manifest, load_manifest
from gridwatch.modelstore import sha256_file

logger = logging.getLogger(__name__)

DEFAULT_IMGSZ = 640


def _labels(names: dict[int, str] | list[str]) -> list[str]:
    """Class names in class-id order (ultralytics keeps them as {id: name})."""
    if isinstance(names, dict):
        return [str(names[i]) for i in range(len(names))]
    return [str(n) for n in names]


def export_onnx(weights: Path, out_dir: Path, imgsz: int = DEFAULT_IMGSZ) -> tuple[Path, list[str], str]:
    """Export `weights` (.pt) with a dynamic batch axis into `out_dir`; the ONNX path, labels, model license."""
    if not weights.is_file():
        raise ModelError(f"{weights}: no such file")
    model = YOLO(str(weights))
    if model.task != "detect":
        raise ModelError(f"{weights}: task is {model.task!r}; only detect models are supported")
    with tempfile.TemporaryDirectory(prefix="gridwatch-export-") as tmp:
        # ultralytics writes the .onnx beside the .pt: work on a copy so the user's folder stays clean
        staged = Path(tmp) / weights.name
        shutil.copyfile(weights, staged)
        with warnings.catch_warnings():
            # torch's deprecation notices about the TorchScript exporter, which ultralytics chooses on purpose
            warnings.simplefilter("ignore", DeprecationWarning)
            exported = YOLO(str(staged)).export(
                format="onnx", dynamic=True, imgsz=imgsz, simplify=True, device="cpu", verbose=False
            )
        target = out_dir / f"{weights.stem}.onnx"
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.move(str(exported), target)
    logger.info("exported %s to %s (dynamic batch, input %dx%d)", weights, target, imgsz, imgsz)
    return target, _labels(model.names), "AGPL-3.0 (ultralytics)"


def export_model(
    weights: Path, models_dir: Path, *, name: str | None = None, imgsz: int = DEFAULT_IMGSZ
) -> tuple[ModelManifest, Path]:
    """Export `weights` to `models_dir/{file}.onnx` and write `models_dir/{name}.yaml`; both checked back."""
    name = name or weights.stem
    onnx_path, labels, license_ = export_onnx(weights, models_dir, imgsz)
    file = f"{name}.onnx"
    if onnx_path.name != file:
        onnx_path = onnx_path.replace(models_dir / file)
    manifest = ModelManifest(
        name=name,
        version=f"ultralytics-{ultralytics.__version__}",
        file=file,
        sha256=sha256_file(onnx_path),
        family="ultralytics",
        input_size=(imgsz, imgsz),
        labels=labels,
        license=license_,
        source_url=str(weights.resolve()),
        dynamic_batch=True,
        description=f"exported by `gridwatch models export` from {weights.name} with ultralytics "
        f"{ultralytics.__version__}; input [batch,3,{imgsz},{imgsz}] RGB 0-1, output [batch,{4 + len(labels)},A]",
    )
    manifest_path = models_dir / f"{name}.yaml"
    header = f"{name}: local ultralytics export, weights never committed (gridwatch models export)."
    manifest_path.write_text(dump_manifest(manifest, header), encoding="utf-8")
    logger.info("wrote manifest %s (sha256 %s)", manifest_path, manifest.sha256)
    return load_manifest(manifest_path), onnx_path
