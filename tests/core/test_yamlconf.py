"""Hostile or broken YAML becomes a ConfigError with a place, never a crash or a hang."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.yamlconf import load_yaml_text

BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules:\n  - id: a\x07b\n", "f.yaml:2:10: special characters are not allowed"),
        ("rules: " + "[" * 3000 + "]" * 3000 + "\n", "f.yaml:1:1: nested too deeply"),
        (BOMB, "f.yaml:1:1: too large: more than 100000 values once aliases are expanded"),
        ("a: 1\na: 2\n", "f.yaml:2:1: a: duplicate key"),
    ],
    ids=["control character", "deep nesting", "alias bomb", "duplicate key"],
)
def test_bad_yaml_is_a_config_error_with_its_place(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_yaml_text(text, "f.yaml")
    assert err.value.problems == [expected]


def test_small_aliases_still_work() -> None:
    data, _ = load_yaml_text("base: &b {x: 1}\nother: *b\n", "f.yaml")
    assert data == {"base": {"x": 1}, "other": {"x": 1}}
