"""Model manifests: what a weights file is, where it came from, and how to run it.

A manifest is a small YAML file beside the weights (`models/yolox-nano.yaml`). It is validated strictly
(unknown keys are errors) and its problems are reported as `file:line:col: path: message`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.yamlconf import load_model, parse_model

logger = logging.getLogger(__name__)

Family = Literal["yolox", "ultralytics", "ssd"]


class ModelManifest(BaseModel):
    """One model: its weights file, checksum, family, input size and labels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    file: str = Field(min_length=1, description="bare file name of the weights, e.g. yolox_nano.onnx")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    family: Family
    input_size: tuple[int, int] = Field(description="model input (width, height) in pixels")
    labels: list[str] = Field(min_length=1)
    class_ids: list[int] | None = Field(
        default=None,
        description="the raw class id the model emits for each label, when it is not the label's index "
        "(SSD exports number COCO with gaps)",
    )
    license: str = Field(min_length=1)
    source_url: str = Field(min_length=1, description="upstream origin of the weights")
    download_url: str | None = Field(
        default=None,
        description="a URL serving these exact bytes; None when only a mirror has them (local conversions)",
    )
    dynamic_batch: bool = False
    input_dtype: Literal["float32", "uint8"] = Field(
        default="float32",
        description="yolox and ultralytics families: the graph takes the family's float tensor (float32), or "
        "the same pixels as uint8 before any scaling (int8 models from `gridwatch models quantize`); the ssd "
        "family always takes uint8",
    )
    description: str = ""

    @field_validator("file")
    @classmethod
    def _bare_file_name(cls, value: str) -> str:
        if Path(value).name != value or value in {".", ".."}:
            raise ValueError(f"must be a bare file name without directories, got {value!r}")
        return value

    @field_validator("input_size")
    @classmethod
    def _positive_size(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] <= 0 or value[1] <= 0:
            raise ValueError(f"width and height must be positive, got {value}")
        return value

    @model_validator(mode="after")
    def _class_ids_match_labels(self) -> ModelManifest:
        if self.class_ids is not None:
            if len(self.class_ids) != len(self.labels):
                raise ValueError(
                    f"class_ids has {len(self.class_ids)} entries, labels has {len(self.labels)}: "
                    "expected one raw id per label"
                )
            if len(set(self.class_ids)) != len(self.class_ids):
                raise ValueError("class_ids must be unique")
        return self


def parse_manifest(text: str, path: str) -> ModelManifest:
    """Validate manifest YAML `text`; `path` names the file in `file:line:col` errors."""
    return parse_model(ModelManifest, text, path)


def load_manifest(path: Path) -> ModelManifest:
    """Read and validate one manifest file; raises `core.errors.ConfigError`."""
    return load_model(ModelManifest, path)


def dump_manifest(manifest: ModelManifest, header: str = "") -> str:
    """Manifest YAML text that `parse_manifest` reads back to an equal manifest; `header` lines become comments."""
    data = manifest.model_dump(mode="json", exclude_none=True, exclude_defaults=False)
    comments = "".join(f"# {line}\n" for line in header.splitlines())
    return comments + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
