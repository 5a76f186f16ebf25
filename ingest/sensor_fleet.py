"""Sensor registries as files: read a CSV or YAML list of sensors with every problem placed at its row and column,
import it into a config folder's `sensors.yaml` (linked cameras checked against its `cameras.yaml`) and export
from it. The camera fleet's reader (`ingest.fleet`) does the placing, the diff and the atomic write.

CSV columns are the registry's fields; `cameras` holds `;`-separated camera ids, `range` is `min;max`:

```
id,name,kind,unit,grid_code,lon,lat,cameras,range,enabled
wl-07,人民路下穿积水,water_level,m,310101001001,121.4737,31.2304,cam-01;cam-02,0;10,true
```
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from core.errors import ConfigError
from core.yamlconf import gc_paused, load_yaml_text, validation_problems
from ingest.fleet import (
    CsvPlaces,
    CsvSchema,
    FleetDiff,
    Places,
    YamlPlaces,
    csv_rows,
    diff,
    line_of,
    read_fleet,
    read_text,
    row_problems,
)
from ingest.fleet_files import LIST_SEPARATOR, write_atomic, yaml_row
from ingest.sensors import SENSORS_FILE, Sensor, SensorFile

COLUMNS: tuple[str, ...] = tuple(Sensor.model_fields)
_FLOATS, _LISTS = frozenset({"lon", "lat"}), frozenset({"cameras"})
_TRUE, _FALSE = frozenset({"true", "yes", "1"}), frozenset({"false", "no", "0"})


def _cell(name: str, text: str) -> object:
    """A CSV cell as the value the model takes; ValueError saying what was expected."""
    if name in _LISTS:
        return [part.strip() for part in text.split(LIST_SEPARATOR) if part.strip()]
    if name == "range":
        parts = [part.strip() for part in text.split(LIST_SEPARATOR)]
        try:
            bounds = [float(part) for part in parts]
        except ValueError:
            raise ValueError(f"expected min{LIST_SEPARATOR}max (two numbers), got {text!r}") from None
        if len(bounds) != 2:
            raise ValueError(f"expected min{LIST_SEPARATOR}max (two numbers), got {text!r}")
        return bounds
    if name == "enabled":
        word = text.strip().lower()
        if word not in _TRUE | _FALSE:
            raise ValueError(f"expected true or false, got {text!r}")
        return word in _TRUE
    if name in _FLOATS:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
    return text


SENSOR_CSV = CsvSchema(COLUMNS, ("id", "kind"), _cell)


@dataclass(frozen=True, slots=True)
class Registry:
    """Valid sensors as written, and where each row is."""

    sensors: list[Sensor]
    places: Places


def _yaml_rows(text: str, path: str) -> tuple[Sequence[object], YamlPlaces]:
    data, node = load_yaml_text(text, path)
    rows = data.get("sensors") if isinstance(data, dict) and set(data) == {"sensors"} else None
    if not isinstance(rows, list):
        try:
            SensorFile.model_validate({} if data is None else data)
        except ValidationError as exc:
            raise ConfigError(validation_problems(exc, node, path)) from None
        rows = []
    return rows, YamlPlaces(path, text, node, composed=True, key="sensors")


Checked = tuple[list[Sensor], list[str]]


def _validate(rows: Sequence[object], places: Places, cameras: Collection[str] | None) -> Checked:
    sensors, problems, first = [], [], dict[str, int]()
    for index, row in enumerate(rows):
        try:
            sensor = Sensor.model_validate(row)
        except ValidationError as exc:
            problems += row_problems(exc, index, places)
            continue
        seen = first.setdefault(sensor.id, index)
        if seen != index:
            problems.append(
                f"{places.at(index, ('id',))}: sensor id {sensor.id!r} appears more than once"
                f" (first at {places.row(seen)})"
            )
        for i, camera in enumerate(sensor.cameras):
            if cameras is not None and camera not in cameras:
                problems.append(f"{places.at(index, ('cameras', i))}: camera {camera!r} is not in cameras.yaml")
        sensors.append(sensor)
    return sensors, problems


def read_registry(path: Path, cameras: Collection[str] | None = None) -> Registry:
    """The sensors in a `.csv` file, else a YAML one; with `cameras`, every linked camera must be one of them.
    ConfigError listing every problem if any."""
    with gc_paused():
        text = read_text(path)
        places: Places
        rows: Sequence[object]
        if path.suffix.lower() == ".csv":
            rows, lines, problems = csv_rows(text, str(path), SENSOR_CSV)
            places = CsvPlaces(str(path), lines)
        else:
            rows, places = _yaml_rows(text, str(path))
            problems = []
        sensors, invalid = _validate(rows, places, cameras)
        problems = sorted(problems + invalid, key=line_of(str(path)))
        if problems:
            raise ConfigError(problems)
        places.release()
        return Registry(sensors, places)


def render_yaml(sensors: Sequence[Sensor]) -> str:
    """`sensors.yaml` text for these sensors (read back by `ingest.sensors` to the same sensors)."""
    if not sensors:
        return "sensors: []\n"
    return "sensors:\n" + "".join(yaml_row(sensor, ("id", "kind")) for sensor in sensors)


def _csv_cell(sensor: Sensor, name: str) -> str:
    value = getattr(sensor, name)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple):
        return LIST_SEPARATOR.join(repr(item) if isinstance(item, float) else str(item) for item in value)
    return str(value)


def render_csv(sensors: Sequence[Sensor]) -> str:
    """CSV text for these sensors: a header row of every column, then one row a sensor."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([_csv_cell(sensor, name) for name in COLUMNS] for sensor in sensors)
    return out.getvalue()


def config_cameras(config: Path) -> set[str]:
    """The camera ids of `config/cameras.yaml` (none without one); ConfigError if it does not load."""
    path = config / "cameras.yaml"
    return {camera.id for camera in read_fleet(path, warn=False).cameras} if path.is_file() else set()


@dataclass(frozen=True, slots=True)
class SensorImport:
    sensors: int
    diff: FleetDiff
    written: bool
    previous_problems: int  # the old sensors.yaml did not load: every sensor counts as added


def import_sensors(source: Path, config: Path) -> SensorImport:
    """Validate `source` as a whole and make it `config/sensors.yaml` (atomically). A file with any problem
    (a linked camera not in `config/cameras.yaml` among them) raises ConfigError and leaves sensors.yaml as it was."""
    registry = read_registry(source, config_cameras(config))
    target = config / SENSORS_FILE
    text = render_yaml(registry.sensors)
    try:
        old_text: str | None = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        old_text = None
    except (OSError, UnicodeDecodeError):
        old_text = ""  # read_registry says why below
    if old_text == text:
        return SensorImport(len(registry.sensors), diff(registry.sensors, registry.sensors), False, 0)
    old: list[Sensor] = []
    previous_problems = 0
    if old_text is not None:
        try:
            old = read_registry(target).sensors
        except ConfigError as exc:
            previous_problems = len(exc.problems)
    write_atomic(target, text)
    return SensorImport(len(registry.sensors), diff(old, registry.sensors), True, previous_problems)


def export_sensors(config: Path, fmt: str) -> tuple[str, int]:
    """`config/sensors.yaml` as `fmt` text (`csv` or `yaml`), and how many sensors it holds."""
    path = config / SENSORS_FILE
    if not path.is_file():
        raise ConfigError([f"{path}:1:1: no such file: import sensors first (gridwatch sensors import FILE)"])
    sensors = read_registry(path).sensors
    return (render_csv(sensors) if fmt == "csv" else render_yaml(sensors)), len(sensors)
