"""Load YAML into strict pydantic models and report every problem as `file:line:col: path: message`.

The YAML node tree is kept beside the data, so a pydantic error location such as
`("rules", 1, "zone_intrusion", "max_dwell_s")` is walked back to the node that caused it. A tag that a
discriminated union adds to the location (`zone_intrusion` above) has no node of its own and is skipped.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


MAX_NODES = 100_000  # aliases may expand a document to this many values, or to ALIAS_FACTOR x its own nodes
ALIAS_FACTOR = 4  # so a real fleet of 100,000 cameras loads, and an alias bomb (billion laughs) is refused
_STR, _MAP, _SEQ, _MERGE = (f"tag:yaml.org,2002:{t}" for t in ("str", "map", "seq", "merge"))


try:  # libyaml: about 5x faster than PyYAML's pure-Python parser
    from yaml import CSafeLoader as _SafeBase
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _SafeBase  # type: ignore[assignment]


class _FastLoader(_SafeBase):
    """The safe loader (libyaml's where PyYAML has it), its tag resolution without the path resolvers it has
    none of: called once a node, this is a third of the time libyaml takes."""

    def descend_resolver(self, current_node: object, current_index: object) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass

    def resolve(self, kind: type[yaml.Node], value: object, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0] and isinstance(value, str):
                for tag, regexp in self.yaml_implicit_resolvers.get(value[:1], []):
                    if regexp.match(value):
                        return str(tag)
            return _STR
        return _SEQ if kind is yaml.SequenceNode else _MAP


class _FallbackError(Exception):
    """A merge key or a collection tag that the fast constructor leaves to PyYAML's own."""


@contextmanager
def gc_paused() -> Iterator[None]:
    """Millions of YAML nodes make the cyclic collector run again and again for nothing: pause it meanwhile."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _expanded_size(node: yaml.Node, memo: dict[int, int], limit: int) -> int:
    """Nodes in the document with every alias expanded, counted without expanding (memoised per node)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = limit + 1  # a node reached again while being counted is a cycle: too large
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo, limit) + _expanded_size(v, memo, limit) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(item, memo, limit) for item in node.value)
    else:
        size = 1
    memo[id(node)] = min(size, limit + 1)
    return memo[id(node)]


def _yaml_problem(exc: yaml.YAMLError, text: str, path: str) -> ConfigError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "1:1"
        return ConfigError([f"{path}:{where}: {exc.problem or exc.context}"])
    pos = getattr(exc, "position", 0)  # e.g. a control character: the reader's error has a character offset
    line, col = text.count("\n", 0, pos) + 1, pos - text.rfind("\n", 0, pos)
    return ConfigError([f"{path}:{line}:{col}: {getattr(exc, 'reason', 'not readable YAML')}"])


def _compose(text: str, path: str) -> yaml.Node | None:
    """libyaml's composer where PyYAML has it (about 5x faster); a document it refuses is parsed again by the
    pure-Python one, whose messages the docs and tests quote."""
    try:
        try:
            return yaml.compose(text, Loader=_FastLoader)
        except yaml.YAMLError as fast_exc:
            yaml.compose(text, Loader=yaml.SafeLoader)  # raises, with the message users know
            raise fast_exc from None
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc, text, path) from None
    except RecursionError:
        raise ConfigError([f"{path}:1:1: nested too deeply"]) from None


class _Builder:
    """Python objects from the node tree, as `yaml.safe_load` builds them, in one pass that also finds duplicate
    keys and counts the document's own nodes (an aliased collection is built once and shared, never expanded)."""

    def __init__(self, path: str) -> None:
        self.path, self.problems, self.memo = path, list[str](), dict[int, object]()
        self.scalars, self.aliased = 0, False
        self.loader = yaml.SafeLoader("")
        self.makers = self.loader.yaml_constructors

    def build(self, node: yaml.Node) -> object:
        if isinstance(node, yaml.ScalarNode):  # scalars are immutable: an alias of one costs what a copy does
            self.scalars += 1
            if node.tag == _STR:
                return node.value
            make = self.makers.get(node.tag)
            return make(self.loader, node) if make else self.loader.construct_object(node)
        known = self.memo.get(id(node))
        if known is not None:
            self.aliased = True
            return known
        if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
            items = list[object]()
            self.memo[id(node)] = items  # before its items: a sequence may hold an alias of itself
            items.extend([self.build(item) for item in node.value])
            return items
        if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
            return self._mapping(node)
        raise _FallbackError

    def _mapping(self, node: yaml.MappingNode) -> dict[object, object]:
        out: dict[object, object] = {}
        self.memo[id(node)] = out
        seen: set[str] = set()
        for key, value in node.value:
            if key.tag == _MERGE or not isinstance(key, yaml.ScalarNode):
                raise _FallbackError
            if key.value in seen:
                line, col = mark_of(key)
                self.problems.append(f"{self.path}:{line}:{col}: {key.value}: duplicate key")
            seen.add(key.value)
            out[self.build(key)] = self.build(value)
        return out


