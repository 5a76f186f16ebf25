"""Read rule files into a `RuleSet`; every problem in every file is reported as `file:line:col: path: msg`."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from core.errors import ConfigError
from core.yamlconf import load_yaml_text, node_at, validation_problems
from rules.registry import RULE_KINDS, Rule, RuleFile
from rules.ruleset import RuleOrigin, RuleSet

logger = logging.getLogger(__name__)

RULE_SUFFIXES = (".yaml", ".yml")

Mark = tuple[int, int]

__all__ = ["RuleOrigin", "RuleSet", "build_rule_set", "check_rule_files", "load_rule_files", "read_rule_sources"]


@dataclass(frozen=True, slots=True)
class _Source:
    path: Path
    text: str | None
    problem: str | None


@dataclass(frozen=True, slots=True)
class RuleSources:
    """The raw text of every rule file, read once, and the digest over paths and contents."""

    sources: tuple[_Source, ...]
    digest: str


def expand_paths(paths: Sequence[Path]) -> list[Path]:
    """Directories become their `*.yaml` / `*.yml` files sorted by name; repeated files count once."""
    out: list[Path] = []
    for path in paths:
        found = (
            sorted(p for p in path.iterdir() if p.suffix in RULE_SUFFIXES and p.is_file()) if path.is_dir() else [path]
        )
        out.extend(p for p in found if p not in out)
    return out


def _read(path: Path) -> _Source:
    try:
        return _Source(path, path.read_bytes().decode("utf-8"), None)
    except OSError as exc:
        return _Source(path, None, f"{path}:1:1: cannot read: {exc.strerror}")
    except UnicodeDecodeError as exc:
        return _Source(path, None, f"{path}:1:1: not UTF-8 text: {exc.reason} at byte {exc.start}")


def read_rule_sources(paths: Sequence[Path]) -> RuleSources:
    sources = tuple(_read(p) for p in expand_paths(paths))
    digest = hashlib.sha256()
    for src in sources:
        digest.update(str(src.path).encode() + b"\0")
        digest.update((src.text if src.text is not None else f"\0{src.problem}").encode() + b"\0")
    return RuleSources(sources, digest.hexdigest())


def _marks(node: yaml.Node, prefix: tuple[int | str, ...] = ()) -> dict[tuple[int | str, ...], Mark]:
    out = {prefix: (node.start_mark.line + 1, node.start_mark.column + 1)}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out.update(_marks(value, (*prefix, str(key.value))))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.update(_marks(item, (*prefix, i)))
    return out


def _raw_ids(data: object) -> list[tuple[int, str]]:
    """(index, id) of every rule that has a string id, read from the raw YAML even if the file is invalid."""
    rules = data.get("rules") if isinstance(data, dict) else None
    if not isinstance(rules, list):
        return []
    return [(i, r["id"]) for i, r in enumerate(rules) if isinstance(r, dict) and isinstance(r.get("id"), str)]


class _Collector:
    """Parses files one by one, keeping problems and the first place each rule id was seen."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.rules: list[Rule] = []
        self.origins: dict[str, RuleOrigin] = {}
        self.first_seen: dict[str, str] = {}

    def add(self, src: _Source) -> None:
        if src.text is None:
            self.problems.append(str(src.problem))
            return
        name = str(src.path)
        try:
            data, node = load_yaml_text(src.text, name)
        except ConfigError as exc:
            self.problems.extend(exc.problems)
            return
        problems: list[str] = []
        parsed: RuleFile | None = None
        try:
            parsed = RuleFile.model_validate({} if data is None else data)
        except ValidationError as exc:
            problems.extend(validation_problems(exc, node, name, RULE_KINDS))
        if node is not None:
            problems.extend(self._check_ids(data, node, name))
        self.problems.extend(sorted(problems, key=lambda p: _line_col(p, name)))
        if parsed is not None and not problems and node is not None:
            for i, rule in enumerate(parsed.rules):
                self.rules.append(rule)
                self.origins[rule.id] = RuleOrigin(name, i, _marks(node_at(node, ("rules", i))))

    def _check_ids(self, data: object, node: yaml.Node, name: str) -> list[str]:
        problems = []
        for i, rule_id in _raw_ids(data):
            id_node = node_at(node, ("rules", i, "id"))
            where = f"{name}:{id_node.start_mark.line + 1}:{id_node.start_mark.column + 1}"
            first = self.first_seen.setdefault(rule_id, where)
            if first != where:
                problems.append(f"{where}: rules[{i}].id: duplicate rule id {rule_id!r}, first at {first}")
        return problems


def _line_col(problem: str, name: str) -> tuple[int, int]:
    """The line and column of a `name:line:col: ...` problem line."""
    line, col, _ = problem[len(name) + 1 :].split(":", 2)
    return int(line), int(col)


def build_rule_set(sources: RuleSources) -> RuleSet:
    """Validate already-read sources; raise ConfigError listing every problem in every file."""
    collector = _Collector()
    for src in sources.sources:
        collector.add(src)
    if collector.problems:
        raise ConfigError(collector.problems)
    return RuleSet(
        rules=tuple(collector.rules),
        files=tuple(s.path for s in sources.sources),
        digest=sources.digest,
        origins=collector.origins,
    )


def load_rule_files(paths: Sequence[Path]) -> RuleSet:
    """Load rule files and directories of them; raise ConfigError listing every problem in every file."""
    ruleset = build_rule_set(read_rule_sources(paths))
    logger.info("loaded %d rules from %d files", len(ruleset.rules), len(ruleset.files))
    return ruleset


def check_rule_files(paths: Sequence[Path]) -> list[str]:
    """The problems in these rule files, one `file:line:col: path: message` line each; empty when valid."""
    try:
        load_rule_files(paths)
    except ConfigError as exc:
        return list(exc.problems)
    return []
