"""TraceSpatial-Bench's path metrics and 2D/3D checks (numpy and scipy, no ROS).

Design notes: docs/design-notes.md (robotracer_eval.metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import math

import numpy as np

RESAMPLE_POINTS = 100
DFD_OUTLIER = 100.0
START_THRESHOLD_M = 0.20
END_THRESHOLD_M = 0.20
COLLISION_RATIO = 0.20
Z_EPS = 1e-6


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of the benchmark's depth camera.

    Attributes:
        fx: focal length x, pixels.
        fy: focal length y, pixels.
        cx: principal point x, pixels.
        cy: principal point y, pixels.
    """

    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_matrix(cls, matrix: Sequence[Sequence[float]] | np.ndarray) -> Intrinsics:
        """Read fx=[0][0], fy=[1][1], cx=[0][2], cy=[1][2] of a 3×3 or 4×4 matrix.

        Raises:
            ValueError: missing, or not 3×3 / 4×4.
        """
        if matrix is None:
            raise ValueError('intrinsics matrix is missing')
        m = np.asarray(matrix, dtype=float)
        if m.shape not in ((3, 3), (4, 4)):
            raise ValueError(f'intrinsics must be 3x3 or 4x4, got shape {m.shape}')
        return cls(float(m[0, 0]), float(m[1, 1]), float(m[0, 2]), float(m[1, 2]))

    @property
    def matrix(self) -> np.ndarray:
        """The 3×3 matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class PathScores:
    """Path metrics of one question (units: those of the traces given).

    Attributes:
        dfd: discrete Fréchet distance.
        hd: Hausdorff distance.
        rmse: root mean square of point-to-point distances.
        mae: mean absolute per-coordinate difference.
    """

    dfd: float
    hd: float
    rmse: float
    mae: float


# ---------------------------------------------------------------------------------- traces


def resample_by_arclength(trace: np.ndarray, n: int = RESAMPLE_POINTS) -> np.ndarray:
    """Resample a polyline to ``n`` points evenly spaced along its length.

    Args:
        trace: (N, D) points.
        n: number of points wanted.

    Returns:
        (n, D) points; the trace unchanged when it has fewer than 2 points; its first point
        repeated when its length is zero.
    """
    p = np.asarray(trace, dtype=float)
    if p.ndim != 2 or len(p) < 2 or n <= 1:
        return p
    seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    total = float(cum[-1])
    if total <= 1e-12:
        return np.repeat(p[:1], n, axis=0)
    s = np.linspace(0.0, total, n)
    return np.stack([np.interp(s, cum, p[:, d]) for d in range(p.shape[1])], axis=1)


def pairwise_distances(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(N, M) Euclidean distances between the rows of ``p`` and ``q``."""
    d = p[:, None, :] - q[None, :, :]
    return np.sqrt(np.sum(d * d, axis=2))


def discrete_frechet(p: np.ndarray, q: np.ndarray) -> float:
    """Discrete Fréchet distance between two polylines (Eiter and Mannila's recursion).

    Computed one anti-diagonal at a time (each cell needs only the two previous diagonals).

    Args:
        p: (N, D) points.
        q: (M, D) points.

    Returns:
        The distance.

    Raises:
        ValueError: an empty trace.
    """
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    n, m = len(p), len(q)
    if n == 0 or m == 0:
        raise ValueError('discrete Frechet distance of an empty trace')
    d = pairwise_distances(p, q)
    # skewed layout: diag[k, i + 1] = d[i, k - i]; column 0 is an inf pad for i - 1 = -1
    ii, jj = np.indices((n, m))
    diag = np.full((n + m - 1, n + 1), np.inf)
    diag[ii + jj, ii + 1] = d
    prev2 = np.full(n + 1, np.inf)  # diagonal k - 2
    prev = np.full(n + 1, np.inf)  # diagonal k - 1
    prev[1] = d[0, 0]
    for k in range(1, n + m - 1):
        lo, hi = max(0, k - m + 1), min(n - 1, k)
        s = slice(lo + 1, hi + 2)  # cells i = lo..hi
        sm = slice(lo, hi + 1)  # their i - 1
        best = np.minimum(np.minimum(prev[sm], prev[s]), prev2[sm])
        cur = np.full(n + 1, np.inf)
        cur[s] = np.maximum(best, diag[k, s])
        prev2, prev = prev, cur
    return float(prev[n])


