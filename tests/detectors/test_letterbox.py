from __future__ import annotations

import numpy as np
import pytest

from detectors.letterbox import PAD_VALUE, InputTransform, letterbox_hwc, resize_plain
from detectors.manifest import ModelManifest
from detectors.yolox import YoloxFamily


def gradient_image(height: int, width: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs % 256, ys % 256, (xs + ys) % 256], axis=2).astype(np.uint8)


def random_boxes(width: int, height: int, n: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy1 = rng.uniform(0, [width * 0.8, height * 0.8], size=(n, 2))
    wh = rng.uniform(1, [width * 0.2, height * 0.2], size=(n, 2))
    return np.concatenate([xy1, xy1 + wh], axis=1).astype(np.float32)


SHAPES = [
    # (source height, width, model input (width, height))
    (1080, 810, (416, 416)),  # portrait, like bus.jpg
    (720, 1280, (416, 416)),  # landscape, like zidane.jpg
    (576, 768, (416, 416)),  # the footage
    (100, 100, (416, 416)),  # upscaled
    (1080, 1920, (640, 384)),  # non-square input
]


@pytest.mark.parametrize("centre", [False, True])
@pytest.mark.parametrize(("height", "width", "size"), SHAPES)
def test_inverse_round_trips_boxes_within_a_pixel(height: int, width: int, size: tuple[int, int], centre: bool) -> None:
    # given
    image = np.zeros((height, width, 3), np.uint8)
    _, transform = letterbox_hwc(image, size, centre=centre)
    source_boxes = random_boxes(width, height)

    # when
    back = transform.to_source(transform.to_input(source_boxes))

    # then
    assert np.abs(back - source_boxes).max() < 1.0


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_yolox_tensor_is_nchw_bgr_top_left_with_pad_114(yolox_manifest: ModelManifest, dtype: str) -> None:
    image = gradient_image(576, 768)
    family = YoloxFamily(yolox_manifest.model_copy(update={"input_dtype": dtype}))

    tensor, (transform,) = family.preprocess([image])

    assert tensor.shape == (1, 3, 416, 416)
    assert tensor.dtype == np.dtype(dtype)
    assert tensor.flags.c_contiguous
    assert isinstance(transform, InputTransform)
    assert transform.pad_x == 0 and transform.pad_y == 0
    assert transform.gain_x == transform.gain_y == pytest.approx(416 / 768)
    content_h = int(576 * 416 / 768)  # 312 rows of picture, then padding
    assert np.all(tensor[0, :, content_h:, :] == PAD_VALUE)
    assert not np.all(tensor[0, :, : content_h - 1, :] == PAD_VALUE)
    # channel 0 stays the image's channel 0 (B): no colour conversion, no normalisation
    assert tensor[0, 0, 0, 0] == image[0, 0, 0]
    assert tensor.max() > 1.0


def test_centred_placement_pads_both_sides() -> None:
    canvas, transform = letterbox_hwc(gradient_image(100, 200), (416, 416), centre=True)

    assert transform.pad_x == 0
    assert transform.pad_y == (416 - 208) // 2
    assert np.all(canvas[: int(transform.pad_y)] == PAD_VALUE)
    assert np.all(canvas[int(transform.pad_y) + 208 :] == PAD_VALUE)


def test_to_source_clips_to_the_image() -> None:
    transform = InputTransform(gain_x=0.5, gain_y=0.5, pad_x=0.0, pad_y=0.0, src_width=100, src_height=80)
    inside_and_out = np.array([[-10, -10, 60, 30], [40, 30, 400, 400]], np.float32)

    result = transform.to_source(inside_and_out)

    np.testing.assert_allclose(result, [[0, 0, 100, 60], [80, 60, 100, 80]])


def test_resize_plain_maps_corners_back() -> None:
    resized, transform = resize_plain(gradient_image(720, 1280), (300, 300))

    assert resized.shape == (300, 300, 3)
    np.testing.assert_allclose(transform.to_source(np.array([[0, 0, 300, 300]], np.float32)), [[0, 0, 1280, 720]])


@pytest.mark.parametrize(
    "bad",
    [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10, 3), np.float32)],
    ids=["gray", "bgra", "float"],
)
def test_rejects_images_that_are_not_bgr_uint8(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        letterbox_hwc(bad, (416, 416))
