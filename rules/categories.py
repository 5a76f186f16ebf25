"""The case classification table: major / minor (/ optional third-level) category codes with their names.

The default is the event classes of GB/T 30428.2 (`rules/data/categories.yaml`, with where it comes from); a
city puts its own `categories.yaml` of the same shape in its config folder. Rules name a code; a code the table
lacks is an error at its `file:line:col`.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from core.yamlconf import load_model, parse_model

logger = logging.getLogger(__name__)

DEFAULT_TABLE = "categories.yaml"
Code = Annotated[str, Field(pattern=r"^[0-9]{2}([0-9]{2}){0,2}$")]


class CategoryClass(BaseModel):
    """One class: its code (2 digits for a major class, 4 for a minor one, 6 for a third level), its names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: Code
    zh: str = Field(min_length=1)
    en: str = ""
    children: tuple[CategoryClass, ...] = ()


class CategoryTable(BaseModel):
    """A versioned classification table; `find(code)` gives the class and its parents, major first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    classes: tuple[CategoryClass, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _codes_nest(self) -> CategoryTable:
        seen: set[str] = set()
        stack = [(c, "") for c in self.classes]
        while stack:
            cls, parent = stack.pop()
            if not cls.code.startswith(parent) or len(cls.code) != len(parent) + 2:
                raise PydanticCustomError(
                    "category_nesting",
                    "class {code} is not two digits more than its parent {parent}",
                    {"code": cls.code, "parent": parent or "(top)"},
                )
            if cls.code in seen:
                raise PydanticCustomError("category_duplicate", "class {code} appears twice", {"code": cls.code})
            seen.add(cls.code)
            stack.extend((child, cls.code) for child in cls.children)
        return self

    def find(self, code: str) -> tuple[CategoryClass, ...]:
        """The path from the major class down to `code`; empty when the table lacks it."""
        level = self.classes
        path: list[CategoryClass] = []
        while True:
            match = next((c for c in level if code.startswith(c.code)), None)
            if match is None:
                return ()
            path.append(match)
            if match.code == code:
                return tuple(path)
            level = match.children

    def label(self, code: str) -> str:
        """`05 街面秩序 / 0505 机动车乱停放`, or the bare code when unknown."""
        path = self.find(code)
        return " / ".join(f"{c.code} {c.zh}" for c in path) if path else code


def default_categories() -> CategoryTable:
    text = resources.files("rules").joinpath("data", DEFAULT_TABLE).read_text(encoding="utf-8")
    return parse_model(CategoryTable, text, f"rules/data/{DEFAULT_TABLE}")


def load_categories(config_dir: Path | None) -> CategoryTable:
    """The config folder's `categories.yaml` when there is one, else the GB/T 30428.2 default."""
    path = config_dir / DEFAULT_TABLE if config_dir is not None else None
    if path is not None and path.is_file():
        table = load_model(CategoryTable, path)
        logger.info("categories: %s version %s from %s", table.name, table.version, path)
        return table
    return default_categories()
