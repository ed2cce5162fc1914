"""Scene-change detection on the depth stream, in the regions that matter for the running goal.

Design notes: docs/design-notes.md (trace_executor.scene_monitor).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import threading
import time
from typing import Any, Union

import numpy as np

from trace_executor.execution import SceneEvent


@dataclass
class MonitorConfig:
    """Thresholds of the scene monitor.

    Attributes:
        depth_threshold_m: a pixel changed when its depth moved by more than this (metres).
        min_changed_fraction: a region changed when this fraction of its pixels changed.
        min_changed_pixels: ... and at least this many pixels (after downsampling).
        downsample: check every n-th pixel in both directions (2 -> a quarter of the pixels).
        robot_mask_radius_m: pixels this close (metres, at the point's depth) to a robot point
            are ignored.
        max_region_radius_px: cap on a projected disk radius (pixels, full resolution).
        reproject_window: compared with a reference re-projected from another camera pose, a
            pixel changed only beyond the nearest/farthest reference depth in this window
            (cells of the downsampled grid, odd).
    """

    depth_threshold_m: float = 0.03
    min_changed_fraction: float = 0.25
    min_changed_pixels: int = 20
    downsample: int = 2
    robot_mask_radius_m: float = 0.09
    max_region_radius_px: float = 120.0
    reproject_window: int = 3

    def __post_init__(self) -> None:
        if not self.depth_threshold_m > 0:
            raise ValueError(f'depth_threshold_m must be > 0, got {self.depth_threshold_m}')
        if not 0 < self.min_changed_fraction <= 1:
            raise ValueError(
                f'min_changed_fraction must be in (0, 1], got {self.min_changed_fraction}'
            )
        if self.downsample < 1:
            raise ValueError(f'downsample must be >= 1, got {self.downsample}')


@dataclass
class RobotMask:
    """The robot's body now, as spheres to mask, in the monitor's base frame.

    Attributes:
        spheres: (M, 4) rows ``x, y, z, radius`` (metres): links, gripper or hands.
        hand: (4, 4) pose of the hand that grasps (the UR5's TCP, the G1's grasp frame of the
            closed hand), or None: what the robot holds is carried with this pose.
    """

    spheres: np.ndarray
    hand: np.ndarray | None = None


#: What a robot-mask source may return: a :class:`RobotMask`, (M, 3) points (masked with
#: :attr:`MonitorConfig.robot_mask_radius_m`), (M, 4) spheres, or None (nothing known).
MaskInput = Union[RobotMask, np.ndarray, None]


def mask_spheres(mask: MaskInput, default_radius_m: float) -> np.ndarray:
    """(M, 4) ``x, y, z, radius`` rows of a mask given in any :data:`MaskInput` form."""
    if mask is None:
        return np.zeros((0, 4))
    if isinstance(mask, RobotMask):
        mask = mask.spheres
    a = np.asarray(mask, dtype=np.float64)
    if a.size == 0:
        return np.zeros((0, 4))
    if a.ndim != 2 or a.shape[1] not in (3, 4):
        raise ValueError(f'robot mask must be (M, 3) points or (M, 4) spheres, got {a.shape}')
    if a.shape[1] == 3:
        a = np.column_stack([a, np.full(len(a), default_radius_m)])
    return a


def chain_spheres(chain: np.ndarray, radius_m: float, step_m: float = 0.05) -> np.ndarray:
    """(M, 4) spheres of ``radius_m`` every ``step_m`` along a polyline ``chain`` (N, 3)."""
    chain = np.asarray(chain, dtype=np.float64).reshape(-1, 3)
    pts = [chain[0]]
    for a, b in zip(chain[:-1], chain[1:], strict=True):
        n = max(1, int(np.ceil(np.linalg.norm(b - a) / step_m)))
        pts += [a + (b - a) * (i / n) for i in range(1, n + 1)]
    p = np.array(pts)
    return np.column_stack([p, np.full(len(p), radius_m)])


@dataclass
class Region:
    """A region to watch: spheres (centres in the base frame, metres) with one radius."""

    name: str
    centres: np.ndarray
    radius_m: float

    @staticmethod
    def corridor(name: str, path: np.ndarray, radius_m: float, step_m: float = 0.03) -> Region:
        """Spheres every ``step_m`` along a polyline ``path`` (N, 3)."""
        path = np.asarray(path, dtype=np.float64).reshape(-1, 3)
        pts = [path[0]]
        for a, b in zip(path[:-1], path[1:], strict=True):
            n = max(1, int(np.ceil(np.linalg.norm(b - a) / step_m)))
            pts += [a + (b - a) * (i / n) for i in range(1, n + 1)]
        return Region(name, np.array(pts), radius_m)


def plan_regions(
    trace: np.ndarray,
    mode: str,
    holding: bool,
    region_radius_m: float,
    corridor_radius_m: float,
    clear_radius_m: float,
) -> list[Region]:
    """The regions that matter while a plan runs (trace in the monitor's base frame).

    The object at the trace start (pick_place, until grasped), the destination, and the
    corridor along the path minus ``clear_radius_m`` around both ends, which the object itself
    leaves or reaches.
    """
    trace = np.asarray(trace, dtype=float)
    regions: list[Region] = []
    if not holding and mode == 'pick_place':
        regions.append(Region('object at the trace start', trace[:1], region_radius_m))
    regions.append(Region('destination', trace[-1:], region_radius_m))
    path = Region.corridor('path corridor', trace, corridor_radius_m)
    far = (np.linalg.norm(path.centres - trace[0], axis=1) > clear_radius_m) & (
        np.linalg.norm(path.centres - trace[-1], axis=1) > clear_radius_m
    )
    if far.any():
        regions.append(Region('path corridor', path.centres[far], corridor_radius_m))
    return regions


@dataclass
class SceneChange:
    """A detected change: which region, how much, and a sentence for logs and feedback."""

    region: str
    changed_fraction: float
    changed_pixels: int
    median_shift_m: float
    reason: str = field(default='')
    #: (M, 3) base-frame points of pixels that came *closer* than the reference (something
    #: appeared: a candidate obstacle), over all watched regions.
    appeared_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))


class SceneMonitor:
    """Compare depth frames against a reference inside projected regions.

    Args:
        K: (3, 3) intrinsics of the depth image (aligned to colour).
        T_base_cam: (4, 4) pose of the camera optical frame in the base frame.
        image_size: (width, height) of the depth image.
        config: thresholds.
    """

    def __init__(
        self,
        K: np.ndarray,
        T_base_cam: np.ndarray,
        image_size: tuple[int, int],
        config: MonitorConfig | None = None,
    ) -> None:
        self.config = config or MonitorConfig()
        self.K = np.asarray(K, dtype=np.float64).reshape(3, 3)
        self.width, self.height = int(image_size[0]), int(image_size[1])
        s = self.config.downsample
        self._grid_v, self._grid_u = np.mgrid[0 : self.height : s, 0 : self.width : s]
        self._grid_u = self._grid_u.astype(np.float32)
        self._grid_v = self._grid_v.astype(np.float32)
        self._regions: list[tuple[Region, list[np.ndarray]]] = []
        self._ref: np.ndarray | None = None
        self._ref_robot_grid: np.ndarray | None = None
        self._ref_known: np.ndarray | None = None
        self._ref_range: tuple[np.ndarray, np.ndarray] | None = None
        self.set_camera(T_base_cam)

    # --- setup -------------------------------------------------------------------------------
    def set_camera(self, T_base_cam: np.ndarray) -> None:
        """Set the camera pose; drops the reference (a moved camera needs a new one)."""
        self.T_base_cam = np.asarray(T_base_cam, dtype=np.float64).reshape(4, 4)
        self.T_cam_base = np.linalg.inv(self.T_base_cam)
        self._ref = None
        regions = [r for r, _ in self._regions]
        self._regions = []
        self.set_regions(regions)

    def _project(self, pts_base: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = np.asarray(pts_base, dtype=np.float64).reshape(-1, 3)
        pc = p @ self.T_cam_base[:3, :3].T + self.T_cam_base[:3, 3]
        z = pc[:, 2]
        with np.errstate(divide='ignore', invalid='ignore'):
            u = self.K[0, 0] * pc[:, 0] / z + self.K[0, 2]
            v = self.K[1, 1] * pc[:, 1] / z + self.K[1, 2]
        return u, v, z

    def _disks(self, pts_base: np.ndarray, radius_m: float) -> np.ndarray:
        """Boolean mask (downsampled grid) of the projected spheres."""
        mask = np.zeros(self._grid_u.shape, dtype=bool)
        for disk in self._disk_list(pts_base, radius_m):
            mask.flat[disk] = True
        return mask

    def _disk_list(self, pts_base: np.ndarray, radius_m: float) -> list[np.ndarray]:
        """Flat indices (downsampled grid) of each projected sphere, one array per sphere."""
        out: list[np.ndarray] = []
        ncols = self._grid_u.shape[1]
        u, v, z = self._project(pts_base)
        f = 0.5 * (self.K[0, 0] + self.K[1, 1])
        for ui, vi, zi in zip(u, v, z, strict=True):
            if not (np.isfinite(ui) and np.isfinite(vi) and zi > 0.05):
                continue
            r = min(f * radius_m / zi, self.config.max_region_radius_px)
            if ui < -r or vi < -r or ui > self.width + r or vi > self.height + r:
                continue
            s = self.config.downsample
            nrows = self._grid_u.shape[0]
            r0, r1 = max(int((vi - r) // s), 0), min(int((vi + r) // s) + 1, nrows)
            c0, c1 = max(int((ui - r) // s), 0), min(int((ui + r) // s) + 1, ncols)
            if r0 >= r1 or c0 >= c1:
                continue
            du = self._grid_u[r0:r1, c0:c1] - ui
            dv = self._grid_v[r0:r1, c0:c1] - vi
            rr, cc = np.nonzero(du * du + dv * dv <= r * r)
            if rr.size:
                out.append((rr + r0) * ncols + (cc + c0))
        return out

    def set_regions(self, regions: list[Region]) -> None:
        """Watch these regions from now on (projected once here)."""
        raw = [(r, self._disk_list(r.centres, r.radius_m)) for r in regions]
        all_idx = [d for _, disks in raw for d in disks]
        # Only the pixels of the regions are ever read: keep their union, and each disk as
        # positions inside that union.
        self._union = np.unique(np.concatenate(all_idx)) if all_idx else np.zeros(0, np.int64)
        self._regions = [(r, [np.searchsorted(self._union, d) for d in disks]) for r, disks in raw]

    @property
    def regions(self) -> list[str]:
        """Names of the watched regions."""
        return [r.name for r, _ in self._regions]

    def _robot_depth(self, robot: MaskInput) -> np.ndarray | None:
        """Per pixel (region union): farthest depth that can still be the robot (-inf: none)."""
        if not len(self._union):
            return None
        grid = self._robot_grid(robot)
        return None if grid is None else grid.ravel()[self._union]

    def _robot_grid(self, robot: MaskInput) -> np.ndarray | None:
        """Per pixel (downsampled grid): farthest depth that can still be the robot (-inf: none).

        Each sphere marks the pixels of its projected disk with its centre's depth plus its
        radius (the farthest its surface can be); one slice of the grid per sphere.
        """
        spheres = mask_spheres(robot, self.config.robot_mask_radius_m)
        if not len(spheres):
            return None
        grid = np.full(self._grid_u.shape, -np.inf, dtype=np.float32)
        u, v, z = self._project(spheres[:, :3])
        f = 0.5 * (self.K[0, 0] + self.K[1, 1])
        s = self.config.downsample
        nrows, ncols = grid.shape
        for ui, vi, zi, rad in zip(u, v, z, spheres[:, 3], strict=True):
            if not (np.isfinite(ui) and np.isfinite(vi)) or zi <= 0.05:
                continue
            r = min(f * rad / zi, self.config.max_region_radius_px)
            r0, r1 = max(int((vi - r) // s), 0), min(int((vi + r) // s) + 1, nrows)
            c0, c1 = max(int((ui - r) // s), 0), min(int((ui + r) // s) + 1, ncols)
            if r0 >= r1 or c0 >= c1:
                continue
            du = self._grid_u[r0:r1, c0:c1] - ui
            dv = self._grid_v[r0:r1, c0:c1] - vi
            cell = grid[r0:r1, c0:c1]
            np.maximum(cell, np.where(du * du + dv * dv <= r * r, zi + rad, -np.inf), out=cell)
        return grid

    def _sample(self, depth_m: np.ndarray) -> np.ndarray:
        d = np.asarray(depth_m)
        if d.shape != (self.height, self.width):
            raise ValueError(
                f'depth image is {d.shape[1]}x{d.shape[0]}, the monitor was set up '
                f'for {self.width}x{self.height}'
            )
        s = self.config.downsample
        d = d[::s, ::s].astype(np.float32)
        return np.where(np.isfinite(d) & (d > 0), d, np.nan)

    def set_reference(self, depth_m: np.ndarray, robot_points_base: MaskInput = None) -> None:
        """Take ``depth_m`` (metres, NaN/0 = no return) as the scene to compare against.

        Args:
            depth_m: (H, W) depth in metres.
            robot_points_base: the robot in this frame (see :data:`MaskInput`), masked.
        """
        self._ref = self._sample(depth_m)
        self._ref_known = None
        self._ref_range = None
        self._ref_robot_grid = self._robot_grid(robot_points_base)

    def seen_from(self, T_base_cam: np.ndarray) -> SceneMonitor:
        """This monitor's reference as the camera would see it from another pose.

        The reference depth (without the pixels that showed the robot) is lifted to 3D and
        projected into the camera at ``T_base_cam`` with a z-buffer (each point covers its grid
        cell and the next one right and down, so a slight zoom leaves no holes). Pixels that no
        reference point reaches (what the robot or an object hid, what was out of view) are
        *unknown* and take no part in the checks of the returned monitor. The scene is assumed
        static in the base frame: right for a camera that moves with the robot's waist or base
        over a still scene, which is what the check then tests.

        Args:
            T_base_cam: (4, 4) the new camera pose in the base frame.

        Returns:
            A monitor at that pose, with the same regions and this reference re-projected.

        Raises:
            RuntimeError: no reference frame was set.
        """
        if self._ref is None:
            raise RuntimeError('scene monitor has no reference frame: call set_reference first')
        out = SceneMonitor(self.K, T_base_cam, (self.width, self.height), self.config)
        out.set_regions([r for r, _ in self._regions])
        s = self.config.downsample
        z = self._ref.ravel().astype(np.float64)
        keep = np.isfinite(z)
        if self._ref_robot_grid is not None:
            keep &= ~(z <= self._ref_robot_grid.ravel())  # the robot moves: not the scene
        u = self._grid_u.ravel()[keep].astype(np.float64)
        v = self._grid_v.ravel()[keep].astype(np.float64)
        z = z[keep]
        pc = np.column_stack(
            [(u - self.K[0, 2]) * z / self.K[0, 0], (v - self.K[1, 2]) * z / self.K[1, 1], z]
        )
        t = out.T_cam_base @ self.T_base_cam
        q = pc @ t[:3, :3].T + t[:3, 3]
        z2 = q[:, 2]
        front = z2 > 0.05
        q, z2 = q[front], z2[front]
        col = (self.K[0, 0] * q[:, 0] / z2 + self.K[0, 2]) / s
        row = (self.K[1, 1] * q[:, 1] / z2 + self.K[1, 2]) / s
        nrows, ncols = self._grid_u.shape
        flat = np.full(nrows * ncols, np.inf)
        c0, r0 = np.floor(col).astype(np.int64), np.floor(row).astype(np.int64)
        for dr in (0, 1):
            for dc in (0, 1):
                rr, cc = r0 + dr, c0 + dc
                ok = (rr >= 0) & (rr < nrows) & (cc >= 0) & (cc < ncols)
                np.minimum.at(flat, rr[ok] * ncols + cc[ok], z2[ok])
        known = np.isfinite(flat)
        out._ref = np.where(known, flat, np.nan).astype(np.float32).reshape(nrows, ncols)
        out._ref_known = known
        # Seen from elsewhere, thin structures (a cup's rim) and silhouettes land a cell or two
        # off: a pixel changed only beyond the depths its neighbourhood predicted.
        grid = flat.reshape(nrows, ncols)
        k = self.config.reproject_window
        lo = _window(np.where(known, flat, np.inf).reshape(nrows, ncols), k, np.minimum)
        hi = _window(np.where(known, flat, -np.inf).reshape(nrows, ncols), k, np.maximum)
        out._ref_range = (
            np.where(np.isfinite(lo), lo, grid).ravel(),
            np.where(np.isfinite(hi), hi, grid).ravel(),
        )
        return out

    @property
    def has_reference(self) -> bool:
        """Whether a reference frame was set (since the last camera move)."""
        return self._ref is not None

    # --- check -------------------------------------------------------------------------------
    def check(
        self, depth_m: np.ndarray, robot_points_base: MaskInput = None
    ) -> SceneChange | None:
        """Compare a new frame with the reference; return the most changed region, if any.

        Args:
            depth_m: (H, W) depth in metres (NaN or 0 = no return).
            robot_points_base: the robot now (see :data:`MaskInput`; base frame), masked.

        Returns:
            The region with the largest changed fraction above the thresholds, or None.

        Raises:
            RuntimeError: no reference frame was set.
            ValueError: the frame has the wrong size.
        """
        if self._ref is None:
            raise RuntimeError('scene monitor has no reference frame: call set_reference first')
        cur = self._sample(depth_m)
        now_robot = self._robot_depth(robot_points_base)
        cfg = self.config
        u = self._union
        ref, now = self._ref.ravel()[u], cur.ravel()[u]
        ref_ok, now_ok = np.isfinite(ref), np.isfinite(now)
        both = ref_ok & now_ok
        delta = np.where(both, now - ref, 0.0)
        if self._ref_range is None:
            moved = np.abs(delta) > cfg.depth_threshold_m
        else:  # a re-projected reference: beyond what the neighbourhood predicted
            lo, hi = self._ref_range[0][u], self._ref_range[1][u]
            with np.errstate(invalid='ignore'):
                moved = (now < lo - cfg.depth_threshold_m) | (now > hi + cfg.depth_threshold_m)
        changed = (both & moved) | (ref_ok ^ now_ok)
        considered = ref_ok | now_ok
        if self._ref_known is not None:  # a re-projected reference: only where it saw
            changed &= self._ref_known[u]
            considered &= self._ref_known[u]
        # A pixel shows the robot when it is near a robot point in the image and its depth is
        # not beyond that point (+ radius); such pixels are ignored in both frames.
        ignore = np.zeros(u.shape, dtype=bool)
        ref_robot = None if self._ref_robot_grid is None else self._ref_robot_grid.ravel()[u]
        for depth, robot in ((ref, ref_robot), (now, now_robot)):
            if robot is not None:
                near = robot > -np.inf
                ignore |= near & ~(depth > robot)  # no return (NaN) near the robot: ignored too
        if ignore.any():
            changed &= ~ignore
            considered &= ~ignore
        best: SceneChange | None = None
        for region, disks in self._regions:
            # A region changed when one of its spheres changed (a small obstacle in a long
            # corridor is a large fraction of the sphere it sits in).
            for disk in disks:
                n = int(considered[disk].sum())
                if n == 0:
                    continue
                c = changed[disk]
                k = int(c.sum())
                frac = k / n
                if k < cfg.min_changed_pixels or frac < cfg.min_changed_fraction:
                    continue
                if best is not None and frac <= best.changed_fraction:
                    continue
                moved = delta[disk][c & both[disk]]
                shift = float(np.median(moved)) if moved.size else float('nan')
                what = (
                    'something appeared (closer)'
                    if shift < 0
                    else 'something left (farther)'
                    if shift > 0
                    else 'returns appeared/vanished'
                )
                best = SceneChange(
                    region.name,
                    frac,
                    k,
                    shift,
                    f'{region.name}: {frac:.0%} of {n} pixels changed by > '
                    f'{cfg.depth_threshold_m * 100:.0f} cm ({what}, median '
                    f'{shift * 100:+.1f} cm)',
                )
        if best is not None:
            best.appeared_points = self._appeared_points(u, now, both & changed & (delta < 0))
        return best

    def _appeared_points(self, union: np.ndarray, now: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Base-frame 3D points of the pixels in ``mask`` (indices into the region union)."""
        if not mask.any():
            return np.zeros((0, 3))
        s = self.config.downsample
        cols = self._grid_u.shape[1]
        idx = union[mask]
        u = (idx % cols).astype(np.float64) * s
        v = (idx // cols).astype(np.float64) * s
        z = now[mask].astype(np.float64)
        pc = np.column_stack(
            [(u - self.K[0, 2]) * z / self.K[0, 0], (v - self.K[1, 2]) * z / self.K[1, 1], z]
        )
        return pc @ self.T_base_cam[:3, :3].T + self.T_base_cam[:3, 3]


def _window(a: np.ndarray, k: int, reduce: Callable[..., np.ndarray]) -> np.ndarray:
    """``reduce`` (np.minimum/np.maximum) over the k×k neighbourhood of every cell.

    Separable: k - 1 element-wise reductions of shifted copies along each axis (edges padded).
    """
    r = k // 2
    if r < 1:
        return a
    out = a
    for axis in (0, 1):
        pad = np.pad(out, [(r, r) if i == axis else (0, 0) for i in range(2)], mode='edge')
        n = out.shape[axis]
        acc = np.take(pad, range(0, n), axis=axis)
        for d in range(1, 2 * r + 1):
            acc = reduce(acc, np.take(pad, range(d, d + n), axis=axis))
        out = acc
    return out


def pose_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Translation (m) and rotation angle (rad) between two 4×4 poses."""
    dt = float(np.linalg.norm(a[:3, 3] - b[:3, 3]))
    c = (np.trace(a[:3, :3].T @ b[:3, :3]) - 1.0) / 2.0
    return dt, float(np.arccos(np.clip(c, -1.0, 1.0)))


def _swept(a: np.ndarray, b: np.ndarray, max_steps: int = 16) -> list[np.ndarray]:
    """Spheres between two samples of the same mask (none when they do not correspond)."""
    if a.shape != b.shape or not len(a):
        return []
    step = float(np.linalg.norm(b[:, :3] - a[:, :3], axis=1).max())
    radius = float(max(np.min(np.minimum(a[:, 3], b[:, 3])), 1e-3))
    n = min(max_steps, int(np.ceil(step / (0.5 * radius))))
    if n < 2:
        return []
    return [a + (b - a) * (k / n) for k in range(1, n)]


class BodyMaskHistory:
    """The robot's mask spheres over the last moments, plus the object it holds.

    A depth frame reaches the watcher some time after it was taken (transport, rendering): the
    robot was elsewhere then. The history keeps the spheres sampled over the last
    ``window_s`` seconds; a frame that arrived at ``t`` is masked with every sample since
    ``t - window_s``, so whatever pose the robot had while the frame was taken is masked.

    The held object is a sphere of ``held_radius_m`` whose centre is fixed in the hand frame
    (:attr:`RobotMask.hand`): :meth:`grasp` records it from where the object was when the hand
    closed on it (the trace start), so it is carried with the hand from then on, until
    :meth:`release`. Its size is not measured: ``held_radius_m`` bounds the objects the robot
    handles (the largest in our scenes, a 20 cm plate, has a bounding sphere of 10 cm).

    Args:
        source: the robot's mask now (see :data:`MaskInput`); called from the goal thread.
        default_radius_m: radius of points given without one.
        held_radius_m: radius of the sphere masked around a held object (m).
        max_held_offset_m: the held object's centre is taken at most this far from the hand
            (a trace start farther from the hand than that is a perception error).
        window_s: how long a sample masks frames that arrive after it (s).
        min_period_s: samples closer in time than this are not stored separately (s).
        clock: seconds, monotonic (simulated time in tests).
    """

    def __init__(
        self,
        source: Callable[[], MaskInput],
        default_radius_m: float,
        held_radius_m: float = 0.11,
        max_held_offset_m: float = 0.08,
        window_s: float = 0.3,
        min_period_s: float = 0.03,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if held_radius_m < 0 or window_s < 0:
            raise ValueError('held_radius_m and window_s must be >= 0')
        self.source = source
        self.default_radius_m = default_radius_m
        self.held_radius_m = held_radius_m
        self.max_held_offset_m = max_held_offset_m
        self.window_s = window_s
        self.min_period_s = min_period_s
        self.clock = clock
        #: samples are kept at least this long (s): a frame up to that old can be masked
        self.keep_s = window_s
        #: the held object's centre in the hand frame (None: nothing held)
        self.held_offset: np.ndarray | None = None
        self._samples: list[tuple[float, float, np.ndarray]] = []  # first t, last t, spheres
        self._last: RobotMask | None = None

    def _read(self) -> tuple[np.ndarray, np.ndarray | None]:
        mask = self.source()
        spheres = mask_spheres(mask, self.default_radius_m)
        hand = mask.hand if isinstance(mask, RobotMask) else None
        if self.held_offset is not None and hand is not None:
            centre = hand[:3, :3] @ self.held_offset + hand[:3, 3]
            spheres = np.vstack([spheres, [*centre, self.held_radius_m]])
        return spheres, hand

    def sample(self, force: bool = False) -> None:
        """Read the source now and keep the spheres (rate-limited unless ``force``)."""
        now = self.clock()
        if self._samples and not force and now - self._samples[-1][1] < self.min_period_s:
            return
        spheres, _ = self._read()
        last = self._samples[-1] if self._samples else None
        if (
            last is not None
            and last[2].shape == spheres.shape
            and (not len(spheres) or float(np.abs(last[2] - spheres).max()) < 0.003)
        ):
            self._samples[-1] = (last[0], now, last[2])  # the robot did not move
        else:
            self._samples.append((now, now, spheres))
        keep_after = now - max(2 * self.window_s, self.keep_s) - 1.0
        self._samples = [s for s in self._samples if s[1] >= keep_after]

    def spheres_since(self, t: float) -> np.ndarray:
        """(M, 4) spheres of every sample that was current at or after time ``t``.

        Between two consecutive samples the robot moved; where it moved farther than half a
        sphere's radius (samples are sparse when the goal thread is starved), the spheres are
        also placed along the way, so the swept volume is masked, not only its ends.
        """
        recent = [s for _, last, s in self._samples if last >= t]
        if not recent and self._samples:
            recent = [self._samples[-1][2]]
        parts = list(recent)
        for a, b in zip(recent, recent[1:], strict=False):
            parts.extend(_swept(a, b))
        return np.vstack(parts) if parts else np.zeros((0, 4))

    def grasp(self, object_centre: np.ndarray) -> None:
        """The hand closed on an object centred at ``object_centre`` (base frame) now."""
        self.held_offset = None
        _, hand = self._read()
        if hand is None:
            return
        local = hand[:3, :3].T @ (np.asarray(object_centre, dtype=float) - hand[:3, 3])
        n = float(np.linalg.norm(local))
        if n > self.max_held_offset_m:
            local *= self.max_held_offset_m / n
        self.held_offset = local
        self.sample(force=True)

    def release(self) -> None:
        """Nothing is held any more."""
        if self.held_offset is not None:
            self.held_offset = None
            self.sample(force=True)

    @property
    def holding(self) -> bool:
        """Whether a held object is masked."""
        return self.held_offset is not None


class PlanSceneWatcher:
    """A :class:`~trace_executor.execution.SceneWatcher` on depth frames with camera poses.

    Regions (object at the trace start until grasped, destination, path corridor) are spheres
    in the base frame; each depth frame comes with the camera pose at its stamp (a fixed camera:
    always the same pose). The reference is the newest frame when a plan is armed. A frame whose
    camera pose differs a little from the reference's (the waist turns during a reach) is
    compared with the reference re-projected to its pose (:meth:`SceneMonitor.seen_from`); one
    from farther away (a walk) is not compared. Once the camera has been still for
    ``settle_frames`` frames at a new pose (and nothing changed where it could be compared),
    that pose gets a new reference.

    The robot is masked with ``robot_points`` (its links, gripper or hands) and, from the grasp
    (:meth:`arm` with ``holding``) to the release, the object it holds (see
    :class:`BodyMaskHistory`), in the reference and in every compared frame; changes where only
    the robot or what it holds moved are neither scene changes nor obstacles.

    ROS-free: the node feeds frames (:meth:`on_frame`) and intrinsics.

    Args:
        config: scene monitor thresholds.
        robot_points: callable giving the robot's mask now (see :data:`MaskInput`), or None.
        region_radius_m: radius of the object and destination regions.
        corridor_radius_m: radius of the path corridor spheres.
        clear_radius_m: corridor spheres this close to the start/end are left out.
        same_pose_m: camera poses closer than this (and ``same_pose_rad``) are the same.
        same_pose_rad: rotation tolerance of "the same pose".
        settle_frames: frames at an unchanged new pose before it gets a new reference.
        held_object_radius_m: radius of the sphere masked around a held object.
        mask_latency_s: how late a depth frame may arrive after it was taken (the robot's masks
            of that long before a frame's arrival are applied to it); a frame that comes with
            its age (:meth:`on_frame`) is masked from when it was taken, however late.
        max_frame_age_s: frames older than this on arrival (a starved camera or subscriber)
            are not compared: the robot has moved on since (s).
        max_reproject_m: a frame from a camera pose this close to the reference's (and
            ``max_reproject_rad``) is compared with the reference re-projected to its pose
            (:meth:`SceneMonitor.seen_from`); farther ones (a walk) are skipped.
        max_reproject_rad: rotation limit of that comparison.
        log: ``log(message)`` for warnings.
        clock: seconds, monotonic (simulated time in tests).
    """

    def __init__(
        self,
        config: MonitorConfig,
        robot_points: Callable[[], MaskInput],
        region_radius_m: float = 0.05,
        corridor_radius_m: float = 0.04,
        clear_radius_m: float = 0.08,
        same_pose_m: float = 0.001,
        same_pose_rad: float = 0.001,
        settle_frames: int = 2,
        held_object_radius_m: float = 0.11,
        mask_latency_s: float = 0.3,
        max_reproject_m: float = 0.15,
        max_reproject_rad: float = 0.3,
        max_frame_age_s: float = 2.0,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.robot_points = robot_points
        self.region_radius_m = region_radius_m
        self.corridor_radius_m = corridor_radius_m
        self.clear_radius_m = clear_radius_m
        self.same_pose_m = same_pose_m
        self.same_pose_rad = same_pose_rad
        self.settle_frames = settle_frames
        self.log = log or (lambda m: None)
        self.clock = clock
        self.masks = BodyMaskHistory(
            lambda: self.robot_points(),
            config.robot_mask_radius_m,
            held_radius_m=held_object_radius_m,
            window_s=mask_latency_s,
            clock=clock,
        )
        self.max_frame_age_s = max_frame_age_s
        self._clock_warned = False
        self.masks.keep_s = max(mask_latency_s, max_frame_age_s) + 0.1
        self._lock = threading.Lock()
        # depth, pose, seq, arrival time, time taken (the watcher's clock)
        self._frame: tuple[np.ndarray, np.ndarray, int, float, float] | None = None
        self._seq = 0
        self._checked = 0
        self._K: np.ndarray | None = None
        self._monitor: SceneMonitor | None = None
        self._regions: list[Region] = []
        self._ref_pose: np.ndarray | None = None
        self._candidate: tuple[np.ndarray, int] | None = None
        self._moved: tuple[np.ndarray, SceneMonitor] | None = None
        self.max_reproject_m = max_reproject_m
        self.max_reproject_rad = max_reproject_rad
        self._armed = False
        #: the last change seen (None: none since :meth:`arm`)
        self.last_change: SceneChange | None = None
        self.stats = {
            'compared': 0,
            'reprojected': 0,
            'skipped_moving': 0,
            'references': 0,
            'changes': 0,
            'skipped_stale': 0,
        }

    # --- input ---------------------------------------------------------------------------
    def set_intrinsics(self, k: np.ndarray) -> None:
        """The depth image's 3×3 intrinsics."""
        self._K = np.asarray(k, dtype=float).reshape(3, 3)

    def on_frame(
        self, depth_m: np.ndarray, t_base_camera: np.ndarray | None, age_s: float | None = None
    ) -> None:
        """A new depth frame (metres) and the camera pose at its stamp (None: unknown).

        ``age_s``: how long ago the frame was taken (arrival time minus its stamp, on the
        caller's clock); None when unknown (then ``mask_latency_s`` is assumed).
        """
        if t_base_camera is None:
            return
        now = self.clock()
        if age_s is not None and not -0.5 <= age_s <= 30.0:
            # Not a late frame but another clock (sim time against wall time, no time sync):
            # mask by arrival time, as without stamps.
            if not self._clock_warned:
                self._clock_warned = True
                self.log(
                    f'scene monitor: a depth frame is stamped {age_s:+.1f} s from now: camera '
                    'and node clocks disagree (use_sim_time, time sync); masking the robot by '
                    'arrival time'
                )
            age_s = None
        age = self.masks.window_s if age_s is None else max(float(age_s), 0.0)
        with self._lock:
            self._seq += 1
            self._frame = (
                depth_m,
                np.asarray(t_base_camera, dtype=float),
                self._seq,
                now,
                now - age,
            )

    @property
    def has_frame(self) -> bool:
        """Whether a depth frame and intrinsics have arrived."""
        return self._frame is not None and self._K is not None

    # --- SceneWatcher --------------------------------------------------------------------
    def arm(self, plan: Any, holding: bool) -> None:
        """Regions for ``plan`` and a reference from the newest frame.

        ``holding`` right after a grasp (the previous arm was not holding) records the held
        object at the trace start, carried with the hand from now on; not holding drops it.
        """
        self.masks.sample(force=True)
        if holding and not self.masks.holding:
            self.masks.grasp(np.asarray(plan.trace_base, dtype=float)[0])
        elif not holding:
            self.masks.release()
        regions = plan_regions(
            plan.trace_base,
            plan.mode,
            holding,
            self.region_radius_m,
            self.corridor_radius_m,
            self.clear_radius_m,
        )
        with self._lock:
            frame = self._frame
        self._regions = regions
        self._monitor = None
        self._ref_pose = None
        self._candidate = None
        self.last_change = None
        if frame is None or self._K is None:
            self.log('scene monitor: no depth frame / camera_info yet: replanning is off')
            self._armed = False
            return
        self._armed = True
        self._reference(frame)

    def _mask_for(self, arrived: float, taken: float) -> np.ndarray:
        """Every pose the robot had from (a little before) the frame was taken until now."""
        since = min(arrived - self.masks.window_s, taken - self.masks.min_period_s)
        return self.masks.spheres_since(since)

    def _reference(self, frame: tuple[np.ndarray, np.ndarray, int, float, float]) -> None:
        depth, pose, seq, arrived, taken = frame
        h, w = depth.shape
        assert self._K is not None
        if self._monitor is None or (self._monitor.width, self._monitor.height) != (w, h):
            self._monitor = SceneMonitor(self._K, pose, (w, h), self.config)
        else:
            self._monitor.set_camera(pose)
        self._monitor.set_regions(self._regions)
        self._monitor.set_reference(depth, self._mask_for(arrived, taken))
        self._moved = None
        self._ref_pose = pose
        self._checked = seq
        self.stats['references'] += 1

    def _same(self, a: np.ndarray, b: np.ndarray) -> bool:
        dt, dr = pose_difference(a, b)
        return dt <= self.same_pose_m and dr <= self.same_pose_rad

    def _moved_view(self, pose: np.ndarray) -> SceneMonitor | None:
        """The reference seen from ``pose`` (cached per pose), or None when too far to tell."""
        assert self._monitor is not None and self._ref_pose is not None
        dt, dr = pose_difference(pose, self._ref_pose)
        if dt > self.max_reproject_m or dr > self.max_reproject_rad:
            return None
        if self._moved is None or not self._same(pose, self._moved[0]):
            self._moved = (pose, self._monitor.seen_from(pose))
        return self._moved[1]

    def poll(self) -> SceneEvent | None:
        """Check the newest frame once; what changed (reason, where something appeared)."""
        if not self._armed or self._monitor is None or self._ref_pose is None:
            return None
        self.masks.sample()
        with self._lock:
            frame = self._frame
        if frame is None or frame[2] == self._checked:
            return None
        depth, pose, seq, arrived, taken = frame
        self._checked = seq
        if arrived - taken > self.max_frame_age_s:
            self.stats['skipped_stale'] += 1  # the robot has moved on since: nothing to tell
            return None
        monitor: SceneMonitor | None = self._monitor
        if not self._same(pose, self._ref_pose):
            # The camera moved (waist, base): compare with the reference re-projected to the
            # new pose while the move is small; once still at a new pose, re-reference there.
            monitor = self._moved_view(pose)
            if self._candidate is not None and self._same(pose, self._candidate[0]):
                self._candidate = (pose, self._candidate[1] + 1)
            else:
                self._candidate = (pose, 1)
            if monitor is None:
                self.stats['skipped_moving'] += 1
                if self._candidate[1] >= self.settle_frames:
                    self._candidate = None
                    self._reference(frame)
                return None
            self.stats['reprojected'] += 1
        else:
            self._candidate = None
        self.stats['compared'] += 1
        change = monitor.check(depth, self._mask_for(arrived, taken))
        if change is None:
            if self._candidate is not None and self._candidate[1] >= self.settle_frames:
                self._candidate = None
                self._reference(frame)  # nothing changed: watch from here on
            return None
        self.stats['changes'] += 1
        self.last_change = change
        appeared = change.median_shift_m < 0 and len(change.appeared_points)
        return SceneEvent(change.reason, change.appeared_points if appeared else np.zeros((0, 3)))

    def disarm(self) -> None:
        """Stop watching until the next :meth:`arm`."""
        self._armed = False
