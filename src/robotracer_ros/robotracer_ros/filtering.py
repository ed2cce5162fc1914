"""Clean up a lifted 3D trace and give a quality verdict.

Design notes: docs/design-notes.md (robotracer_ros.filtering).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math

import numpy as np

STATUS_VALID = 0
STATUS_DEGRADED = 1
STATUS_INVALID = 2
STATUS_NAMES = {STATUS_VALID: 'valid', STATUS_DEGRADED: 'degraded', STATUS_INVALID: 'invalid'}


@dataclass(frozen=True)
class FilterOptions:
    """Trace filter settings (metres); the defaults are the perception node's.

    Attributes:
        min_depth_m: points closer to the camera (Z) are invalid.
        max_depth_m: points farther (Z) are invalid.
        merge_distance_m: consecutive points closer than this are merged (0 disables, the
            default: repeated points are part of real answers and harm no executor).
        spike_min_m: an interior point is a spike only if farther than this from the segment
            joining its neighbours...
        spike_factor: ...and farther than this many times that segment's length.
        max_step_m: a step longer than this makes the trace invalid; None (default) or 0: no
            limit.
        resample_spacing_m: resample to this spacing along the path; None or 0 disables.
        min_points: fewer points after filtering -> invalid.
        max_drop_fraction: more than this fraction of points removed -> invalid.
    """

    min_depth_m: float = 0.05
    max_depth_m: float = 10.0
    merge_distance_m: float = 0.0
    spike_min_m: float = 0.5
    spike_factor: float = 3.0
    max_step_m: float | None = None
    resample_spacing_m: float | None = None
    min_points: int = 2
    max_drop_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.min_depth_m < self.max_depth_m:
            raise ValueError(
                f'depth range [{self.min_depth_m}, {self.max_depth_m}] m is empty or negative'
            )
        if self.merge_distance_m < 0 or self.spike_min_m <= 0 or self.spike_factor <= 0:
            raise ValueError('merge_distance_m >= 0, spike_min_m > 0 and spike_factor > 0 needed')
        if self.max_step_m is not None and self.max_step_m < 0:
            raise ValueError('max_step_m must be >= 0 (0 or None: no limit)')
        if self.resample_spacing_m is not None and self.resample_spacing_m < 0:
            raise ValueError('resample_spacing_m must be >= 0')
        if self.min_points < 1 or not 0 <= self.max_drop_fraction <= 1:
            raise ValueError('min_points >= 1 and 0 <= max_drop_fraction <= 1 needed')


@dataclass
class FilterResult:
    """Output of :func:`filter_trace`.

    Attributes:
        positions: (M,) float64 positions into the input sequence (see module docstring).
        points: (M, 3) filtered (and possibly resampled) points.
        status: ``STATUS_*``.
        note: human-readable reasons (empty when valid).
        dropped_invalid: input indices dropped as invalid.
        merged: input indices merged into their predecessor.
        rejected_spikes: input indices dropped as spikes off the path.
    """

    positions: np.ndarray
    points: np.ndarray
    status: int
    note: str
    dropped_invalid: list[int] = field(default_factory=list)
    merged: list[int] = field(default_factory=list)
    rejected_spikes: list[int] = field(default_factory=list)


def _steps(p: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.diff(p, axis=0), axis=1) if len(p) > 1 else np.zeros(0)


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance from ``p`` to the segment ``a``-``b``."""
    ab = b - a
    denom = float(ab @ ab)
    t = 0.0 if denom <= 0.0 else min(1.0, max(0.0, float((p - a) @ ab) / denom))
    return float(np.linalg.norm(a + t * ab - p))


def find_spike(points: np.ndarray, spike_min_m: float, spike_factor: float) -> int | None:
    """The interior point farthest off its neighbours' segment, if it is a spike.

    Args:
        points: (N, 3) trace.
        spike_min_m: a spike lies farther than this from its neighbours' segment, metres...
        spike_factor: ...and farther than this many times the segment's length.

    Returns:
        The spike's index into ``points`` (the worst one), or None.
    """
    worst, worst_ratio = None, 0.0
    for k in range(1, len(points) - 1):
        a, p, b = points[k - 1], points[k], points[k + 1]
        dev = _segment_distance(p, a, b)
        chord = float(np.linalg.norm(b - a))
        if dev > spike_min_m and dev > spike_factor * chord:
            ratio = dev / max(chord, 1e-9)
            if ratio > worst_ratio:
                worst, worst_ratio = k, ratio
    return worst


def resample_positions(points: np.ndarray, spacing: float) -> np.ndarray:
    """Positions (fractional indices) at a fixed arc-length spacing along a polyline.

    Args:
        points: (N, 3) polyline.
        spacing: spacing along the path, metres (> 0).

    Returns:
        (M,) float64 positions in [0, N-1]; the first and last point are always included.
    """
    n = len(points)
    if n < 2 or spacing <= 0:
        return np.arange(n, dtype=np.float64)
    seg = _steps(points)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    total = cum[-1]
    if total <= 0:
        return np.array([0.0, n - 1.0])
    count = int(np.floor(total / spacing + 1e-9))
    s = np.arange(count + 1) * spacing
    if total - s[-1] > 1e-9 * max(total, 1.0):
        s = np.append(s, total)
    s[-1] = total
    return np.interp(s, cum, np.arange(n, dtype=np.float64))


