"""Camera fleets as files: read a CSV or YAML fleet with every problem placed at its row and column, check
GB/T 28181 ids, compare two fleets, import into a config folder's `cameras.yaml` and export from it.

Nothing here expands `${VAR}`: references are kept as written, so an export gives back what was imported. Every
problem and warning goes through `core.redact`, so no password is ever printed.

Places: CSV `cameras.csv:17:url: message` (the line in the file, the column's header); YAML
`cameras.yaml:5:10: cameras[3].url: message`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml
from pydantic import ValidationError

from core.errors import ConfigError, GridwatchError
from core.redact import holds_secret, redact_text, sanitize_url
from core.yamlconf import fast_rows, format_loc, gc_paused, load_yaml_text, mark_of, node_at, validation_problems
from ingest.cameras import Camera, CameraFile
from ingest.fleet_files import COLUMNS, LIST_SEPARATOR, render, render_yaml, write_atomic

Progress = Callable[[str, int, int], None]  # (stage, rows done, rows in all)
REQUIRED = ("id", "url")
_INTS = frozenset({"priority", "burst_frames"})
_FLOATS = frozenset({"lon", "lat", "revisit_s", "burst_span_s", "sample_fps", "window_s"})
_BOOLS, _LISTS = frozenset({"enabled"}), frozenset({"tags", "arming"})
_TRUE, _FALSE = frozenset({"true", "yes", "1"}), frozenset({"false", "no", "0"})
_EVERY = 1000  # rows between progress reports
SHOWN = 20  # credential rows named in an export refusal
# GB/T 28181 Annex D type codes (digits 11-13 of an id)
GB_TYPES = {
    **{str(c): "front-end device" for c in range(111, 131)},  # 111 DVR, 112 video server, 113 encoder, 118 NVR
    **{str(c): "front-end peripheral" for c in range(131, 200)},  # 131 camera, 132 network camera, 134 alarm in
    **{str(c): "platform device" for c in range(200, 300)},  # 200 SIP server, 215 business group, 216 virtual org
    **{str(c): "terminal" for c in range(300, 500)},  # 300 central user terminal, 400 mobile user terminal
}


class Places(Protocol):
    def at(self, index: int, loc: Sequence[int | str], *, key: bool = False) -> str: ...

    def row(self, index: int) -> str: ...

    def release(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CsvPlaces:
    path: str
    lines: list[int]  # the line each row starts on

    def at(self, index: int, loc: Sequence[int | str], *, key: bool = False) -> str:
        return f"{self.path}:{self.lines[index]}:{loc[0] if loc else 'id'}"

    def row(self, index: int) -> str:
        return f"line {self.lines[index]}"

    def release(self) -> None:
        pass


class YamlPlaces:
    """Lines and columns from the YAML nodes, composed when first asked for if the file was read fast."""

    def __init__(
        self, path: str, text: str, node: yaml.Node | None = None, *, composed: bool = False, key: str = "cameras"
    ) -> None:
        self.path, self._text, self._node, self._composed, self.key = path, text, node, composed, key

    def _mark(self, loc: Sequence[int | str], key: bool) -> tuple[int, int]:
        if not self._composed:
            self._node, self._composed = load_yaml_text(self._text, self.path)[1], True
        return (1, 1) if self._node is None else mark_of(node_at(self._node, loc, key_node=key))

    def at(self, index: int, loc: Sequence[int | str], *, key: bool = False) -> str:
        full = (self.key, index, *loc)
        line, col = self._mark(full, key)
        return f"{self.path}:{line}:{col}: {format_loc(full)}"

    def row(self, index: int) -> str:
        return f"line {self._mark((self.key, index, 'id'), False)[0]}, {self.key}[{index}]"

    def release(self) -> None:
        """Drop the nodes (millions for a large fleet); composed again if a place is asked for later."""
        self._node, self._composed = None, False


@dataclass(frozen=True, slots=True)
class Fleet:
    """Valid cameras as written (no `${VAR}` expanded), the warnings about them, and where each row is."""

    cameras: list[Camera]
    warnings: list[str]
    places: Places


def gb_id_problem(value: str) -> str | None:
    """Why `value` is not a GB/T 28181 id (20 digits: 8 division, 2 industry, 3 type, 7 serial), or None."""
    if not value.isascii() or not value.isdigit():
        return f"GB/T 28181 id {value!r} holds characters other than digits, expected 20 digits"
    if len(value) != 20:
        return f"GB/T 28181 id {value!r} has {len(value)} digits, expected 20"
    if value[10:13] not in GB_TYPES:
        return f"GB/T 28181 id {value!r} has type code {value[10:13]}, which is no device type (111-499)"
    return None


def _warnings(cameras: Sequence[Camera], places: Places) -> list[str]:
    out = []
    for index, camera in enumerate(cameras):
        for name in ("gb_device_id", "gb_channel_id"):
            value = getattr(camera, name)
            problem = gb_id_problem(value) if value else None
            if problem:
                out.append(f"{places.at(index, (name,))}: warning: {problem}")
    return out


def row_problems(exc: ValidationError, index: int, places: Places) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        extra = err["type"] == "extra_forbidden"
        message = "extra key not allowed" if extra else err["msg"]
        problems.append(f"{places.at(index, err['loc'], key=extra)}: {message}")
    return problems


def _validate(rows: Sequence[object], places: Places, progress: Progress | None) -> tuple[list[Camera], list[str]]:
    cameras, problems, first = [], [], dict[str, int]()
    for index, row in enumerate(rows):
        if progress is not None and index % _EVERY == 0:
            progress("validating", index, len(rows))
        try:
            camera = Camera.model_validate(row)
        except ValidationError as exc:
            problems += row_problems(exc, index, places)
            continue
        seen = first.setdefault(camera.id, index)
        if seen != index:
            problems.append(
                f"{places.at(index, ('id',))}: camera id {camera.id!r} appears more than once"
                f" (first at {places.row(seen)})"
            )
        cameras.append(camera)
    if progress is not None:
        progress("validating", len(rows), len(rows))
    return cameras, problems


def _cell(name: str, text: str) -> object:
    """A CSV cell as the value the model takes; ValueError saying what was expected."""
    if name in _LISTS:
        return [part.strip() for part in text.split(LIST_SEPARATOR) if part.strip()]
    if name in _BOOLS:
        word = text.strip().lower()
        if word not in _TRUE | _FALSE:
            raise ValueError(f"expected true or false, got {text!r}")
        return word in _TRUE
    try:
        if name in _INTS:
            return int(text)
        if name in _FLOATS:
            return float(text)
    except ValueError:
        raise ValueError(f"expected {'an integer' if name in _INTS else 'a number'}, got {text!r}") from None
    return text


@dataclass(frozen=True, slots=True)
class CsvSchema:
    """The columns a CSV file may have, those it must have, and how a cell becomes the model's value."""

    columns: tuple[str, ...]
    required: tuple[str, ...]
    cell: Callable[[str, str], object]  # (column, text) -> value; ValueError saying what was expected