def _own_nodes(root: yaml.Node) -> int:
    """Distinct nodes in the document: what it holds before any alias is expanded."""
    seen, stack = {id(root)}, [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            continue
        children = [c for kv in node.value for c in kv] if isinstance(node, yaml.MappingNode) else node.value
        for child in children:
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return len(seen)


def _check_size(node: yaml.Node, own: int, path: str) -> None:
    limit = max(MAX_NODES, ALIAS_FACTOR * own)
    if _expanded_size(node, {}, limit) > limit:
        raise ConfigError([f"{path}:1:1: too large: more than {limit} values once aliases are expanded"])


def _construct(node: yaml.Node, path: str) -> tuple[object, list[str]]:
    """The data and the document's duplicate keys; ConfigError if aliases expand it too far."""
    builder = _Builder(path)
    try:
        data = builder.build(node)
    except _FallbackError:  # checked before PyYAML builds it: merge keys copy what they merge
        _check_size(node, _own_nodes(node), path)
        problems: list[str] = []
        _check_duplicate_keys(node, path, problems, set())
        return yaml.SafeLoader("").construct_document(node), problems
    if builder.aliased:
        _check_size(node, len(builder.memo) + builder.scalars, path)
    return data, builder.problems


def load_yaml_text(text: str, path: str) -> tuple[object, yaml.Node | None]:
    """Parse one YAML document; syntax errors, duplicate keys and oversized documents become a ConfigError.

    Aliases may expand the document to `MAX_NODES` values or to `ALIAS_FACTOR` times its own node count,
    whichever is more: a large file loads, a small file that aliases expand a thousandfold does not."""
    with gc_paused():
        node = _compose(text, path)
        if node is None:
            return None, None
        try:
            data, problems = _construct(node, path)
        except RecursionError:
            raise ConfigError([f"{path}:1:1: nested too deeply"]) from None
        except yaml.YAMLError as exc:  # a tag PyYAML's safe constructor refuses
            raise _yaml_problem(exc, text, path) from None
    if problems:
        raise ConfigError(problems)
    return data, node


# The one layout `fast_rows` reads: `KEY:`, then rows of `  - field: value` and `    field: value` lines, each
# value a JSON string, an integer, a float with a dot, true, false, null or a list of strings: JSON and YAML
# read these alike. Not: keys YAML 1.1 reads as booleans or null, characters it refuses or reads as line breaks
# (JSON takes them), escaped surrogates (JSON joins them, PyYAML does not).
_STRING = r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"'
_VALUE = (
    rf"(?:{_STRING}|true|false|null|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][-+][0-9]+)?)?"
    rf"|\[(?: *{_STRING}(?: *, *{_STRING})*)? *\])"
)
_FIELD = rf"(?!(?:y|n|yes|no|on|off|true|false|null):)[a-z_][a-z0-9_]*: {_VALUE} *\n"
_ROWS = re.compile(rf"(?:  - {_FIELD}(?:    {_FIELD})*)+")
_NOT_JSON_SAFE = re.compile(
    r"[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]|\\u[dD][89a-fA-F]"
)
_NEXT_FIELD = re.compile(r"^    ([a-z_][a-z0-9_]*): ", re.MULTILINE)
_NEXT_ROW = re.compile(r"^  - ([a-z_][a-z0-9_]*): ", re.MULTILINE)


def fast_rows(text: str, key: str) -> list[dict[str, object]] | None:
    """The rows of a document in the layout gridwatch writes (above), read as one JSON text: about ten times
    faster than YAML. None for any other document, which `load_yaml_text` then reads; both read such a
    document to the same data. No lines are kept: a caller re-reads a document that holds a problem."""
    head = f"{key}:\n"
    if not text.startswith(head) or not _ROWS.fullmatch(text, len(head)) or _NOT_JSON_SAFE.search(text):
        return None
    body = _NEXT_ROW.sub(r'},{"\1":', _NEXT_FIELD.sub(r',"\1":', text[len(head) :]))
    try:
        rows = json.loads(f"[{body[2:]}}}]")
    except ValueError:  # an escape JSON does not know
        return None
    fields = text.count("\n  - ") + text.count("\n    ")
    if not isinstance(rows, list) or sum(len(row) for row in rows) != fields:  # a key given twice in a row
        return None
    return rows


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
