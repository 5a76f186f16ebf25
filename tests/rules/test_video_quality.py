"""`video_quality` on the shared footage: the clean clip raises nothing from its first keyframe to its last;
black, no-signal, frozen, blurred, covered and shifted versions of its keyframes each fire their own check."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from core.types import Detections, Image, Overlay, Verdict
from rules.engine import RuleEngine
from rules.kinds.video_quality import VideoQuality, VideoQualityRule
from rules.loader import check_rule_files
from rules.quality_state import QualityState, load_state, save_state
from rules.registry import KINDS
from rules.ruleset import RuleSet
from tests.rules.builders import LABELS, T0, observation

Degrade = Callable[[Image, np.random.Generator], Image]
KEYS = (8, 23, 39)  # keyframes judged after the reference is learned on keyframes 0-2


@pytest.fixture(scope="module")
def frames(footage_path: Path) -> list[Image]:
    """The 40 keyframes of the shared footage, decoded alone."""
    with av.open(str(footage_path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        decoded = [np.asarray(f.to_ndarray(format="bgr24"), np.uint8) for f in container.decode(stream)]
    assert len(decoded) == 40
    return decoded


def rule(**fields: Any) -> VideoQualityRule:
    """A rule that judges every visit (visits here are a minute apart), unless `check_every_s` is given."""
    return VideoQualityRule.model_validate(
        {"id": "camera-health", "kind": "video_quality", "check_every_s": 0, **fields}
    )


def visit(kind: VideoQuality, image: Image, state: object | None, n: int = 0) -> tuple[list[Verdict], object]:
    obs = observation(Detections.empty(), at=T0 + timedelta(minutes=n), images=[image])
    result = kind.evaluate(obs, state)
    assert result.state is not None
    return result.verdicts, result.state


def learned(kind: VideoQuality, frames: Sequence[Image]) -> object:
    state: object | None = None
    for image in frames[:3]:
        _, state = visit(kind, image, state)
    assert state is not None
    return state


def fired(verdicts: list[Verdict]) -> list[str]:
    return [v.key for v in verdicts if v.fired]


def test_the_whole_clean_clip_raises_nothing(frames: list[Image]) -> None:
    # given: one camera visited keyframe by keyframe, first to last
    kind = VideoQuality(rule())
    state: object | None = None
    reasons = []
    for n, image in enumerate(frames):
        # when
        verdicts, state = visit(kind, image, state, n)
        # then: one verdict a visit, not fired
        [verdict] = verdicts
        assert (verdict.fired, verdict.key, verdict.zone) == (False, "", None), verdict.reason
        reasons.append(verdict.reason)
    assert reasons[:3] == [f"learning the reference view: {i} of 3 visits" for i in (1, 2, 3)]
    assert set(reasons[3:]) == {"picture ok: no_signal, black, frozen, blurred, covered, shifted pass"}


def _noisy(image: Image, rng: np.random.Generator, sigma: float, gain: float = 1.0) -> Image:
    noise = rng.normal(0.0, sigma, image.shape[:2])[..., None]
    return np.clip(image.astype(np.float32) * gain + noise, 0, 255).astype(np.uint8)


def _no_video(image: Image, bgr: tuple[int, int, int]) -> Image:
    out = np.empty_like(image)
    out[:] = bgr
    cv2.putText(out, "NO SIGNAL", (220, 300), cv2.FONT_HERSHEY_SIMPLEX, 2.5, (255, 255, 255), 5)
    cv2.putText(out, "2026-05-04 17:00:00", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255), 2)
    return out


def _cover_right_half(image: Image, _: np.random.Generator) -> Image:
    out = image.copy()
    out[:, image.shape[1] // 2 :] = (90, 90, 90)
    return out


def _cover_top_two_thirds_dark(image: Image, rng: np.random.Generator) -> Image:
    out = image.copy()
    h = image.shape[0] * 2 // 3
    cloth = cv2.GaussianBlur(rng.normal(30.0, 10.0, (h, image.shape[1])).astype(np.float32), (0, 0), 1.0)
    out[:h] = np.clip(cloth, 0, 255).astype(np.uint8)[..., None]
    return out


def _hand(image: Image, _: np.random.Generator) -> Image:
    """A hand over the lens: a dark, out-of-focus blob over most of the lower left."""
    mask = np.zeros(image.shape[:2], np.float32)
    cv2.ellipse(mask, (250, 400), (380, 300), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 25)[..., None]
    skin = np.array([35, 45, 70], np.float32)
    return (image * (1 - mask) + skin * mask).astype(np.uint8)


def _warp(image: Image, dx: float = 0.0, angle: float = 0.0, scale: float = 1.0) -> Image:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    matrix[0, 2] += dx * w
    return np.asarray(cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT), np.uint8)


DEGRADED: list[tuple[str, Degrade, str]] = [
    ("black", lambda im, _: np.zeros_like(im), "black"),
    ("video-range black with noise", lambda im, rng: _noisy(np.full_like(im, 16), rng, 2.0), "black"),
    ("grey no-signal screen", lambda im, _: _no_video(im, (128, 128, 128)), "no_signal"),
    ("blue no-video screen", lambda im, rng: _noisy(_no_video(im, (170, 70, 10)), rng, 1.5), "no_signal"),
    ("blurred sigma 3", lambda im, _: np.asarray(cv2.GaussianBlur(im, (0, 0), 3.0), np.uint8), "blurred"),
    ("blurred sigma 6", lambda im, _: np.asarray(cv2.GaussianBlur(im, (0, 0), 6.0), np.uint8), "blurred"),
    ("right half painted grey", _cover_right_half, "covered"),
    ("top two thirds under dark cloth", _cover_top_two_thirds_dark, "covered"),
    ("hand over the lens", _hand, "covered"),
    ("panned 8% left", lambda im, _: _warp(im, dx=-0.08), "shifted"),
    ("rotated 5 degrees", lambda im, _: _warp(im, angle=-5.0), "shifted"),
    ("zoomed in 10%", lambda im, _: _warp(im, scale=1.1), "shifted"),
]


@pytest.mark.parametrize(("name", "degrade", "check"), DEGRADED, ids=[d[0] for d in DEGRADED])
@pytest.mark.parametrize("k", KEYS)
def test_a_degraded_stream_fires_its_own_check_only(
    frames: list[Image], name: str, degrade: Degrade, check: str, k: int
) -> None:
    # given: the reference learned on clean keyframes, then the camera degrades
    kind = VideoQuality(rule())
    state = learned(kind, frames)
    rng = np.random.default_rng(k)
    # when / then: three visits of the degraded stream, each fires the one check
    for n, i in enumerate((k - 2, k - 1, k)):
        verdicts, state = visit(kind, degrade(frames[i], rng), state, n)
        assert fired(verdicts) == [check], [v.reason for v in verdicts]


def _rendition(image: Image, rng: np.random.Generator) -> Image:
    """The same picture again, as an encoder re-encodes a frozen frame: JPEG at a random quality."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(80, 96))])
    assert ok
    return np.asarray(cv2.imdecode(data, cv2.IMREAD_COLOR), np.uint8)