CAMERA_CSV = CsvSchema(COLUMNS, REQUIRED, _cell)


def _header_problems(header: list[str], path: str, schema: CsvSchema) -> list[str]:
    columns = schema.columns
    problems = [f"{path}:1:{name}: unknown column, expected some of {', '.join(columns)}" for name in header]
    problems = [p for p, name in zip(problems, header, strict=True) if name not in columns]
    twice = sorted(name for name in set(header) if header.count(name) > 1)
    problems += [f"{path}:1:{name}: column appears more than once" for name in twice]
    return problems + [f"{path}:1:{name}: required column missing" for name in schema.required if name not in header]


CsvRows = tuple[list[dict[str, object]], list[int], list[str]]


def csv_rows(text: str, path: str, schema: CsvSchema = CAMERA_CSV) -> CsvRows:
    """Rows as field dicts (empty cells left out), the line each starts on, and the problems found (the cells
    are converted here; the rows are validated by the model after)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = [name.strip() for name in next(reader, [])]
    if not header:
        columns = ", ".join(schema.columns)
        return [], [], [f"{path}:1:id: no header row: the first line names the columns ({columns})"]
    problems = _header_problems(header, path, schema)
    if problems:  # no row is read under a wrong header: each would repeat its problem
        return [], [], problems
    rows: list[dict[str, object]] = []
    lines, line = [], reader.line_num + 1
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not any(cells):
                continue
            if len(cells) != len(header):
                problems.append(f"{path}:{start}:{header[-1]}: {len(cells)} cells, the header has {len(header)}")
                continue
            row: dict[str, object] = {}
            for name, text in zip(header, cells, strict=True):
                try:
                    if text != "":
                        row[name] = schema.cell(name, text)
                except ValueError as exc:
                    problems.append(f"{path}:{start}:{name}: {exc}")
            rows.append(row)
            lines.append(start)
    except csv.Error as exc:
        problems.append(f"{path}:{line}:{header[0]}: {exc}")
    return rows, lines, problems


def read_text(path: Path) -> str:
    """A fleet file's text; ConfigError at `path:1:1` when it cannot be read or is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark is no part of the header
    except OSError as exc:
        raise ConfigError([f"{path}:1:1: cannot read: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}:1:1: not UTF-8 text: {exc.reason} at byte {exc.start}"]) from None


def _yaml_rows(text: str, path: str) -> tuple[Sequence[object], YamlPlaces]:
    fast = fast_rows(text, "cameras")
    if fast is not None:
        return fast, YamlPlaces(path, text)
    data, node = load_yaml_text(text, path)
    rows = data.get("cameras") if isinstance(data, dict) and set(data) == {"cameras"} else None
    if not isinstance(rows, list):
        try:
            CameraFile.model_validate({} if data is None else data)
        except ValidationError as exc:
            raise ConfigError(validation_problems(exc, node, path)) from None
        rows = []
    return rows, YamlPlaces(path, text, node, composed=True)


