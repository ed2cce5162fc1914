"""Scene-change detection on the depth stream, in the regions that matter for the running goal.

Design notes: docs/design-notes.md (trace_executor.scene_monitor).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from trace_executor.body_mask import MaskInput, RobotMask, chain_spheres, mask_spheres


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


# the body-mask names the nodes import from here (their home is trace_executor.body_mask)
__all__ = [
    'MaskInput',
    'MonitorConfig',
    'Region',
    'RobotMask',
    'SceneChange',
    'SceneMonitor',
    'chain_spheres',
    'mask_spheres',
    'plan_regions',
]