@pytest.mark.parametrize("k", KEYS)
def test_a_frozen_picture_fires_on_its_third_visit_and_stops_when_it_moves(frames: list[Image], k: int) -> None:
    kind = VideoQuality(rule())
    state = learned(kind, frames)
    rng = np.random.default_rng(k)
    seen = []
    for n in range(4):
        verdicts, state = visit(kind, _rendition(frames[k], rng), state, n)
        seen.append(fired(verdicts))
    assert seen == [[], [], ["frozen"], ["frozen"]]  # the first visit still differs from keyframe 2
    [verdict] = [v for v in verdicts if v.fired]
    assert verdict.measures["same_visits"] == 4.0 and verdict.measures["change"] <= 0.19
    assert verdict.reason.startswith("frozen picture: the same picture on 4 visits in a row (it changed 0.")
    assert verdict.overlay == Overlay(note="frozen")
    # when the picture moves again
    verdicts, state = visit(kind, frames[k - 1], state, 5)
    assert fired(verdicts) == []


@pytest.mark.parametrize("k", KEYS)
def test_a_static_dim_scene_with_sensor_noise_is_not_frozen(frames: list[Image], k: int) -> None:
    # given: an empty scene at dusk, nothing moving: only sensor noise differs from visit to visit
    kind = VideoQuality(rule())
    state = learned(kind, frames)
    rng = np.random.default_rng(k)
    for n in range(6):
        dusk = _rendition(_noisy(frames[k], rng, 2.0, gain=0.35), rng)
        verdicts, state = visit(kind, dusk, state, n)
        assert fired(verdicts) == [], [v.reason for v in verdicts]


