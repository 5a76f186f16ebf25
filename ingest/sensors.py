"""The sensor registry: `sensors.yaml`, validated row by row like `cameras.yaml`.

```yaml
sensors:
  - id: wl-07
    name: 人民路下穿积水 Renmin Rd underpass water level
    kind: water_level        # water_level, smoke, manhole, noise, air, or another word
    unit: m
    grid_code: "310101001001"
    lon: 121.4737
    lat: 31.2304
    cameras: [cam-01]        # linked cameras (must be in cameras.yaml): looked at when the sensor alarms
    range: [0.0, 10.0]       # readings outside it are refused and counted
```
A malformed row is reported as `file:line:col: sensors[3].range: message`; a linked camera that `cameras.yaml`
lacks at its own line.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import ConfigError
from core.yamlconf import load_yaml_text, mark_of, node_at, validation_problems

SensorId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
SENSORS_FILE = "sensors.yaml"


class Sensor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: SensorId
    name: str = Field(default="", max_length=200)
    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    unit: str = Field(default="", max_length=16)
    grid_code: str = Field(default="", pattern=r"^[0-9]{0,24}$")
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    cameras: tuple[str, ...] = ()
    range: tuple[float, float] | None = None
    enabled: bool = True

    @field_validator("range")
    @classmethod
    def _ordered(cls, bounds: tuple[float, float] | None) -> tuple[float, float] | None:
        if bounds is not None and not (math.isfinite(bounds[0]) and math.isfinite(bounds[1]) and bounds[0] < bounds[1]):
            raise ValueError(f"range must be [min, max] with min < max, got [{bounds[0]}, {bounds[1]}]")
        return bounds

    def problem(self, value: float) -> str:
        """Why `value` cannot be a reading of this sensor; "" when it can."""
        if not math.isfinite(value):
            return "not_finite"
        if self.range is not None and not self.range[0] <= value <= self.range[1]:
            return "out_of_range"
        return ""


class SensorFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sensors: list[Sensor] = Field(default_factory=list)


def parse_sensors(text: str, path: str, cameras: Collection[str] | None = None) -> list[Sensor]:
    """The sensors of a `sensors.yaml` text; with `cameras`, every linked camera must be one of them."""
    data, node = load_yaml_text(text, path)
    try:
        sensors = SensorFile.model_validate(data if data is not None else {}).sensors
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, node, path)) from None
    problems, seen = [], set()
    for index, sensor in enumerate(sensors):
        if sensor.id in seen and node is not None:
            line, col = mark_of(node_at(node, ("sensors", index, "id")))
            problems.append(f"{path}:{line}:{col}: sensors[{index}].id: sensor id {sensor.id!r} appears more than once")
        seen.add(sensor.id)
        for i, cam in enumerate(sensor.cameras):
            if cameras is not None and cam not in cameras and node is not None:
                line, col = mark_of(node_at(node, ("sensors", index, "cameras", i)))
                problems.append(
                    f"{path}:{line}:{col}: sensors[{index}].cameras[{i}]: camera {cam!r} is not in cameras.yaml"
                )
    if problems:
        raise ConfigError(problems)
    return sensors


def load_sensors(path: Path, cameras: Collection[str] | None = None) -> list[Sensor]:
    """The registry at `path`; a missing file is no sensors."""
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}:1:1: cannot read: {exc.strerror}"]) from None
    return parse_sensors(text, str(path), cameras)
