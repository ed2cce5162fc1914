"""Lift a normalised 2D/3D trace to metric 3D points in the camera optical frame.

Design notes: docs/design-notes.md (robotracer_ros.lifting).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robotracer_ros.parsing import COORD_MAX

DEPTH_MODEL = 0
DEPTH_SENSOR = 1
DEPTH_FUSED = 2
DEPTH_SOURCE_NAMES = {DEPTH_MODEL: 'model', DEPTH_SENSOR: 'sensor', DEPTH_FUSED: 'fused'}
DEPTH_SOURCES = ('model', 'sensor', 'fused')


@dataclass(frozen=True)
class LiftOptions:
    """How to pick and sample depth.

    Attributes:
        depth_source: ``'model'``, ``'sensor'`` or ``'fused'``.
        window_px: half-size of the sensor sampling window in depth-image pixels (2 -> 5x5).
        min_depth_m: sensor readings below this are ignored, metres.
        max_depth_m: sensor readings above this are ignored, metres.
        fuse_threshold_m: absolute disagreement threshold, metres.
        fuse_threshold_rel: relative disagreement threshold (fraction of the sensor depth).
    """

    depth_source: str = 'fused'
    window_px: int = 2
    min_depth_m: float = 0.05
    max_depth_m: float = 10.0
    fuse_threshold_m: float = 0.05
    fuse_threshold_rel: float = 0.03

    def __post_init__(self) -> None:
        if self.depth_source not in DEPTH_SOURCES:
            raise ValueError(
                f'depth_source {self.depth_source!r} is not one of {", ".join(DEPTH_SOURCES)}'
            )
        if not 0 <= self.window_px <= 50:
            raise ValueError(f'window_px {self.window_px} is outside 0-50')
        if not 0 <= self.min_depth_m < self.max_depth_m:
            raise ValueError(
                f'depth range [{self.min_depth_m}, {self.max_depth_m}] m is empty or negative'
            )
        if self.fuse_threshold_m < 0 or self.fuse_threshold_rel < 0:
            raise ValueError('fusion thresholds must be >= 0')


@dataclass(frozen=True)
class LiftResult:
    """Metric points, one per input point, in input order.

    Attributes:
        points: (N, 3) float64 metres in the camera optical frame; NaN rows where no depth.
        pixels: (N, 2) float64 (u, v) in colour-image pixels.
        depth: (N,) float64 depth used, metres (NaN where none).
        depth_source: (N,) uint8 ``DEPTH_MODEL`` / ``DEPTH_SENSOR`` per point.
        disagreement: (N,) bool, model and sensor depth differ by more than the threshold.
        behind_surface: (N,) bool, fused mode put the point on the surface because the model's
            depth was behind it.
        sensor_depth: (N,) float64 sensor depth (NaN where none or no depth image).
        model_depth: (N,) float64 model depth (NaN for a 2D answer).
    """

    points: np.ndarray
    pixels: np.ndarray
    depth: np.ndarray
    depth_source: np.ndarray
    disagreement: np.ndarray
    behind_surface: np.ndarray
    sensor_depth: np.ndarray
    model_depth: np.ndarray


def validate_intrinsics(K: np.ndarray) -> np.ndarray:
    """Check a 3x3 pinhole intrinsic matrix.

    Args:
        K: ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` (skew is allowed but unusual).

    Returns:
        K as a (3, 3) float64 array.

    Raises:
        ValueError: wrong shape, non-finite, non-positive focal length or bad last row.
    """
    k = np.asarray(K, dtype=np.float64)
    if k.shape != (3, 3):
        raise ValueError(f'intrinsics must be 3x3, got shape {k.shape}')
    values = f'fx={k[0, 0]:g}, fy={k[1, 1]:g}, cx={k[0, 2]:g}, cy={k[1, 2]:g}'
    if not np.all(np.isfinite(k)):
        raise ValueError(f'intrinsics contain non-finite values ({values})')
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ValueError(f'focal lengths must be > 0 ({values})')
    if abs(k[2, 0]) > 1e-9 or abs(k[2, 1]) > 1e-9 or abs(k[2, 2] - 1.0) > 1e-9:
        raise ValueError(f'the last row of the intrinsics must be [0, 0, 1], got {k[2].tolist()}')
    return k


@dataclass(frozen=True)
class DepthCoverage:
    """How much of a depth image can be used for lifting.

    Attributes:
        pixels: number of pixels.
        valid: readings that are finite and inside [min_depth_m, max_depth_m].
        zero: readings equal to 0 (no measurement).
        non_finite: NaN or infinite readings.
        out_of_range: finite, non-zero readings outside the range.
    """

    pixels: int
    valid: int
    zero: int
    non_finite: int
    out_of_range: int

    @property
    def fraction(self) -> float:
        """Valid readings as a fraction of all pixels (0 for an empty image)."""
        return self.valid / self.pixels if self.pixels else 0.0

    def describe(self) -> str:
        """E.g. ``'0.0% valid (100.0% zero, 0.0% NaN/inf, 0.0% outside 0.05-10 m)'``."""
        n = max(self.pixels, 1)
        return (
            f'{100 * self.fraction:.1f}% valid ({100 * self.zero / n:.1f}% zero, '
            f'{100 * self.non_finite / n:.1f}% NaN/inf, {100 * self.out_of_range / n:.1f}% '
            'out of range)'
        )


# A depth image with fewer usable readings than this is treated as broken: every lifted point
# would be missing or an outlier. Real RGB-D cameras deliver well over half their pixels.
MIN_VALID_DEPTH_FRACTION = 0.01


def depth_coverage(
    depth_image: np.ndarray,
    *,
    scale: float | None = None,
    min_depth_m: float = 0.05,
    max_depth_m: float = 10.0,
) -> DepthCoverage:
    """Count the readings of a depth image that lifting could use.

    Args:
        depth_image: (H, W) raw depth (uint16 mm by default, or float m).
        scale: metres per unit; None = 0.001 for integer images, 1.0 for float images.
        min_depth_m: nearest usable reading, metres.
        max_depth_m: farthest usable reading, metres.

    Returns:
        The counts.
    """
    img = np.asarray(depth_image)
    integer = np.issubdtype(img.dtype, np.integer)
    if scale is None:
        scale = 0.001 if integer else 1.0
    zero = int(np.count_nonzero(img == 0))
    if integer and scale > 0:  # compare raw units: no float copy of the image
        lo, hi = (
            int(np.ceil(min_depth_m / scale - 1e-9)),
            int(np.floor(max_depth_m / scale + 1e-9)),
        )
        valid = int(np.count_nonzero((img >= lo) & (img <= hi)))
        non_finite = 0
    else:
        metres = img.astype(np.float32) * np.float32(scale)
        finite = np.isfinite(metres)
        with np.errstate(invalid='ignore'):
            valid = int(
                np.count_nonzero(finite & (metres >= min_depth_m) & (metres <= max_depth_m))
            )
        non_finite = int(metres.size - np.count_nonzero(finite))
    return DepthCoverage(
        pixels=int(img.size),
        valid=valid,
        zero=zero,
        non_finite=non_finite,
        out_of_range=int(img.size) - valid - zero - non_finite,
    )


def check_depth_registration(
    depth_size: tuple[int, int], colour_size: tuple[int, int], *, tolerance: float = 0.01
) -> None:
    """Check that a depth image can be registered to the colour image by scaling alone.

    :func:`sample_depth` scales colour pixels by the resolution ratio, which is right only when
    both images cover the same field of view (same aspect ratio, e.g. 320x240 depth for 640x480
    colour). Another aspect ratio means the depth is not aligned to colour (e.g. the raw 848x480
    depth stream instead of ``aligned_depth_to_color``).

    Args:
        depth_size: (width, height) of the depth image.
        colour_size: (width, height) of the colour image.
        tolerance: largest relative difference of the aspect ratios.

    Raises:
        ValueError: a size is empty, or the aspect ratios differ (names both sizes).
    """
    (wd, hd), (w, h) = depth_size, colour_size
    if min(wd, hd, w, h) <= 0:
        raise ValueError(f'image size must be positive (depth {wd}x{hd}, colour {w}x{h})')
    a_d, a_c = wd / hd, w / h
    if abs(a_d - a_c) > tolerance * a_c:
        raise ValueError(
            f'depth is {wd}x{hd} but colour is {w}x{h} (aspect {a_d:.3f} vs {a_c:.3f}): the '
            'depth image is not registered to the colour image (subscribe to the depth '
            'aligned to colour)'
        )


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """Build K from focal lengths and principal point (pixels).

    Args:
        fx: focal length along x, pixels.
        fy: focal length along y, pixels.
        cx: principal point column, pixels.
        cy: principal point row, pixels.

    Returns:
        (3, 3) float64 K.

    Raises:
        ValueError: invalid values (see :func:`validate_intrinsics`).
    """
    return validate_intrinsics(np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]))


def normalised_to_pixels(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Map 0-1000 normalised coordinates to colour-image pixels: u = x/1000*W, v = y/1000*H.

    Args:
        xy: (N, 2) normalised coordinates.
        width: colour image width, pixels.
        height: colour image height, pixels.

    Returns:
        (N, 2) float64 (u, v).

    Raises:
        ValueError: non-positive image size.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f'image size must be positive, got {width}x{height}')
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    return xy * np.array([width / COORD_MAX, height / COORD_MAX])


def pixels_to_camera(pixels: np.ndarray, depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Back-project pixels with depth through the pinhole model.

    Args:
        pixels: (N, 2) (u, v) in pixels.
        depth: (N,) depth along the optical axis, metres (NaN propagates).
        K: (3, 3) intrinsics.

    Returns:
        (N, 3) float64 points (X right, Y down, Z forward), metres.
    """
    k = np.asarray(K, dtype=np.float64)
    uv = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    d = np.asarray(depth, dtype=np.float64).reshape(-1)
    fx, fy, cx, cy, skew = k[0, 0], k[1, 1], k[0, 2], k[1, 2], k[0, 1]
    y = (uv[:, 1] - cy) / fy
    x = (uv[:, 0] - cx - skew * y) / fx
    return np.stack([x * d, y * d, d], axis=1)


def sample_depth(
    depth_image: np.ndarray,
    pixels: np.ndarray,
    image_size: tuple[int, int],
    *,
    scale: float | None = None,
    window_px: int = 2,
    min_depth_m: float = 0.05,
    max_depth_m: float = 10.0,
) -> np.ndarray:
    """Robust sensor depth at colour-image pixels: median of valid readings in a window.

    Args:
        depth_image: (H_d, W_d) raw depth (uint16 mm by default, or float m), registered to the
            colour image; may have another resolution than the colour image.
        pixels: (N, 2) (u, v) in colour-image pixels.
        image_size: (width, height) of the colour image the pixels refer to.
        scale: metres per depth unit; None = 0.001 for integer images, 1.0 for float images.
        window_px: half-size of the square window in depth pixels.
        min_depth_m: readings below are ignored (0 = no measurement).
        max_depth_m: readings above are ignored.

    Returns:
        (N,) float64 metres; NaN where the window holds no valid reading or the pixel lies
        outside the image.

    Raises:
        ValueError: the depth image is not 2D.
    """
    img = np.asarray(depth_image)
    if img.ndim != 2:
        raise ValueError(f'depth image must be (H, W), got shape {img.shape}')
    if scale is None:
        scale = 0.001 if np.issubdtype(img.dtype, np.integer) else 1.0
    hd, wd = img.shape
    width, height = image_size
    uv = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    n = uv.shape[0]
    cols = uv[:, 0] * (wd / float(width))
    rows = uv[:, 1] * (hd / float(height))
    with np.errstate(invalid='ignore'):
        inside = np.isfinite(cols) & np.isfinite(rows) & (cols >= 0) & (rows >= 0)
        inside &= (cols <= wd) & (rows <= hd)
    ci = np.minimum(np.where(inside, cols, 0).astype(np.int64), wd - 1)
    ri = np.minimum(np.where(inside, rows, 0).astype(np.int64), hd - 1)
    offs = np.arange(-window_px, window_px + 1)
    cc = ci[:, None, None] + offs[None, None, :]  # (N, 1, k)
    rr = ri[:, None, None] + offs[None, :, None]  # (N, k, 1)
    in_bounds = (cc >= 0) & (cc < wd) & (rr >= 0) & (rr < hd) & inside[:, None, None]
    vals = img[np.clip(rr, 0, hd - 1), np.clip(cc, 0, wd - 1)].astype(np.float64) * scale
    with np.errstate(invalid='ignore'):
        ok = in_bounds & np.isfinite(vals) & (vals >= min_depth_m) & (vals <= max_depth_m)
    vals = np.where(ok, vals, np.inf).reshape(n, -1)
    vals.sort(axis=1)
    count = ok.reshape(n, -1).sum(axis=1)
    idx = np.arange(n)
    lo, hi = np.maximum((count - 1) // 2, 0), np.maximum(count // 2, 0)
    with np.errstate(invalid='ignore'):
        out = 0.5 * (vals[idx, lo] + vals[idx, hi])  # the median of the valid readings
    out[count == 0] = np.nan
    return out


def lift_trace(
    xy: np.ndarray,
    model_depth: np.ndarray | None,
    *,
    width: int,
    height: int,
    K: np.ndarray,
    depth_image: np.ndarray | None = None,
    depth_scale: float | None = None,
    options: LiftOptions | None = None,
) -> LiftResult:
    """Lift a normalised trace to metric 3D points in the camera optical frame.

    Args:
        xy: (N, 2) normalised 0-1000 coordinates (as parsed from the answer).
        model_depth: (N,) the model's depth per point, metres, or None for a 2D answer.
        width: colour image width, pixels (the image the model saw).
        height: colour image height, pixels.
        K: (3, 3) intrinsics of the colour image.
        depth_image: raw depth registered to the colour image (any resolution), or None.
        depth_scale: metres per depth unit (None: 0.001 for uint16, 1.0 for float).
        options: depth source and sampling options (default: fused).

    Returns:
        One lifted point per input point, in order (NaN where no depth is available).

    Raises:
        ValueError: bad intrinsics/size, ``model`` depth asked for a 2D answer, ``sensor`` depth
            asked without a depth image, or arrays of different lengths.
    """
    opts = options or LiftOptions()
    k = validate_intrinsics(K)
    pixels = normalised_to_pixels(xy, width, height)
    n = pixels.shape[0]
    if model_depth is None:
        m = np.full(n, np.nan)
    else:
        m = np.asarray(model_depth, dtype=np.float64).reshape(-1)
        if m.shape[0] != n:
            raise ValueError(f'{n} points but {m.shape[0]} model depths')
    if opts.depth_source == 'model' and model_depth is None:
        raise ValueError(
            "depth_source 'model' needs a 3D answer (x, y, d); this answer is 2D: use 'sensor' "
            "or 'fused' with a depth image"
        )
    if opts.depth_source == 'sensor' and depth_image is None:
        raise ValueError("depth_source 'sensor' needs a depth image")
    if opts.depth_source == 'fused' and depth_image is None and model_depth is None:
        raise ValueError("depth_source 'fused' needs a depth image or a 3D answer")
    if depth_image is not None and opts.depth_source != 'model':
        s = sample_depth(
            depth_image,
            pixels,
            (width, height),
            scale=depth_scale,
            window_px=opts.window_px,
            min_depth_m=opts.min_depth_m,
            max_depth_m=opts.max_depth_m,
        )
    else:
        s = np.full(n, np.nan)
    both = np.isfinite(m) & np.isfinite(s)
    thr = np.maximum(opts.fuse_threshold_m, opts.fuse_threshold_rel * np.where(both, s, 0.0))
    diff = np.where(both, m - s, 0.0)
    disagreement = both & (np.abs(diff) > thr)
    behind = np.zeros(n, dtype=bool)
    if opts.depth_source == 'model':
        depth = m.copy()
        codes = np.full(n, DEPTH_MODEL, dtype=np.uint8)
    elif opts.depth_source == 'sensor':
        depth = s.copy()
        codes = np.full(n, DEPTH_SENSOR, dtype=np.uint8)
    else:
        free_space = both & (diff < -thr)
        use_model = free_space | (np.isfinite(m) & ~np.isfinite(s))
        depth = np.where(use_model, m, s)
        codes = np.where(use_model, DEPTH_MODEL, DEPTH_SENSOR).astype(np.uint8)
        behind = both & (diff > thr)
    points = pixels_to_camera(pixels, depth, k)
    return LiftResult(
        points=points,
        pixels=pixels,
        depth=depth,
        depth_source=codes,
        disagreement=disagreement,
        behind_surface=behind,
        sensor_depth=s,
        model_depth=m,
    )