def test_verdicts_say_the_figure_and_the_threshold(frames: list[Image]) -> None:
    kind = VideoQuality(rule())
    state = learned(kind, frames)
    [black], _ = visit(kind, np.zeros_like(frames[5]), state)
    assert (black.fired, black.key, black.zone, black.measures) == (True, "black", None, {"mean_luma": 0.0, "max": 25})
    assert black.reason == "black picture: mean brightness 0.0 of 255, at most 25 is black"
    assert black.overlay == Overlay(note="black")
    [blurred], _ = visit(kind, np.asarray(cv2.GaussianBlur(frames[5], (0, 0), 3.0), np.uint8), state)
    assert blurred.reason == "blurred picture: sharpness 5% of this camera's reference view (below 20% is blurred)"


def test_covered_cells_are_the_regions(frames: list[Image]) -> None:
    kind = VideoQuality(rule())
    state = learned(kind, frames)
    [covered], _ = visit(kind, _cover_right_half(frames[20], np.random.default_rng(0)), state)
    assert covered.key == "covered" and covered.overlay is not None and covered.overlay.note == "covered"
    assert covered.measures["covered_share"] >= 0.45
    assert covered.overlay.regions and all(x1 >= 0.5 and x2 == 1.0 for x1, _, x2, _ in covered.overlay.regions)
    assert covered.reason.startswith("view covered: ") and "from 30% it is covered" in covered.reason


def test_a_shifted_view_says_how_far_and_that_zones_may_no_longer_fit(frames: list[Image]) -> None:
    kind = VideoQuality(rule())
    state = learned(kind, frames)
    [shifted], _ = visit(kind, _warp(frames[20], dx=-0.08), state)
    assert shifted.key == "shifted" and shifted.measures["similarity"] < 0.55
    assert shifted.measures["dx"] == pytest.approx(-0.08, abs=0.03)
    assert shifted.measures["dy"] == pytest.approx(0.0, abs=0.03)
    assert shifted.reason.endswith("zones drawn on the old view may no longer fit")
    assert shifted.overlay is not None and shifted.overlay.regions


def test_checks_can_be_turned_off(frames: list[Image]) -> None:
    # given: only the picture-level checks
    kind = VideoQuality(rule(checks=["black", "no_signal"]))
    state = learned(kind, frames)
    verdicts, _ = visit(kind, np.asarray(cv2.GaussianBlur(frames[9], (0, 0), 6.0), np.uint8), state)
    assert fired(verdicts) == []
    # a black picture with black off is still no picture: no signal says so
    kind = VideoQuality(rule(checks=["no_signal", "blurred"]))
    verdicts, _ = visit(kind, np.zeros_like(frames[9]), learned(kind, frames))
    assert fired(verdicts) == ["no_signal"]


def test_black_visits_teach_no_reference(frames: list[Image]) -> None:
    kind = VideoQuality(rule())
    state: object | None = None
    for image in (np.zeros_like(frames[0]), np.zeros_like(frames[0])):
        verdicts, state = visit(kind, image, state)
        assert fired(verdicts) == ["black"]
    reasons = []
    for image in frames[:4]:
        verdicts, state = visit(kind, image, state)
        reasons.append(verdicts[0].reason)
    assert reasons[2:] == ["learning the reference view: 3 of 3 visits", reasons[3]]
    assert reasons[3].startswith("picture ok")


def test_thresholds_tune_each_check(frames: list[Image]) -> None:
    # a gentle blur passes the default but not a stricter ratio; a longer frozen_visits waits longer
    soft = np.asarray(cv2.GaussianBlur(frames[12], (0, 0), 1.0), np.uint8)
    assert fired(visit(VideoQuality(rule()), soft, learned(VideoQuality(rule()), frames))[0]) == []
    strict = VideoQuality(rule(blurred_min_ratio=0.6))
    assert fired(visit(strict, soft, learned(strict, frames))[0]) == ["blurred"]
    patient = VideoQuality(rule(frozen_visits=5))
    state = learned(patient, frames)
    seen = []
    for n in range(5):
        verdicts, state = visit(patient, frames[12], state, n)
        seen.append(fired(verdicts))
    assert seen == [[], [], [], [], ["frozen"]]


