"""Picture measures for video-quality diagnosis (视频质量诊断), on small fixed-size grayscale copies of a frame.

Every frame, whatever its resolution, is reduced to a 320x240 working image (sharpness), an 80x60 low image
(contrast and brightness per cell) and a 64x48 thumbnail (the picture itself, for frozen and shifted). The picture
is cut into an 8x6 grid of cells for what is measured per part of the picture. A camera's reference is the mean of
these measures over its first visits. Pure: numpy and OpenCV only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from core.types import Image

logger = logging.getLogger(__name__)

F32 = NDArray[np.float32]
Mask = NDArray[np.bool_]
Thumb = NDArray[np.uint8]
Region = tuple[float, float, float, float]

WORK_SIZE = (320, 240)  # width, height: the sharpness measure
LOW_SIZE = (80, 60)  # contrast and brightness per cell, untouched by a blur of a few pixels
THUMB_SIZE = (64, 48)  # the picture: the previous visit's and the reference's, 3 KB each
GRID = (8, 6)  # columns, rows of cells
CELLS = GRID[0] * GRID[1]
UNIFORM_TOLERANCE = 6  # grey levels around the picture's median that count as "the same colour"
TEXTURE_EPS = 1.0  # grey levels added to a cell's contrast so that flat cells compare as equals
HIGH_PASS_SIGMA = 3.0  # thumbnail pixels: the shifted check compares structure, not lighting
TOP_QUANTILE = 90.0  # the frame's own level of a per-cell ratio: most cells, ignoring the odd outlier


@dataclass(frozen=True, slots=True)
class Picture:
    """What one frame measures: brightness, the share of its most common grey level, the thumbnail, and per
    cell (rows x columns) the Laplacian energy of the working image and the contrast and brightness of the low image."""

    mean: float
    uniform_share: float
    thumb: Thumb
    cell_lap: F32
    cell_std: F32
    cell_mean: F32


def _gray(image: Image) -> NDArray[np.uint8]:
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    return np.asarray(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2GRAY), dtype=np.uint8)


def _resize(gray: NDArray[np.uint8], size: tuple[int, int]) -> NDArray[np.uint8]:
    return np.asarray(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def work_image(image: Image) -> NDArray[np.uint8]:
    """The 320x240 grayscale working image. Area averaging by a whole factor first (OpenCV's fast path: a 2.4x
    INTER_AREA costs four times as much), then a mild linear resize to the working size."""
    h, w = image.shape[:2]
    k = max(1, min(w // WORK_SIZE[0], h // WORK_SIZE[1]))
    small: Image = np.ascontiguousarray(image)
    if k > 1:
        small = np.asarray(cv2.resize(small, (w // k, h // k), interpolation=cv2.INTER_AREA), np.uint8)
    gray = _gray(small)
    if gray.shape[::-1] == WORK_SIZE:
        return gray
    return np.asarray(cv2.resize(gray, WORK_SIZE, interpolation=cv2.INTER_LINEAR), dtype=np.uint8)


def _cells(values: F32) -> F32:
    """(rows, cols, pixels of a cell) from an image the grid divides evenly."""
    h, w = values.shape
    cols, rows = GRID
    blocks = values.reshape(rows, h // rows, cols, w // cols).transpose(0, 2, 1, 3)
    return blocks.reshape(rows, cols, -1)


def _uniform_share(work: NDArray[np.uint8]) -> float:
    """The share of pixels within `UNIFORM_TOLERANCE` grey levels of the median, from the histogram."""
    hist = cv2.calcHist([work], [0], None, [256], [0, 256]).ravel()  # 10x faster than np.bincount here
    counts = np.cumsum(hist.astype(np.int64))
    median = int(np.searchsorted(counts, counts[-1] / 2))
    low, high = max(median - UNIFORM_TOLERANCE, 0), min(median + UNIFORM_TOLERANCE, 255)
    inside = counts[high] - (counts[low - 1] if low > 0 else 0)
    return float(inside) / float(counts[-1])


def measure(image: Image) -> Picture:
    """The measures of one BGR (or grayscale) frame."""
    work = work_image(image)
    low = _resize(work, LOW_SIZE).astype(np.float32)
    lap = cv2.Laplacian(work, cv2.CV_32F)
    low_cells = _cells(low)
    return Picture(
        mean=float(work.mean()),
        uniform_share=_uniform_share(work),
        thumb=_resize(work, THUMB_SIZE),
        cell_lap=np.mean(_cells(lap * lap), axis=2, dtype=np.float32),
        cell_std=low_cells.std(axis=2, dtype=np.float32),
        cell_mean=low_cells.mean(axis=2, dtype=np.float32),
    )


@dataclass(frozen=True, slots=True)
class Reference:
    """A camera's reference view: the running mean of the measures of `visits` visits."""

    visits: int
    thumb: Thumb
    cell_lap: F32
    cell_std: F32
    cell_mean: F32

    @classmethod
    def first(cls, pic: Picture) -> Reference:
        return cls(1, pic.thumb, pic.cell_lap, pic.cell_std, pic.cell_mean)

    def add(self, pic: Picture) -> Reference:
        n = self.visits + 1
        thumb = self.thumb.astype(np.float32) + (pic.thumb.astype(np.float32) - self.thumb) / n
        return Reference(
            n,
            np.clip(np.rint(thumb), 0, 255).astype(np.uint8),
            (self.cell_lap + (pic.cell_lap - self.cell_lap) / n).astype(np.float32),
            (self.cell_std + (pic.cell_std - self.cell_std) / n).astype(np.float32),
            (self.cell_mean + (pic.cell_mean - self.cell_mean) / n).astype(np.float32),
        )


