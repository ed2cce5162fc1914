"""Draw a trace on an image: a polyline with numbered points, start green, end red."""

from __future__ import annotations

import cv2
import numpy as np

START_RGB = (0, 200, 0)
END_RGB = (230, 0, 0)


def point_colours(n: int) -> list[tuple[int, int, int]]:
    """RGB colour per point, blending from green (start) to red (end).

    Args:
        n: number of points.

    Returns:
        ``n`` (r, g, b) tuples; a single point is green.
    """
    out = []
    for i in range(n):
        t = i / (n - 1) if n > 1 else 0.0
        out.append(
            tuple(int(round(a + (b - a) * t)) for a, b in zip(START_RGB, END_RGB, strict=True))
        )
    return out  # type: ignore[return-value]


def draw_trace(
    rgb: np.ndarray,
    pixels: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    label: str = '',
) -> np.ndarray:
    """Draw the trace on a copy of the image.

    Args:
        rgb: (H, W, 3) uint8 RGB image.
        pixels: (N, 2) (u, v) in pixels, in travel order.
        valid: optional (N,) bool; invalid points are drawn hollow and skipped by the line.
        label: optional text (e.g. the instruction) written in the top-left corner.

    Returns:
        A new (H, W, 3) uint8 RGB image with the trace drawn on it.

    Raises:
        ValueError: the image is not (H, W, 3) uint8.
    """
    img = np.asarray(rgb)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f'draw_trace needs (H, W, 3) uint8 RGB, got {img.shape} {img.dtype}')
    out = np.ascontiguousarray(img.copy())
    uv = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    ok = np.all(np.isfinite(uv), axis=1)
    if valid is not None:
        ok_line = ok & np.asarray(valid, dtype=bool)
    else:
        ok_line = ok
    h, w = out.shape[:2]
    scale = max(h, w) / 640.0
    radius = max(3, int(round(6 * scale)))
    thick = max(1, int(round(2 * scale)))
    font = 0.45 * scale
    colours = point_colours(len(uv))
    pts = np.rint(uv[ok_line]).astype(np.int32)
    line_cols = [c for c, k in zip(colours, ok_line, strict=True) if k]
    for a, b, c in zip(pts[:-1], pts[1:], line_cols[1:], strict=True):
        cv2.line(out, tuple(int(v) for v in a), tuple(int(v) for v in b), c, thick, cv2.LINE_AA)
    for i, (p, c) in enumerate(zip(uv, colours, strict=True)):
        if not ok[i]:
            continue
        centre = (int(round(p[0])), int(round(p[1])))
        filled = bool(ok_line[i])
        cv2.circle(out, centre, radius, c, -1 if filled else thick, cv2.LINE_AA)
        cv2.circle(out, centre, radius, (255, 255, 255), 1, cv2.LINE_AA)
        text = str(i + 1)
        org = (centre[0] + radius + 1, centre[1] - radius - 1)
        cv2.putText(
            out, text, org, cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thick + 2, cv2.LINE_AA
        )
        cv2.putText(
            out, text, org, cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), thick, cv2.LINE_AA
        )
    if label:
        org = (int(8 * scale), int(20 * scale))
        cv2.putText(
            out, label[:80], org, cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thick + 2, cv2.LINE_AA
        )
        cv2.putText(
            out, label[:80], org, cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 0), thick, cv2.LINE_AA
        )
    return out