def line_of(path: str) -> Callable[[str], int]:
    """The line number a `path:line:...` problem names: problems are listed in file order."""

    def line(problem: str) -> int:
        number = problem[len(path) + 1 :].partition(":")[0]
        return int(number) if number.isdigit() else 0

    return line


def read_fleet(path: Path, progress: Progress | None = None, *, warn: bool = True) -> Fleet:
    """The fleet in a `.csv` file, else a YAML one; ConfigError listing every problem (and warning) if any.
    Without `warn`, GB/T 28181 ids are not checked (a file already imported was checked then)."""
    with gc_paused():  # millions of short-lived objects: the collector would only slow the read
        return _read_fleet(path, progress, warn)


def _read_fleet(path: Path, progress: Progress | None, warn: bool) -> Fleet:
    text = read_text(path)
    if progress is not None:
        progress("reading", 0, 0)
    places: Places
    rows: Sequence[object]
    if path.suffix.lower() == ".csv":
        rows, lines, problems = csv_rows(text, str(path))
        places = CsvPlaces(str(path), lines)
    else:
        rows, places = _yaml_rows(text, str(path))
        problems = []
    cameras, invalid = _validate(rows, places, progress)
    warnings = [redact_text(line) for line in _warnings(cameras, places)] if warn else []
    problems = sorted((redact_text(line) for line in problems + invalid), key=line_of(str(path)))
    if problems:
        raise ConfigError(problems + warnings)
    places.release()
    return Fleet(cameras, warnings, places)


@dataclass(frozen=True, slots=True)
class FleetDiff:
    added: int
    changed: int
    removed: int
    unchanged: int

    def text(self) -> str:
        return f"{self.added} added, {self.changed} changed, {self.removed} removed, {self.unchanged} unchanged"


class Identified(Protocol):
    @property
    def id(self) -> str: ...


def diff(old: Sequence[Identified], new: Sequence[Identified]) -> FleetDiff:
    """Rows (cameras, sensors) by id: new ids added, old ids gone removed, the rest changed or unchanged."""
    before = {row.id: row for row in old}
    same = sum(1 for row in new if before.get(row.id) == row)
    kept = sum(1 for row in new if row.id in before)
    return FleetDiff(len(new) - kept, kept - same, len(before) - kept, same)


@dataclass(frozen=True, slots=True)
class ImportReport:
    cameras: int
    diff: FleetDiff
    warnings: list[str]
    written: bool
    previous_problems: int  # the old cameras.yaml did not load: every camera counts as added


def import_fleet(source: Path, config: Path, progress: Progress | None = None) -> ImportReport:
    """Validate `source` as a whole and make it `config/cameras.yaml` (atomically; 0600 if it holds passwords).
    A file with any problem raises ConfigError and leaves cameras.yaml as it was."""
    fleet = read_fleet(source, progress)
    if progress is not None:
        progress("writing", 0, 0)
    target = config / "cameras.yaml"
    text = render_yaml(fleet.cameras)
    try:
        old_text: str | None = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        old_text = None
    except (OSError, UnicodeDecodeError):
        old_text = ""  # read_fleet says why below
    if old_text == text:  # the same file: nothing to compare camera by camera
        return ImportReport(len(fleet.cameras), diff(fleet.cameras, fleet.cameras), fleet.warnings, False, 0)
    old: list[Camera] = []
    previous_problems = 0
    if old_text is not None:
        try:
            old = read_fleet(target, warn=False).cameras
        except ConfigError as exc:
            previous_problems = len(exc.problems)
    write_atomic(target, text, private=any(holds_secret(camera.url) for camera in fleet.cameras))
    return ImportReport(len(fleet.cameras), diff(old, fleet.cameras), fleet.warnings, True, previous_problems)


class CredentialsError(GridwatchError):
    """An export would write passwords spelled out in camera URLs, and was not asked to."""


@dataclass(frozen=True, slots=True)
class Export:
    text: str
    cameras: int
    holds_credentials: bool  # passwords written out: only with include_credentials; write it 0600


def export_fleet(config: Path, fmt: str, *, include_credentials: bool = False) -> Export:
    """`config/cameras.yaml` as `fmt` text (`csv` or `yaml`). A URL with a password written out (not a `${VAR}`)
    is exported only with `include_credentials`; else CredentialsError names the rows."""
    fleet = read_fleet(config / "cameras.yaml", warn=False)
    secret = [i for i, camera in enumerate(fleet.cameras) if holds_secret(camera.url)]
    if secret and not include_credentials:
        lines = [f"{fleet.places.at(i, ('url',))}: {sanitize_url(fleet.cameras[i].url)}" for i in secret[:SHOWN]]
        if len(secret) > SHOWN:
            lines.append(f"... and {len(secret) - SHOWN} more")
        raise CredentialsError(
            f"{len(secret)} camera url(s) hold a password or secret written out; export refused:\n"
            + "\n".join(lines)
            + "\nwrite them as ${VAR} references in cameras.yaml (the value comes from the environment),"
            " or pass --include-credentials to export them (the file is created with mode 0600)"
        )
    return Export(render(fleet.cameras, fmt), len(fleet.cameras), bool(secret))
