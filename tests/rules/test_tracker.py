"""The burst / stream tracker on built detections: IoU, two-stage association, confirmation, ageing, gaps."""

from __future__ import annotations

import numpy as np
import pytest

from core.geometry import iou_matrix
from core.types import Detections
from rules.tracker import Step, Tracker, TrackerConfig, Tracks, greedy_match
from tests.rules.builders import Box, make_detections


def person(x: float, y: float = 300.0, conf: float = 0.9, label: str = "person") -> Box:
    """A 40x100 box whose bottom centre is (x, y)."""
    return Box(x - 20, y - 100, x + 20, y, label, conf)


def run(frames: list[list[Box]], tracker: Tracker | None = None, step_s: float = 0.1) -> tuple[Tracks, list[Step]]:
    tracker = tracker or Tracker()
    return tracker.run([(make_detections(*boxes), i * step_s) for i, boxes in enumerate(frames)])


@pytest.mark.parametrize(
    ("a", "b", "iou"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),
        ((0, 0, 10, 10), (5, 0, 15, 10), 50 / 150),
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),  # touching edges share no area
        ((0, 0, 0, 0), (0, 0, 0, 0), 0.0),  # degenerate boxes: no division by zero
    ],
)
def test_iou(a: tuple[float, ...], b: tuple[float, ...], iou: float) -> None:
    got = iou_matrix(np.array([a], np.float32), np.array([b], np.float32))
    assert got.shape == (1, 1) and got[0, 0] == pytest.approx(iou)


def test_iou_matrix_is_every_pair() -> None:
    a = np.array([[0, 0, 10, 10], [100, 100, 110, 110]], np.float32)
    b = np.array([[100, 100, 110, 110], [0, 0, 10, 10], [5, 0, 15, 10]], np.float32)
    assert iou_matrix(a, b).round(3).tolist() == [[0.0, 1.0, 0.333], [1.0, 0.0, 0.0]]
    assert iou_matrix(a[:0], b).shape == (0, 3)


def test_greedy_match_takes_the_best_pair_first() -> None:
    score = np.array([[0.5, 0.9], [0.4, 0.8], [0.1, 0.1]])
    rows, cols = greedy_match(score, threshold=0.3)
    assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 1), (1, 0)]


def test_a_track_is_confirmed_on_its_second_frame() -> None:
    _, steps = run([[person(100)], [person(105)], [person(110)]])
    assert [s.ids.tolist() for s in steps] == [[1], [1], [1]]
    assert [s.confirmed.tolist() for s in steps] == [[False], [True], [True]]
    dets = steps[0].detections(make_detections(person(100)))
    assert dets.track_id is not None and dets.track_id.tolist() == [-1]


def test_two_people_walking_past_each_other_keep_their_ids() -> None:
    # given: one walks right on y=300, one walks left on y=360, their x crossing mid-way
    frames = [[person(100 + 10 * i), person(200 - 10 * i, 360)] for i in range(11)]
    # when
    _, steps = run(frames)
    # then
    assert all(s.ids.tolist() == [1, 2] for s in steps)


def test_weak_detections_keep_a_track_alive_but_start_none() -> None:
    # given: a confident person, then three frames where the detector is unsure of it, and a weak stranger
    frames = [[person(100)], [person(104)], *([person(108 + 4 * i, conf=0.3), person(400, conf=0.3)] for i in range(3))]
    # when
    tracks, steps = run(frames, Tracker(TrackerConfig(high=0.5, low=0.1)))
    # then
    assert [s.ids.tolist() for s in steps[2:]] == [[1, -1]] * 3
    assert tracks.ids.tolist() == [1]


def test_weak_detections_do_not_rescue_an_unconfirmed_track() -> None:
    _, steps = run([[person(100)], [person(104, conf=0.3)], [person(108)]])
    assert [s.ids.tolist() for s in steps] == [[1], [-1], [2]]


@pytest.mark.parametrize(("missed", "same"), [(1, True), (3, True), (4, False)])
def test_a_confirmed_track_survives_max_age_missed_frames(missed: int, same: bool) -> None:
    # given: a person standing still, missed by the detector for `missed` frames
    frames = [[person(100)], [person(100)], *([] for _ in range(missed)), [person(100)]]
    # when
    _, steps = run(frames, Tracker(TrackerConfig(max_age=3)))
    # then
    assert (steps[-1].ids.tolist() == [1]) is same


def test_velocity_carries_a_track_over_missed_frames() -> None:
    # given: someone walking 15 px a frame, missed for two frames: 45 px on, a plain IoU with the last box is 0.06
    frames = [[person(100 + 15 * i)] for i in range(4)] + [[], [], [person(100 + 15 * 6)]]
    # when
    _, steps = run(frames)
    # then
    assert steps[-1].ids.tolist() == [1] and steps[-1].confirmed.tolist() == [True]


@pytest.mark.parametrize(("buffer_per_s", "ids"), [(1.5, [1, 1, 1, 1, 1]), (0.0, [1, 2, 3, 4, 5])])
def test_far_apart_frames_are_joined_by_the_buffered_iou(buffer_per_s: float, ids: list[int]) -> None:
    # given: a default burst's spacing (8 frames over 4 s), a 40 px wide person walking 30 px between frames: the
    # plain IoU of two sightings is 10 / 70 = 0.14, under `match_iou`
    frames = [[person(100 + 30 * i)] for i in range(5)]
    # when
    _, steps = run(frames, Tracker(TrackerConfig(buffer_per_s=buffer_per_s)), step_s=0.57)
    # then
    assert [int(s.ids[0]) for s in steps] == ids


def test_a_newcomer_nearby_does_not_take_over_a_track_at_full_frame_rate() -> None:
    # given: at 10 fps one person is missed and another appears 50 px away
    _, steps = run([[person(100)], [person(100)], [person(150)]])
    # then: the buffer (0.15 of a box at 0.1 s) does not reach across
    assert steps[-1].ids.tolist() == [2]


def test_classes_never_share_a_track() -> None:
    _, steps = run([[person(100)], [person(100)], [person(100, label="car")]])
    assert steps[-1].ids.tolist() == [2]


def test_a_long_pause_starts_afresh_and_ids_keep_counting() -> None:
    tracker = Tracker(TrackerConfig(max_gap_s=3.0))
    tracks, _ = tracker.run([(make_detections(person(100)), 0.0), (make_detections(person(100)), 0.1)])
    tracks, step = tracker.step(tracks, make_detections(person(100)), 10.0)
    assert step.ids.tolist() == [2] and step.confirmed.tolist() == [False]
    assert tracks.ids.tolist() == [2] and tracks.next_id == 3


def test_time_going_backwards_starts_afresh() -> None:
    tracker = Tracker()
    tracks, _ = tracker.run([(make_detections(person(100)), 5.0), (make_detections(person(100)), 5.1)])
    _, step = tracker.step(tracks, make_detections(person(100)), 1.0)
    assert step.ids.tolist() == [2]


def test_no_detections_at_all() -> None:
    tracks, steps = run([[], []])
    assert len(tracks) == 0 and [len(s.ids) for s in steps] == [0, 0]
    assert Step(np.zeros((0,), np.int64), np.zeros((0,), np.bool_)).detections(Detections.empty()).track_id is not None


@pytest.mark.parametrize(
    "config",
    [{"low": 0.6, "high": 0.5}, {"low": -0.1}, {"min_hits": 0}, {"max_age": -1}],
)
def test_config_is_checked(config: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="tracker needs"):
        TrackerConfig(**config)  # type: ignore[arg-type]
