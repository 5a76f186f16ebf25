"""The camera registry: `cameras.yaml`, validated row by row.

```yaml
cameras:
  - id: cam-01
    name: 东门人行道
    url: rtsp://admin:${CAM01_PASSWORD}@10.1.2.3:554/Streaming/Channels/102
    grid_code: "310101001001"
    lon: 121.4737
    lat: 31.2304
  - id: cam-02
    url: rtsp://10.1.2.4/stream1
    mode: burst          # a visit grabs burst_frames frames over burst_span_s seconds (default 8 over 4 s)
    burst_frames: 8
    burst_span_s: 4.0
    gb_device_id: "31010100001320000001"   # GB/T 28181 ids: checked by `gridwatch cameras import` (warnings)
    gb_channel_id: "31010100001310000001"
    tags: [gate, night]
    arming: ["mon-fri 07:00-19:00", "sat,sun 22:00-06:00"]
```
`${VAR}` in a URL is taken from the environment (percent-encoded) when the file is loaded, so passwords need
not live in the file. A malformed row is reported as `file:line:col: cameras[3].url: message`.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from core.errors import ConfigError
from core.redact import sanitize_url
from core.yamlconf import fast_rows, gc_paused, load_yaml_text, mark_of, node_at, validation_problems
from ingest.arming import ArmingWindow
from ingest.burst import MAX_FRAMES, MAX_SPAN_S, MIN_FRAMES
from ingest.grabber import file_start_offset

CameraId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
_SCHEMES = ("rtsp://", "rtsps://", "file://")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# a tag: no `;` (the CSV separator), no surrounding blanks
Tag = Annotated[str, Field(pattern=r"^[^;\s](?:[^;]{0,62}[^;\s])?$")]


def _window(value: object) -> ArmingWindow:
    if isinstance(value, ArmingWindow):
        return value
    if not isinstance(value, str):
        raise ValueError(f"an arming window is a string like 'mon-fri 07:00-19:00', got {type(value).__name__}")
    return ArmingWindow.parse(value)


Window = Annotated[ArmingWindow, PlainValidator(_window), PlainSerializer(str, return_type=str)]


class Camera(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: CameraId
    name: str = ""
    url: str = Field(repr=False)
    # GB/T 28181 device and channel ids (20 digits); any text is kept, `gridwatch cameras import` warns
    gb_device_id: str = Field(default="", max_length=64)
    gb_channel_id: str = Field(default="", max_length=64)
    grid_code: str = Field(default="", pattern=r"^[0-9]{0,24}$")
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    tags: tuple[Tag, ...] = ()
    enabled: bool = True
    revisit_s: float = Field(default=60.0, gt=0, le=86_400)
    priority: int = Field(default=0, ge=0, le=9)
    mode: Literal["keyframe", "burst", "continuous"] = "keyframe"
    arming: tuple[Window, ...] = ()  # none: armed at all times
    # burst visits only (`mode: burst`): that many frames evenly spaced over that many seconds
    burst_frames: int = Field(default=8, ge=MIN_FRAMES, le=MAX_FRAMES, strict=True)
    burst_span_s: float = Field(default=4.0, gt=0, le=MAX_SPAN_S, strict=True)
    # continuous cameras only (`mode: continuous`): a held stream sampled `sample_fps` times a second, one
    # observation of the rules every `window_s` seconds (`ingest.continuous`)
    sample_fps: float = Field(default=5.0, gt=0, le=30)
    window_s: float = Field(default=2.0, gt=0, le=MAX_SPAN_S)

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        if not url.startswith(_SCHEMES):
            raise ValueError(f"url must start with one of {', '.join(_SCHEMES)}, got {sanitize_url(url)!r}")
        if url.startswith("file://"):
            file_start_offset(url)  # a bad `#t=` fails here, with its row, not on every visit
        return url

    @field_validator("burst_frames", "burst_span_s")
    @classmethod
    def _only_for_bursts(cls, value: float, info: ValidationInfo) -> float:
        # runs only for values given in the file (defaults are not validated); `mode` is validated before
        mode = info.data.get("mode")
        if mode is not None and mode != "burst":
            raise ValueError(f"{info.field_name} applies only to mode: burst, and this camera's mode is {mode!r}")
        return value

    @field_validator("sample_fps", "window_s")
    @classmethod
    def _only_for_continuous(cls, value: float, info: ValidationInfo) -> float:
        mode = info.data.get("mode")
        if mode is not None and mode != "continuous":
            raise ValueError(f"{info.field_name} applies only to mode: continuous, and this camera's mode is {mode!r}")
        return value

    @property
    def safe_url(self) -> str:
        """The address without credentials: the only form that may be logged or shown."""
        return sanitize_url(self.url)

    def armed_at(self, moment: datetime) -> bool:
        """Whether one of the camera's arming windows holds `moment` (read on its own wall clock: pass it in the
        camera's local time zone); a camera without windows is always armed."""
        return not self.arming or any(window.covers(moment) for window in self.arming)


class CameraFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cameras: list[Camera]


def _expand_env(text: str, path: str) -> str:
    """Replace `${VAR}` by the variable's value, percent-encoded so that a password holding `@ / ? # :`
    stays inside the URL's userinfo (FFmpeg decodes it again when it authenticates)."""
    missing = sorted({m.group(1) for m in _ENV_REF.finditer(text) if m.group(1) not in os.environ})
    if missing:
        raise ConfigError([f"{path}:1:1: environment variable(s) not set: {', '.join(missing)}"])
    return _ENV_REF.sub(lambda m: quote(os.environ[m.group(1)], safe=""), text)


def parse_cameras(text: str, path: str) -> list[Camera]:
    with gc_paused():  # 100,000 cameras are millions of objects: the collector would only slow the load
        return _parse_cameras(text, path)


def _fast_parse(text: str, path: str) -> list[Camera] | None:
    """The cameras of a file in the layout `gridwatch cameras import` writes, if it holds no problem; None
    otherwise, and the file is read as YAML to place each problem at its line."""
    rows = fast_rows(text, "cameras")
    if rows is None:
        return None
    for row in rows:
        if isinstance(row.get("url"), str):
            row["url"] = _expand_env(str(row["url"]), path)
    try:
        cameras = CameraFile.model_validate({"cameras": rows}).cameras
    except ValidationError:
        return None
    return cameras if len({camera.id for camera in cameras}) == len(cameras) else None


def _parse_cameras(text: str, path: str) -> list[Camera]:
    fast = _fast_parse(text, path)
    if fast is not None:
        return fast
    data, node = load_yaml_text(text, path)
    if isinstance(data, dict) and isinstance(data.get("cameras"), list):
        for row in data["cameras"]:
            if isinstance(row, dict) and isinstance(row.get("url"), str):
                row["url"] = _expand_env(row["url"], path)
    try:
        cameras = CameraFile.model_validate(data if data is not None else {}).cameras
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, node, path)) from None
    problems, seen = [], dict[str, int]()
    for index, cam in enumerate(cameras):
        first = seen.setdefault(cam.id, index)
        if first != index and node is not None:
            line, col = mark_of(node_at(node, ("cameras", index, "id")))
            was, _ = mark_of(node_at(node, ("cameras", first, "id")))
            problems.append(
                f"{path}:{line}:{col}: cameras[{index}].id: camera id {cam.id!r} appears more than once"
                f" (first at line {was}, cameras[{first}])"
            )
    if problems:
        raise ConfigError(problems)
    return cameras


def load_cameras(path: Path) -> list[Camera]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}:1:1: cannot read: {exc.strerror}"]) from None
    return parse_cameras(text, str(path))