def change(before: Thumb, after: Thumb) -> float:
    """Mean absolute difference of two thumbnails, in grey levels."""
    return float(np.mean(np.abs(before.astype(np.int16) - after.astype(np.int16))))


def _relative(current: F32, reference: F32, eps: float) -> F32:
    """Each cell's value against its reference, divided by the frame's own level of that ratio, so that a
    darker or duller picture overall (dusk, a cloud) leaves every cell near 1."""
    ratio = ((current + eps) / (reference + eps)).astype(np.float32)
    level = float(np.percentile(ratio, TOP_QUANTILE))
    return (ratio / max(level, 1e-6)).astype(np.float32)


def covered_cells(pic: Picture, ref: Reference, texture_ratio: float, dark_ratio: float) -> Mask:
    """Cells that lost their detail against the reference (contrast below `texture_ratio` of the frame's level),
    or went dark (brightness below `dark_ratio` of the frame's level) while losing half their detail."""
    texture = _relative(pic.cell_std, ref.cell_std, TEXTURE_EPS)
    dark = _relative(pic.cell_mean, ref.cell_mean, TEXTURE_EPS)
    covered: Mask = (texture < texture_ratio) | ((dark < dark_ratio) & (texture < 0.5))
    return covered


def visible_cells(covered: Mask) -> Mask:
    """The cells clear of a cover and of the cells beside it (a cell the cover's edge cuts through is neither)."""
    grown = covered.copy()
    grown[1:] |= covered[:-1]
    grown[:-1] |= covered[1:]
    grown[:, 1:] |= covered[:, :-1]
    grown[:, :-1] |= covered[:, 1:]
    visible: Mask = ~grown
    return visible


def sharpness_ratio(pic: Picture, ref: Reference, visible: Mask) -> float:
    """Laplacian energy per unit of contrast over the visible cells, against the reference's over the same cells:
    1 as sharp as the reference, near 0 blurred. A darker picture overall does not change it."""
    now = float(pic.cell_lap[visible].sum()) / (float(np.square(pic.cell_std[visible]).sum()) + 1.0)
    then = float(ref.cell_lap[visible].sum()) / (float(np.square(ref.cell_std[visible]).sum()) + 1.0)
    return now / max(then, 1e-6)