def test_other_resolutions_and_aspect_ratios(frames: list[Image]) -> None:
    kind = VideoQuality(rule())
    wide = [np.asarray(cv2.resize(f, (1280, 720)), np.uint8) for f in frames]
    state = learned(kind, wide)
    for n, image in enumerate(wide[3:12]):
        verdicts, state = visit(kind, image, state, n)
        assert fired(verdicts) == []
    verdicts, state = visit(kind, np.asarray(cv2.GaussianBlur(wide[12], (0, 0), 8.0), np.uint8), state)
    assert fired(verdicts) == ["blurred"]


def _summary(verdicts: list[Verdict]) -> list[tuple[Any, ...]]:
    return [(v.fired, v.key, v.measures, v.reason, v.overlay) for v in verdicts]


def test_state_is_small_and_survives_a_restart(frames: list[Image]) -> None:
    # given: a learned camera
    kind = VideoQuality(rule())
    state = learned(kind, frames)
    assert isinstance(state, QualityState) and state.reference is not None and state.previous is not None
    ref = state.reference
    size = sum(a.nbytes for a in (ref.thumb, ref.cell_lap, ref.cell_std, ref.cell_mean, state.previous))
    assert size <= 7 * 1024
    # when: saved as JSON and loaded again
    spec = KINDS["video_quality"]
    assert spec.save_state is save_state and spec.load_state is load_state
    restored = load_state(json.loads(json.dumps(save_state(state))))
    # then: it judges a shifted view the same way
    shifted = _warp(frames[30], angle=5.0)
    assert _summary(visit(kind, shifted, restored)[0]) == _summary(visit(kind, shifted, state)[0])
    assert load_state(save_state(QualityState())) == QualityState()
    with pytest.raises(TypeError, match="not a video_quality state: dict"):
        save_state({})
    damaged = save_state(state)
    damaged["reference"]["thumb"] = damaged["reference"]["thumb"][:-8]
    with pytest.raises(ValueError, match="expected 3072 bytes for a 64x48 array, got 3066"):
        load_state(damaged)


def test_the_engine_keeps_the_state_between_visits(frames: list[Image]) -> None:
    engine = RuleEngine(RuleSet(rules=(rule(),), files=(), digest="0" * 64), LABELS)
    seen = []
    for n, image in enumerate([*frames[:3], frames[3], frames[3], frames[3]]):
        [outcome] = engine.observe(observation(Detections.empty(), at=T0 + timedelta(minutes=n), images=[image]))
        seen.append([v.key for v in outcome.fired])
    assert seen == [[], [], [], [], [], ["frozen"]]


def test_between_checks_the_last_judgement_is_repeated(frames: list[Image]) -> None:
    # given: a rule that judges every 5 minutes, a camera that has learned its view, visits a minute apart
    kind = VideoQuality(rule(check_every_s=300))
    state: object | None = None
    for n in range(0, 15, 5):
        _, state = visit(kind, frames[n], state, n)
    # when: the lens is covered at minute 16; the next check is at minute 15 + 5 = 20
    black = np.zeros_like(frames[0])
    verdicts, state = visit(kind, frames[15], state, 15)
    seen = [fired(verdicts)]
    for n in range(16, 22):
        verdicts, state = visit(kind, black, state, n)
        seen.append(fired(verdicts))
    # then: minutes 16-19 repeat the check of minute 15; minute 20 judges the black picture, minute 21 repeats it
    assert seen == [[], [], [], [], [], ["black"], ["black"]]


def test_the_documented_example_is_valid(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
    text = docs.read_text(encoding="utf-8")
    start = text.index("```yaml\n# Camera health", text.index("## `video_quality`"))
    example = text[start + len("```yaml\n") : text.index("```\n", start + 8)]
    file = tmp_path / "health.yaml"
    file.write_text(example, encoding="utf-8")
    assert check_rule_files([file]) == []
