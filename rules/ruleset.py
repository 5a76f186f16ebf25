"""A loaded set of rules and where each was written, so later checks can point at `file:line:col`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.yamlconf import Loc, format_loc

if TYPE_CHECKING:
    from rules.registry import Rule

Mark = tuple[int, int]


@dataclass(frozen=True, slots=True)
class RuleOrigin:
    """Where a rule was written: its file, its index in `rules`, and the line:col of every node inside it."""

    file: str
    index: int
    marks: Mapping[tuple[int | str, ...], Mark] = field(default_factory=dict, compare=False, hash=False)

    def locate(self, loc: Loc = ()) -> str:
        """`file:line:col: rules[i].loc` for the deepest part of `loc` that has a node."""
        parts = tuple(loc)
        while parts and parts not in self.marks:
            parts = parts[:-1]
        line, col = self.marks.get(parts, (1, 1))
        return f"{self.file}:{line}:{col}: {format_loc(('rules', self.index, *loc))}"


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Valid rules from a set of files. `digest` changes whenever any file's path or content changes."""

    rules: tuple[Rule, ...]
    files: tuple[Path, ...]
    digest: str
    origins: Mapping[str, RuleOrigin] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def empty(cls) -> RuleSet:
        return cls(rules=(), files=(), digest=hashlib.sha256().hexdigest())

    def locate(self, rule_id: str, loc: Loc = ()) -> str:
        """`file:line:col: rules[i].loc` where the rule came from a file, else `rule 'id': loc`."""
        origin = self.origins.get(rule_id)
        if origin is None:
            return f"rule {rule_id!r}: {format_loc(loc)}"
        return origin.locate(loc)