def _high_pass(thumb: Thumb) -> F32:
    t = thumb.astype(np.float32)
    smooth = np.asarray(cv2.GaussianBlur(t, (0, 0), HIGH_PASS_SIGMA, borderType=cv2.BORDER_REFLECT), np.float32)
    return (t - smooth).astype(np.float32)


def _pixel_mask(visible: Mask) -> Mask:
    cols, rows = GRID
    w, h = THUMB_SIZE
    mask: Mask = np.repeat(np.repeat(visible, h // rows, axis=0), w // cols, axis=1)
    return mask


def _zncc(a: F32, b: F32) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt(float((a * a).sum()) * float((b * b).sum())))
    return float((a * b).sum()) / den if den > 1e-6 else 0.0


def similarity(pic: Picture, ref: Reference, visible: Mask) -> float:
    """Correlation (-1..1) of the picture's structure with the reference's over the visible cells: near 1 the
    same view, low when the camera points elsewhere."""
    mask = _pixel_mask(visible)
    return _zncc(_high_pass(ref.thumb)[mask], _high_pass(pic.thumb)[mask])


def cell_similarity(pic: Picture, ref: Reference) -> F32:
    """The structure correlation of each cell with the reference's, to show which part of the view changed."""
    a = _cells(_high_pass(ref.thumb))
    b = _cells(_high_pass(pic.thumb))
    a = a - a.mean(axis=2, keepdims=True)
    b = b - b.mean(axis=2, keepdims=True)
    den = np.sqrt((a * a).sum(axis=2) * (b * b).sum(axis=2))
    return np.where(den > 1e-6, (a * b).sum(axis=2) / np.maximum(den, 1e-6), 0.0).astype(np.float32)


def offset(pic: Picture, ref: Reference) -> tuple[float, float]:
    """How far the view moved from the reference, as fractions of the frame (x right, y down), by phase
    correlation; only meaningful for a pan or tilt, not for a rotation or a zoom."""
    w, h = THUMB_SIZE
    window = cv2.createHanningWindow((w, h), cv2.CV_32F)
    # phaseCorrelate applies the window to its inputs in place: hand it copies
    (dx, dy), _ = cv2.phaseCorrelate(_high_pass(ref.thumb).copy(), _high_pass(pic.thumb).copy(), window)
    return float(dx) / w, float(dy) / h


def aligned_similarity(pic: Picture, ref: Reference, dx: float, dy: float) -> float:
    """The structure correlation once the picture is moved back by (dx, dy) (fractions of the frame), over the
    part both still show: near 1 when a pan or tilt alone explains the change."""
    w, h = THUMB_SIZE
    sx, sy = dx * w, dy * h
    back = np.array([[1.0, 0.0, -sx], [0.0, 1.0, -sy]], np.float32)
    moved = np.asarray(cv2.warpAffine(_high_pass(pic.thumb), back, (w, h)), np.float32)
    mx, my = int(np.ceil(abs(sx))) + 2, int(np.ceil(abs(sy))) + 2
    if w - 2 * mx < 8 or h - 2 * my < 8:
        return 0.0
    return _zncc(_high_pass(ref.thumb)[my : h - my, mx : w - mx], moved[my : h - my, mx : w - mx])


def cell_regions(mask: Mask) -> tuple[Region, ...]:
    """The cells of `mask` as normalised rectangles (x1, y1, x2, y2), runs of a row merged into one."""
    cols, rows = GRID
    regions: list[Region] = []
    for r in range(rows):
        c = 0
        while c < cols:
            if not mask[r, c]:
                c += 1
                continue
            start = c
            while c < cols and mask[r, c]:
                c += 1
            regions.append((start / cols, r / rows, c / cols, (r + 1) / rows))
    return tuple(regions)


def bounding_region(mask: Mask) -> tuple[Region, ...]:
    """The rectangle around the cells of `mask`, or none."""
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        return ()
    c, r = GRID
    return ((int(cols.min()) / c, int(rows.min()) / r, (int(cols.max()) + 1) / c, (int(rows.max()) + 1) / r),)