def hausdorff(p: np.ndarray, q: np.ndarray) -> float:
    """Symmetric Hausdorff distance: the larger of the two directed distances."""
    d = pairwise_distances(np.asarray(p, dtype=float), np.asarray(q, dtype=float))
    return float(max(d.min(axis=1).max(), d.min(axis=0).max()))


def rmse_mae(p: np.ndarray, q: np.ndarray) -> tuple[float, float]:
    """RMSE (Euclidean per point) and MAE (per coordinate) of two aligned traces.

    Raises:
        ValueError: the traces have different shapes.
    """
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    if p.shape != q.shape:
        raise ValueError(f'traces must be aligned, got {p.shape} and {q.shape}')
    diff = p - q
    rmse = math.sqrt(float(np.mean(np.sum(diff * diff, axis=1))))
    mae = float(np.mean(np.abs(diff)))
    return rmse, mae


def path_scores(
    pred: np.ndarray,
    gt: np.ndarray,
    scale: Sequence[float] | None = None,
    n: int = RESAMPLE_POINTS,
) -> PathScores:
    """Resample both traces and compute DFD, HD, RMSE and MAE.

    Args:
        pred: (N, D) predicted trace (pixels in 2D, metres in 3D).
        gt: (M, D) ground-truth trace, same unit.
        scale: divide the resampled traces by this per coordinate before measuring
            (2D: ``[W, H]``, as the benchmark resamples in pixels and scores in image units).
        n: resampled length.

    Returns:
        The four figures.
    """
    a = resample_by_arclength(pred, n)
    b = resample_by_arclength(gt, n)
    if scale is not None:
        s = np.asarray(scale, dtype=float)
        a, b = a / s, b / s
    rmse, mae = rmse_mae(a, b)
    return PathScores(discrete_frechet(a, b), hausdorff(a, b), rmse, mae)


def average_path_scores(scores: Sequence[PathScores | None]) -> dict[str, float | int | None]:
    """Average per-question path figures as the benchmark does.

    Questions without figures (None) and those with ``dfd > DFD_OUTLIER`` are left out.

    Returns:
        ``{'dfd', 'hd', 'rmse', 'mae'}`` (None when no question counts) and ``n_path`` (how many
        questions count) and ``n_outliers`` (how many were left out for DFD).
    """
    kept = [s for s in scores if s is not None and not s.dfd > DFD_OUTLIER]
    outliers = sum(1 for s in scores if s is not None and s.dfd > DFD_OUTLIER)

    def mean(attr: str) -> float | None:
        return float(np.mean([getattr(s, attr) for s in kept])) if kept else None

    return {
        'dfd': mean('dfd'),
        'hd': mean('hd'),
        'rmse': mean('rmse'),
        'mae': mean('mae'),
        'n_path': len(kept),
        'n_outliers': outliers,
    }


# ---------------------------------------------------------------------------------- camera