def take_at(values: np.ndarray, positions: np.ndarray, *, kind: str = 'linear') -> np.ndarray:
    """Evaluate a per-point attribute at (possibly fractional) positions.

    Args:
        values: (N, ...) attribute per input point.
        positions: (M,) positions from :class:`FilterResult`.
        kind: ``'linear'`` (interpolate), ``'nearest'`` (codes) or ``'any'`` (flags: true if
            either neighbour is true).

    Returns:
        (M, ...) values at the positions.

    Raises:
        ValueError: unknown kind.
    """
    v = np.asarray(values)
    pos = np.asarray(positions, dtype=np.float64)
    if v.shape[0] == 0 or pos.size == 0:
        return v[:0]
    whole = pos.astype(np.int64)
    if np.array_equal(whole, pos):  # no resampling: plain indexing
        return v[np.clip(whole, 0, v.shape[0] - 1)]
    lo = np.clip(np.floor(pos).astype(int), 0, v.shape[0] - 1)
    hi = np.clip(np.ceil(pos).astype(int), 0, v.shape[0] - 1)
    if kind == 'nearest':
        return v[np.clip(np.rint(pos).astype(int), 0, v.shape[0] - 1)]
    if kind == 'any':
        return v[lo] | v[hi]
    if kind != 'linear':
        raise ValueError(f"kind must be 'linear', 'nearest' or 'any', got {kind!r}")
    w = (pos - lo).reshape((-1,) + (1,) * (v.ndim - 1))
    return v[lo] * (1.0 - w) + v[hi] * w


def filter_trace(points: np.ndarray, options: FilterOptions | None = None) -> FilterResult:
    """Drop impossible points and spikes, optionally merge, limit steps and resample.

    Args:
        points: (N, 3) lifted points, metres (camera optical frame: Z is depth), in order.
        options: thresholds (default: the perception node's defaults).

    Returns:
        The filtered trace with positions into the input and a quality verdict + note.
    """
    opts = options or FilterOptions()
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    n = len(pts)
    notes: list[str] = []
    ok = np.all(np.isfinite(pts), axis=1)
    z = np.where(ok, pts[:, 2], np.nan)
    with np.errstate(invalid='ignore'):
        ok &= (z >= opts.min_depth_m) & (z <= opts.max_depth_m)
    idx = [int(i) for i in np.flatnonzero(ok)]
    dropped = [int(i) for i in np.flatnonzero(~ok)]
    if dropped:
        notes.append(
            f'dropped {len(dropped)} point(s) without valid depth in '
            f'[{opts.min_depth_m:g}, {opts.max_depth_m:g}] m (points '
            + ', '.join(str(i + 1) for i in dropped)
            + ')'
        )
    merged: list[int] = []
    if opts.merge_distance_m > 0 and len(idx) > 1:
        rows = pts.tolist()
        keep = [idx[0]]
        for i in idx[1:]:
            if math.dist(rows[i], rows[keep[-1]]) < opts.merge_distance_m:
                merged.append(i)
            else:
                keep.append(i)
        idx = keep
        if merged:
            notes.append(
                f'merged {len(merged)} duplicate point(s) closer than '
                f'{opts.merge_distance_m * 1000:g} mm'
            )
    spikes: list[int] = []
    while len(idx) >= 3:
        k = find_spike(pts[idx], opts.spike_min_m, opts.spike_factor)
        if k is None:
            break
        spikes.append(idx.pop(k))
    if spikes:
        notes.append(
            f'dropped {len(spikes)} spike point(s) far off the path of their neighbours '
            f"(over {opts.spike_min_m:g} m and {opts.spike_factor:g}x the neighbours' distance; "
            'points ' + ', '.join(str(i + 1) for i in sorted(spikes)) + ')'
        )
    unresolved: str | None = None
    if opts.max_step_m and len(idx) >= 2:
        steps = _steps(pts[idx])
        k = int(np.argmax(steps))
        if steps[k] > opts.max_step_m:
            unresolved = (
                f'the trace steps {steps[k]:.3f} m between points {idx[k] + 1} and '
                f'{idx[k + 1] + 1} (max_step_m {opts.max_step_m:g} m)'
            )
    positions = np.asarray(idx, dtype=np.float64)
    kept = pts[idx] if idx else np.zeros((0, 3))
    if opts.resample_spacing_m and len(idx) >= 2 and unresolved is None:
        local = resample_positions(kept, opts.resample_spacing_m)
        positions = take_at(positions, local)
        kept = take_at(kept, local)
    removed = n - len(idx)
    status = STATUS_VALID
    if unresolved is not None:
        status = STATUS_INVALID
        notes.insert(0, unresolved)
    elif len(idx) < opts.min_points:
        status = STATUS_INVALID
        notes.insert(
            0, f'only {len(idx)} usable point(s) of {n}; at least {opts.min_points} needed'
        )
    elif n and removed / n > opts.max_drop_fraction:
        status = STATUS_INVALID
        notes.insert(
            0, f'{removed} of {n} points removed (more than {opts.max_drop_fraction:.0%})'
        )
    elif removed or merged:
        status = STATUS_DEGRADED
    return FilterResult(
        positions=positions,
        points=kept,
        status=status,
        note='; '.join(notes),
        dropped_invalid=dropped,
        merged=merged,
        rejected_spikes=sorted(spikes),
    )
