"""The demo's pictures: the trace on the camera image, before/after, and an overview.

ROS-free (numpy + OpenCV for geometry, Pillow for text with its built-in scalable font, so the
pictures look the same on every machine). Images are (H, W, 3) uint8 RGB.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from robotracer_ros.annotate import END_RGB, START_RGB, draw_trace

BANNER_RGB = (24, 26, 32)
TEXT_RGB = (240, 240, 240)
MUTED_RGB = (170, 175, 185)
OK_RGB = (90, 200, 110)
FAIL_RGB = (235, 90, 80)
EARLIER_RGB = (235, 235, 235)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _check_rgb(name: str, img: np.ndarray) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f'{name} must be (H, W, 3) uint8 RGB, got {arr.shape} {arr.dtype}')
    return arr


def text_width(text: str, size: int) -> int:
    """Width of ``text`` in pixels at font ``size``."""
    return int(round(_font(size).getlength(text)))


def put_text(
    img: np.ndarray,
    text: str,
    org: tuple[int, int],
    size: int = 16,
    colour: tuple[int, int, int] = TEXT_RGB,
    box: tuple[int, int, int] | None = None,
    pad: int = 4,
) -> np.ndarray:
    """Write text (top-left at ``org``) in place, optionally on a filled box.

    Args:
        img: (H, W, 3) uint8 RGB, modified in place.
        text: one line.
        org: (x, y) of the text's top-left corner, pixels.
        size: font size, pixels.
        colour: text colour.
        box: fill colour of a box behind the text (None: no box).
        pad: box padding, pixels.

    Returns:
        ``img``.
    """
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    font = _font(size)
    x, y = org
    if box is not None:
        left, top, right, bottom = draw.textbbox((x, y), text, font=font)
        draw.rounded_rectangle(
            (left - pad, top - pad, right + pad, bottom + pad), radius=pad, fill=box
        )
    draw.text((x, y), text, font=font, fill=colour)
    img[...] = np.asarray(pil)
    return img


def banner(
    width: int, lines: Sequence[tuple[str, tuple[int, int, int]]], size: int = 18
) -> np.ndarray:
    """A dark band with one or more lines of text.

    Args:
        width: band width, pixels.
        lines: (text, colour) per line.
        size: font size, pixels.

    Returns:
        (h, width, 3) uint8 RGB.
    """
    line_h = int(size * 1.35)
    out = np.empty((line_h * len(lines) + 12, width, 3), np.uint8)
    out[:] = BANNER_RGB
    for i, (text, colour) in enumerate(lines):
        put_text(out, _fit(text, width - 20, size), (10, 6 + i * line_h), size, colour)
    return out


def _fit(text: str, width: int, size: int) -> str:
    if text_width(text, size) <= width:
        return text
    while text and text_width(text + '…', size) > width:
        text = text[:-1]
    return text + '…'


def _dashed(img: np.ndarray, pts: np.ndarray, colour: tuple[int, int, int], thick: int) -> None:
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        seg = np.linalg.norm(b - a)
        n = max(1, int(seg // 10))
        for k in range(0, n, 2):
            p = a + (b - a) * (k / n)
            q = a + (b - a) * (min(k + 1, n) / n)
            cv2.line(img, _pt(p), _pt(q), colour, thick, cv2.LINE_AA)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))


Rect = tuple[int, int, int, int]


def _rect_distance(p: np.ndarray, r: Rect) -> float:
    dx = max(r[0] - p[0], 0.0, p[0] - r[2])
    dy = max(r[1] - p[1], 0.0, p[1] - r[3])
    return float(np.hypot(dx, dy))


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_tag(
    shape: tuple[int, ...],
    size: tuple[int, int],
    anchor: np.ndarray,
    avoid: np.ndarray,
    taken: Sequence[Rect] = (),
) -> Rect:
    """Where to put a label for ``anchor``: near it, inside the image, clear of the trace.

    Args:
        shape: the image's shape (H, W, ...).
        size: (width, height) of the label box, pixels.
        anchor: (u, v) of the point the label names.
        avoid: (N, 2) pixels the label should stay clear of (the trace points).
        taken: boxes of labels already placed (never overlapped if avoidable).

    Returns:
        The label box (x0, y0, x1, y1).
    """
    h, w = shape[:2]
    bw, bh = size
    ax, ay = float(anchor[0]), float(anchor[1])
    candidates = []
    for gap in (12, 30):
        candidates += [
            (ax + gap, ay - gap - bh),
            (ax - gap - bw, ay - gap - bh),
            (ax + gap, ay + gap),
            (ax - gap - bw, ay + gap),
            (ax - bw / 2, ay - 1.5 * gap - bh),
            (ax - bw / 2, ay + 1.5 * gap),
            (ax + 1.5 * gap, ay - bh / 2),
            (ax - 1.5 * gap - bw, ay - bh / 2),
        ]
    best: tuple[float, Rect] | None = None
    pts = np.asarray(avoid, dtype=float).reshape(-1, 2)
    for rank, (x, y) in enumerate(candidates):
        x = min(max(x, 2.0), w - bw - 2.0)
        y = min(max(y, 2.0), h - bh - 2.0)
        r = (int(x), int(y), int(x + bw), int(y + bh))
        clear = min((_rect_distance(p, r) for p in pts), default=99.0)
        score = min(clear, 24.0) - 0.25 * rank - 100.0 * sum(_overlap(r, t) for t in taken)
        if best is None or score > best[0]:
            best = (score, r)
    assert best is not None
    return best[1]


def _tag(
    img: np.ndarray,
    text: str,
    anchor: np.ndarray,
    colour: tuple[int, int, int],
    avoid: np.ndarray,
    taken: list[Rect],
) -> None:
    """A filled label with a leader line to ``anchor``, placed by :func:`place_tag`."""
    size, pad = 15, 4
    tw = text_width(text, size)
    box = place_tag(img.shape, (tw + 2 * pad, size + 2 * pad + 2), anchor, avoid, taken)
    taken.append(box)
    cx = min(max(int(anchor[0]), box[0]), box[2])
    cy = min(max(int(anchor[1]), box[1]), box[3])
    cv2.line(img, _pt(anchor), (cx, cy), (20, 20, 20), 4, cv2.LINE_AA)
    cv2.line(img, _pt(anchor), (cx, cy), colour, 2, cv2.LINE_AA)
    put_text(
        img, text, (box[0] + pad, box[1] + pad - 1), size, (255, 255, 255), box=colour, pad=pad
    )


def trace_picture(
    rgb: np.ndarray,
    pixels: np.ndarray,
    title: str,
    subtitle: str = '',
    earlier: np.ndarray | None = None,
    earlier_label: str = 'first trace',
) -> np.ndarray:
    """The camera image with the trace drawn on it, start and end labelled, and a title band.

    Args:
        rgb: (H, W, 3) uint8 RGB camera frame the trace was predicted on.
        pixels: (N, 2) pixel (u, v) of the trace points, in travel order.
        title: first banner line (e.g. the instruction in quotes).
        subtitle: second banner line (e.g. model and point count); empty for none.
        earlier: (M, 2) pixels of a superseded trace (before a replan), drawn dashed in grey.
        earlier_label: tag written at the superseded trace's start.

    Returns:
        (H + banner, W, 3) uint8 RGB.

    Raises:
        ValueError: the image is not RGB uint8 or the trace has no finite point.
    """
    img = _check_rgb('rgb', rgb).copy()
    uv = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    uv = uv[np.all(np.isfinite(uv), axis=1)]
    if not len(uv):
        raise ValueError('the trace has no finite pixel to draw')
    old = np.zeros((0, 2))
    if earlier is not None and len(earlier):
        old = np.asarray(earlier, dtype=np.float64).reshape(-1, 2)
        old = old[np.all(np.isfinite(old), axis=1)]
        if len(old):
            _dashed(img, old, (25, 25, 25), 6)
            _dashed(img, old, EARLIER_RGB, 3)
            for p in old:
                cv2.circle(img, _pt(p), 5, (25, 25, 25), -1, cv2.LINE_AA)
                cv2.circle(img, _pt(p), 3, EARLIER_RGB, -1, cv2.LINE_AA)
    # a dark halo under the coloured polyline keeps it visible on any background
    pts = np.rint(uv).astype(np.int32)
    cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, (20, 20, 20), 6, cv2.LINE_AA)
    img = draw_trace(img, uv)
    avoid = np.vstack([uv, old])
    taken: list[Rect] = []
    _tag(img, 'start', uv[0], tuple(int(c * 0.8) for c in START_RGB), avoid, taken)
    _tag(img, 'end', uv[-1], tuple(int(c * 0.85) for c in END_RGB), avoid, taken)
    if len(old):
        _tag(img, earlier_label, old[0], (95, 95, 95), avoid, taken)
    lines = [(title, TEXT_RGB)]
    if subtitle:
        lines.append((subtitle, MUTED_RGB))
    return np.vstack([banner(img.shape[1], lines), img])


def before_after(
    before: np.ndarray,
    after: np.ndarray,
    caption: str,
    ok: bool | None = None,
    detail: str = '',
) -> np.ndarray:
    """Two frames side by side, tagged BEFORE / AFTER, with a caption band below.

    Args:
        before: (H, W, 3) uint8 RGB frame taken before the goal.
        after: (H, W, 3) uint8 RGB frame taken after it, same size.
        caption: the caption line (e.g. the instruction).
        ok: colours the detail line green (True) / red (False); None: grey.
        detail: a second caption line (outcome, replans, final error).

    Returns:
        (H + caption band, 2 W + gap, 3) uint8 RGB.

    Raises:
        ValueError: the frames are not RGB uint8 or differ in size.
    """
    a = _check_rgb('before', before).copy()
    b = _check_rgb('after', after).copy()
    if a.shape != b.shape:
        raise ValueError(f'before {a.shape} and after {b.shape} frames differ in size')
    put_text(a, 'BEFORE', (12, 10), 18, (255, 255, 255), box=(40, 40, 40), pad=5)
    put_text(b, 'AFTER', (12, 10), 18, (255, 255, 255), box=(40, 40, 40), pad=5)
    gap = np.empty((a.shape[0], 6, 3), np.uint8)
    gap[:] = BANNER_RGB
    row = np.hstack([a, gap, b])
    colour = MUTED_RGB if ok is None else (OK_RGB if ok else FAIL_RGB)
    lines = [(caption, TEXT_RGB)] + ([(detail, colour)] if detail else [])
    return np.vstack([row, banner(row.shape[1], lines, size=20)])


def tagged(
    rgb: np.ndarray, tag: str, lines: Sequence[tuple[str, tuple[int, int, int]]]
) -> np.ndarray:
    """A frame with a tag in its corner and a banner of text lines above it.

    Args:
        rgb: (H, W, 3) uint8 RGB frame.
        tag: short label written on the frame (e.g. AFTER).
        lines: (text, colour) per banner line.

    Returns:
        (H + banner, W, 3) uint8 RGB.

    Raises:
        ValueError: not an RGB uint8 image.
    """
    img = _check_rgb('rgb', rgb).copy()
    put_text(img, tag, (12, 10), 18, (255, 255, 255), box=(40, 40, 40), pad=5)
    return np.vstack([banner(img.shape[1], lines), img])


def overview(
    rows: Sequence[tuple[np.ndarray, np.ndarray]], title: str, scale: float = 0.5
) -> np.ndarray:
    """One picture of the whole demo: per instruction a row of two pictures.

    Args:
        rows: per instruction (trace picture, after picture), e.g. from :func:`trace_picture`
            and :func:`tagged`.
        title: the banner line on top.
        scale: resize factor applied to each picture.

    Returns:
        (H, W, 3) uint8 RGB.

    Raises:
        ValueError: no rows.
    """
    if not rows:
        raise ValueError('overview needs at least one instruction')
    built = []
    for left, right in rows:
        a = cv2.resize(
            _check_rgb('trace picture', left),
            None,
            fx=scale,
            fy=scale,
            interpolation=cv2.INTER_AREA,
        )
        b = cv2.resize(
            _check_rgb('right picture', right),
            None,
            fx=scale,
            fy=scale,
            interpolation=cv2.INTER_AREA,
        )
        height = max(a.shape[0], b.shape[0])
        gap = np.empty((height, 6, 3), np.uint8)
        gap[:] = BANNER_RGB
        built.append(
            np.hstack([_pad_to(a, a.shape[1], height), gap, _pad_to(b, b.shape[1], height)])
        )
    width = max(r.shape[1] for r in built)
    sep = np.empty((6, width, 3), np.uint8)
    sep[:] = BANNER_RGB
    parts: list[np.ndarray] = []
    for i, r in enumerate(built):
        if i:
            parts.append(sep)
        parts.append(_pad_to(r, width))
    body = np.vstack(parts)
    return np.vstack([banner(width, [(title, TEXT_RGB)], size=20), body])


def _pad_to(img: np.ndarray, width: int, height: int | None = None) -> np.ndarray:
    height = img.shape[0] if height is None else height
    out = np.empty((height, width, 3), np.uint8)
    out[:] = BANNER_RGB
    out[: img.shape[0], : img.shape[1]] = img
    return out