def project(points: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """Camera-frame points (N, 3) → pixels (N, 2): ``u = fx X/Z + cx`` (``|Z| < 1e-6`` → 1e-6)."""
    p = np.asarray(points, dtype=float).reshape(-1, 3)
    z = np.where(np.abs(p[:, 2]) < Z_EPS, Z_EPS, p[:, 2])
    return np.stack([p[:, 0] * intr.fx / z + intr.cx, p[:, 1] * intr.fy / z + intr.cy], axis=1)


def backproject(xyd: np.ndarray, width: int, height: int, intr: Intrinsics) -> np.ndarray:
    """Normalised answer points ``(x, y, d)`` (x, y in 0–1, d metres) → camera-frame points.

    ``X = (x W - cx) d / fx``, ``Y = (y H - cy) d / fy``, ``Z = d``.
    """
    a = np.asarray(xyd, dtype=float).reshape(-1, 3)
    u = a[:, 0] * width
    v = a[:, 1] * height
    d = a[:, 2]
    return np.stack([(u - intr.cx) * d / intr.fx, (v - intr.cy) * d / intr.fy, d], axis=1)


def box_corners(center: Sequence[float], extent: Sequence[float], rotation) -> np.ndarray:
    """The 8 corners (8, 3) of an oriented box (``extent``: full side lengths; R: local→camera)."""
    c = np.asarray(center, dtype=float).reshape(3)
    h = np.asarray(extent, dtype=float).reshape(3) / 2.0
    r = np.asarray(rotation, dtype=float).reshape(3, 3)
    signs = np.array([[sx, sy, sz] for sz in (-1, 1) for sy in (-1, 1) for sx in (-1, 1)])
    return (signs * h) @ r.T + c


def box_to_image(
    center: Sequence[float], extent: Sequence[float], rotation, intr: Intrinsics
) -> tuple[float, float, float, float]:
    """Project a 3D box's corners; return their pixel bounds ``(u_min, v_min, u_max, v_max)``."""
    uv = project(box_corners(center, extent, rotation), intr)
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


# ---------------------------------------------------------------------------------- checks


def start_in_mask(point_uv: Sequence[float], mask: np.ndarray) -> bool:
    """True when the pixel nearest ``(u, v)`` (Python rounding) is inside the image and mask."""
    u, v = float(point_uv[0]), float(point_uv[1])
    if not (math.isfinite(u) and math.isfinite(v)):
        return False
    ui, vi = int(round(u)), int(round(v))
    h, w = mask.shape[:2]
    return bool(0 <= vi < h and 0 <= ui < w and mask[vi, ui] > 0)


def end_points(trace: np.ndarray) -> np.ndarray:
    """The points that may count as the end: the last three, or the last one when fewer."""
    t = np.asarray(trace)
    return t[-3:] if len(t) >= 3 else t[-1:]


def end_in_box_2d(pred_uv: np.ndarray, box_2d: tuple[float, float, float, float]) -> bool:
    """True when one of the end points lies in the 2D box (bounds inclusive)."""
    u0, v0, u1, v1 = box_2d
    return any(u0 <= float(u) <= u1 and v0 <= float(v) <= v1 for u, v in end_points(pred_uv))


def point_to_box_distance(
    point: Sequence[float], center: Sequence[float], extent: Sequence[float], rotation
) -> float:
    """Distance from a point to an oriented box (0 inside), metres."""
    p = np.asarray(point, dtype=float).reshape(3)
    c = np.asarray(center, dtype=float).reshape(3)
    r = np.asarray(rotation, dtype=float).reshape(3, 3)
    h = np.asarray(extent, dtype=float).reshape(3) / 2.0
    local = np.linalg.solve(r, p - c)
    if np.all(np.abs(local) <= h):
        return 0.0
    closest = r @ np.clip(local, -h, h) + c
    return float(np.linalg.norm(p - closest))


def end_distance_3d(pred: np.ndarray, center, extent, rotation) -> float:
    """Smallest distance of the end points (:func:`end_points`) to the destination box, m."""
    return min(point_to_box_distance(p, center, extent, rotation) for p in end_points(pred))


def start_distance_3d(start: np.ndarray, object_points: np.ndarray, gt_start: np.ndarray) -> float:
    """min(distance from the start to the object's cloud, distance to the ground-truth start).

    Raises:
        ValueError: an empty object cloud (the benchmark then fails the start).
    """
    obj = np.asarray(object_points, dtype=float).reshape(-1, 3)
    if len(obj) == 0:
        raise ValueError('empty object point cloud')
    s = np.asarray(start, dtype=float).reshape(3)
    d_obj = float(np.min(np.linalg.norm(obj - s, axis=1)))
    return min(d_obj, float(np.linalg.norm(s - np.asarray(gt_start, dtype=float))))
