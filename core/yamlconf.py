"""Load YAML into strict pydantic models and report every problem as `file:line:col: path: message`.

The YAML node tree is kept beside the data, so a pydantic error location such as
`("rules", 1, "zone_intrusion", "max_dwell_s")` is walked back to the node that caused it. A tag that a
discriminated union adds to the location (`zone_intrusion` above) has no node of its own and is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
Loc = Sequence[int | str]


def mark_of(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _check_duplicate_keys(node: yaml.Node, path: str, problems: list[str], seen_nodes: set[int]) -> None:
    if id(node) in seen_nodes:  # an alias: its node was checked where it was defined
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                line, col = mark_of(key)
                problems.append(f"{path}:{line}:{col}: {name}: duplicate key")
            seen.add(name)
            _check_duplicate_keys(value, path, problems, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(item, path, problems, seen_nodes)


def node_at(root: yaml.Node, loc: Loc, *, key_node: bool = False) -> yaml.Node:
    """The deepest node along `loc`; with `key_node`, the key of the last mapping entry (for extra keys)."""
    node = root
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
            if match is None:
                continue  # a union tag or a missing key: stay on the mapping
            node = match[0] if (last and key_node) else match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
        # scalars: deeper parts (e.g. a validator's own index) stay on the scalar
    return node


def format_loc(loc: Loc, skip: frozenset[str] = frozenset()) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in skip:
            continue
        else:
            out += ("." if out else "") + part
    return out or "(top)"


MAX_NODES = 100_000  # a config file past this, aliases expanded, is refused (alias bombs, runaway files)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes in the document with every alias expanded, counted without expanding (memoised per node)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = MAX_NODES + 1  # a node reached again while being counted is a cycle: too large
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(item, memo) for item in node.value)
    else:
        size = 1
    memo[id(node)] = min(size, MAX_NODES + 1)
    return memo[id(node)]


def _compose(text: str, path: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "1:1"
        raise ConfigError([f"{path}:{where}: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:  # e.g. a control character: the reader's error has a character offset
        pos = getattr(exc, "position", 0)
        line, col = text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
        reason = getattr(exc, "reason", "not readable YAML")
        raise ConfigError([f"{path}:{line}:{col}: {reason}"]) from None
    except RecursionError:
        raise ConfigError([f"{path}:1:1: nested too deeply"]) from None


def load_yaml_text(text: str, path: str) -> tuple[object, yaml.Node | None]:
    """Parse one YAML document; syntax errors, duplicate keys and oversized documents become a ConfigError."""
    node = _compose(text, path)
    if node is None:
        return None, None
    if _expanded_size(node, {}) > MAX_NODES:
        raise ConfigError([f"{path}:1:1: too large: more than {MAX_NODES} values once aliases are expanded"])
    problems: list[str] = []
    try:
        _check_duplicate_keys(node, path, problems, set())
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError([f"{path}:1:1: nested too deeply"]) from None
    if problems:
        raise ConfigError(problems)
    return data, node


def validation_problems(
    exc: ValidationError, node: yaml.Node | None, path: str, tags: frozenset[str] = frozenset()
) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        if node is None:
            line, col = 1, 1
        else:
            line, col = mark_of(node_at(node, loc, key_node=err["type"] == "extra_forbidden"))
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "extra key not allowed"
        problems.append(f"{path}:{line}:{col}: {format_loc(loc, tags)}: {message}")
    return problems


def parse_model(model: type[M], text: str, path: str, tags: frozenset[str] = frozenset()) -> M:
    """Validate YAML `text` as `model`; raise ConfigError with one line per problem."""
    data, node = load_yaml_text(text, path)
    try:
        return model.model_validate({} if data is None else data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, node, path, tags)) from None


def load_model(model: type[M], file: Path, tags: frozenset[str] = frozenset()) -> M:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{file}:1:1: cannot read: {exc.strerror}"]) from None
    return parse_model(model, text, str(file), tags)
