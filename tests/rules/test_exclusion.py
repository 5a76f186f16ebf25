"""Exclusions: detections anchored in a confirmed mask are taken out before the rule sees them."""

from __future__ import annotations

import pytest

from rules.exclusion import Exclusion, mask_from_box
from tests.rules.builders import Box, make_detections


@pytest.mark.parametrize(
    ("anchor", "box", "suppressed"),
    [
        ("bottom_center", (100, 100, 200, 300), True),  # bottom centre (150, 300) in the mask
        ("bottom_center", (100, 100, 200, 500), False),  # (150, 500) below it
        ("top_center", (100, 100, 200, 500), True),
        ("any_corner", (100, 100, 200, 500), True),  # the whole-box rules use the box's centre (150, 300)
        ("center", (400, 100, 500, 300), False),
    ],
)
def test_the_rules_anchor_decides(anchor: str, box: tuple[int, int, int, int], suppressed: bool) -> None:
    mask = mask_from_box(90, 90, 210, 310, 640, 480, pad=0.0)
    exclusion = Exclusion([mask], anchor)  # type: ignore[arg-type]
    dets = make_detections(Box(*box))
    assert exclusion.suppressed(640, 480, dets).tolist() == [suppressed]


def test_a_mask_from_a_box_is_grown_and_clipped_to_the_frame() -> None:
    assert mask_from_box(0, 40, 100, 140, 200, 200) == ((0.0, 0.15), (0.55, 0.15), (0.55, 0.75), (0.0, 0.75))
    with pytest.raises(ValueError, match="is empty"):
        mask_from_box(10, 10, 10, 20, 200, 200)
