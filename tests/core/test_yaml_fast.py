"""`fast_rows` reads the layout gridwatch writes exactly as YAML does, and nothing else; `holds_secret`."""

from __future__ import annotations

import pytest
import yaml

from core.errors import ConfigError
from core.redact import holds_secret
from core.yamlconf import fast_rows, load_yaml_text
from ingest.cameras import Camera
from ingest.fleet_files import render_yaml

AWKWARD = ['say "hi"', "back\\slash", "tab\there", "next\x85line", "line\u2028sep", "东门 🚪", "yes", "null", "001", ""]


def test_awkward_values_read_back_alike_by_yaml_and_the_fast_path() -> None:
    lons = [1e-5, 1.5e-7, -0.0, 180.0, 0.1, 1, 2, 3, 4, 5]
    cameras = [
        Camera(id=f"c{i}", name=name, url="rtsp://h/s", lon=lon, tags=("a b", "c"))
        for i, (name, lon) in enumerate(zip(AWKWARD, lons, strict=True))
    ]
    text = render_yaml(cameras)
    rows = fast_rows(text, "cameras")
    assert rows is not None
    assert rows == yaml.safe_load(text)["cameras"]
    assert [Camera.model_validate(row) for row in rows] == cameras


@pytest.mark.parametrize(
    "text",
    [
        "cameras:\n  - id: a\n",  # a plain scalar
        '# fleet\ncameras:\n  - id: "a"\n',  # a comment
        'cameras:\n  - id: "a"\n    id: "b"\n',  # a key twice
        'cameras:\n  - id: "a"\n    on: 1\n',  # a key YAML 1.1 reads as true
        'cameras:\n  - id: "a"\n    lon: 1e5\n',  # YAML 1.1 reads this as a string
        'cameras:\n  - id: "a", "url": "b"\n',  # not one JSON string
        'cameras:\n  - id: "a\x85"\n',  # a character YAML reads as a line break
        'cameras:\n  - id: "\\x41"\n',  # an escape JSON does not know
        'cameras:\n  - id: "\\ud83d\\udeaa"\n',  # an escaped surrogate pair
        'cameras:\n  - id: "a"\n    tags: [1, 2]\n',
        "cameras:\n",
        'cameras:\n  - id: "a"',  # no last line break
    ],
)
def test_anything_else_is_left_to_yaml(text: str) -> None:
    assert fast_rows(text, "cameras") is None


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("rtsp://admin:${CAM_PW}@10.0.0.1/s", False),
        ("rtsp://admin@10.0.0.1/s", False),
        ("rtsp://10.0.0.1/s?token=${TOKEN}", False),
        ("file:///srv/clips/a@b.mp4", False),
        ("rtsp://admin:hunter2@10.0.0.1/s", True),
        ("rtsp://admin:${A}x@10.0.0.1/s", True),
        ("rtsp://10.0.0.1/s?token=abc", True),
    ],
)
def test_holds_secret(url: str, secret: bool) -> None:
    assert holds_secret(url) is secret


def _aliased(own_items: int, copies: int) -> str:
    """A list of `own_items` numbers, anchored once and aliased `copies` times."""
    return f"base: &b [{', '.join(['1'] * own_items)}]\ncopies: [{', '.join(['*b'] * copies)}]\n"


def test_the_alias_limit_scales_with_the_document() -> None:
    # about 60,000 nodes of its own, about 10x that once expanded: more than ALIAS_FACTOR x its size
    with pytest.raises(ConfigError, match="too large: more than 240020 values once aliases are expanded"):
        load_yaml_text(_aliased(60_000, 10), "f.yaml")
    # the same nodes aliased twice: three times its size, and more than MAX_NODES, is a real document
    data, _ = load_yaml_text(_aliased(60_000, 2), "f.yaml")
    assert isinstance(data, dict) and len(data["copies"]) == 2


def test_a_merge_key_bomb_is_refused_before_it_is_built() -> None:
    levels = ["a0: &a0 {k0: lol, k1: lol, k2: lol, k3: lol, k4: lol, k5: lol, k6: lol, k7: lol, k8: lol, k9: lol}"]
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 7)]
    with pytest.raises(ConfigError, match="too large"):
        load_yaml_text("\n".join(levels) + "\nb:\n  <<: *a0\n  c: *a6\n", "f.yaml")
    data, _ = load_yaml_text("a: &a {x: 1}\nb:\n  <<: *a\n  y: 2\n", "f.yaml")
    assert data == {"a": {"x": 1}, "b": {"x": 1, "y": 2}}
