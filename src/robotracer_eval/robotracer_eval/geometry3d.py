"""The benchmark's 3D geometry: the target's point cloud, a TSDF of the scene, collisions.

Design notes: docs/design-notes.md (robotracer_eval.geometry3d).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from robotracer_eval.metrics import COLLISION_RATIO, Intrinsics

MAX_OBJECT_DEPTH_MM = 15000.0
SOR_NEIGHBOURS = 10
SOR_STD_RATIO = 1.2
DBSCAN_EPS = 0.02
DBSCAN_MIN_POINTS = 10
MIN_CLUSTER = 5
TSDF_VOXEL = 0.02
TSDF_TRUNC = 4 * TSDF_VOXEL
TSDF_DEPTH_CUT = 5.0
TSDF_UNIT_RESOLUTION = 16
TSDF_ALLOC_STRIDE = 4
TSDF_EXTRACT_LIMIT = 0.98


# ------------------------------------------------------------------------------ object cloud


def backproject_pixels(
    us: np.ndarray, vs: np.ndarray, z: np.ndarray, intr: Intrinsics
) -> np.ndarray:
    """Pixels with z-depth (metres) → (N, 3) camera-frame points."""
    return np.stack([(us - intr.cx) * z / intr.fx, (vs - intr.cy) * z / intr.fy, z], axis=1)


def remove_statistical_outliers(
    points: np.ndarray, nb_neighbors: int = SOR_NEIGHBOURS, std_ratio: float = SOR_STD_RATIO
) -> np.ndarray:
    """Drop points whose mean distance to their neighbours is unusually large.

    Open3D's rule: the mean over the ``nb_neighbors`` nearest points (the point itself
    included) must be > 0 and < mean + std_ratio · std (std with Bessel's correction).

    Args:
        points: (N, 3).
        nb_neighbors: neighbours per point, itself included.
        std_ratio: threshold in standard deviations.

    Returns:
        The kept points (M, 3), in their original order.
    """
    p = np.asarray(points, dtype=float).reshape(-1, 3)
    n = len(p)
    if n == 0:
        return p
    k = min(nb_neighbors, n)
    dist, _ = cKDTree(p).query(p, k=k)
    dist = dist.reshape(n, k)
    avg = dist.mean(axis=1)
    if n < 2:
        return p[avg > 0]
    valid = avg > 0
    mean = float(avg[valid].sum()) / n
    sq = float(np.sum((avg[valid] - mean) ** 2))
    std = np.sqrt(sq / (n - 1))
    return p[(avg > 0) & (avg < mean + std_ratio * std)]


def voxel_down_sample(points: np.ndarray, voxel: float) -> np.ndarray:
    """Average the points in each voxel (grid from the minimum minus half a voxel)."""
    p = np.asarray(points, dtype=float).reshape(-1, 3)
    if len(p) == 0:
        return p
    lo = p.min(axis=0) - voxel * 0.5
    idx = np.floor((p - lo) / voxel).astype(np.int64)
    _, inverse, counts = np.unique(idx, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    out = np.zeros((len(counts), 3))
    np.add.at(out, inverse, p)
    return out / counts[:, None]


def dbscan_labels(points: np.ndarray, eps: float, min_points: int) -> np.ndarray:
    """DBSCAN labels (-1: noise); a point's neighbourhood includes itself.

    Core points within ``eps`` of each other form a cluster; a non-core point within ``eps`` of
    a core point joins (the first such core point's) cluster.
    """
    p = np.asarray(points, dtype=float).reshape(-1, 3)
    n = len(p)
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return labels
    tree = cKDTree(p)
    pairs = tree.query_pairs(eps, output_type='ndarray')
    counts = np.ones(n, dtype=np.int64)
    if len(pairs):
        np.add.at(counts, pairs[:, 0], 1)
        np.add.at(counts, pairs[:, 1], 1)
    core = counts >= min_points
    if not core.any():
        return labels
    cc = pairs[core[pairs[:, 0]] & core[pairs[:, 1]]] if len(pairs) else pairs
    core_idx = np.flatnonzero(core)
    pos = np.full(n, -1, dtype=np.int64)
    pos[core_idx] = np.arange(len(core_idx))
    graph = coo_matrix(
        (np.ones(len(cc)), (pos[cc[:, 0]], pos[cc[:, 1]])) if len(cc) else ([], ([], [])),
        shape=(len(core_idx), len(core_idx)),
    )
    _, comp = connected_components(graph, directed=False)
    labels[core_idx] = comp
    if len(pairs):
        border = pairs[core[pairs[:, 0]] != core[pairs[:, 1]]]
        for a, b in border:  # a border point joins the cluster of its first core neighbour
            c, o = (a, b) if core[a] else (b, a)
            if labels[o] < 0:
                labels[o] = labels[c]
    return labels


def largest_cluster(
    points: np.ndarray,
    eps: float = DBSCAN_EPS,
    min_points: int = DBSCAN_MIN_POINTS,
    min_cluster: int = MIN_CLUSTER,
) -> np.ndarray:
    """The largest DBSCAN cluster, or the points unchanged when none has ``min_cluster``."""
    labels = dbscan_labels(points, eps, min_points)
    good = labels[labels >= 0]
    if len(good) == 0:
        return points
    best = np.bincount(good).argmax()
    keep = points[labels == best]
    return keep if len(keep) >= min_cluster else points


def clean_object_cloud(points: np.ndarray) -> np.ndarray:
    """Outlier removal, voxel downsampling and DBSCAN, as the benchmark cleans the target."""
    p = np.asarray(points, dtype=float).reshape(-1, 3)
    if len(p) == 0:
        return p
    scale = float(np.linalg.norm(p.std(axis=0))) * 3.0 + 1e-6
    p = remove_statistical_outliers(p)
    p = voxel_down_sample(p, max(0.01, scale / 40.0))
    if len(p) == 0:
        return p
    return largest_cluster(p)


def object_cloud(mask: np.ndarray, depth_mm: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """The target's cleaned point cloud from its mask and the depth image.

    Args:
        mask: (H, W) target mask, > 0 inside (resized to the depth's size with nearest
            neighbour when it differs, as the benchmark does).
        depth_mm: (H, W) depth in millimetres (16-bit PNG values).
        intr: depth intrinsics.

    Returns:
        (M, 3) camera-frame points, metres (M may be 0).
    """
    depth = np.asarray(depth_mm, dtype=float)
    m = np.asarray(mask)
    if m.shape != depth.shape:
        h, w = depth.shape
        rows = np.minimum((np.arange(h) * m.shape[0] / h).astype(int), m.shape[0] - 1)
        cols = np.minimum((np.arange(w) * m.shape[1] / w).astype(int), m.shape[1] - 1)
        m = m[rows][:, cols]
    valid = (m > 0) & (depth > 0) & (depth < MAX_OBJECT_DEPTH_MM)
    vs, us = np.nonzero(valid)
    z = depth[vs, us] / 1000.0
    return clean_object_cloud(backproject_pixels(us.astype(float), vs.astype(float), z, intr))


# ------------------------------------------------------------------------------ TSDF


def _keys(idx: np.ndarray) -> np.ndarray:
    """Pack (N, 3) integer voxel indices (|i| < 2**20) into int64 keys."""
    off = np.int64(1 << 20)
    i = idx.astype(np.int64) + off
    return (i[:, 0] << np.int64(42)) | (i[:, 1] << np.int64(21)) | i[:, 2]


def _integrate(
    units: np.ndarray,
    depth: np.ndarray,
    mult: np.ndarray,
    intr: Intrinsics,
    voxel: float,
    trunc: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate one depth image into the voxels of some blocks, in Open3D's float32 steps.

    Open3D computes voxel centres, projections and signed distances in float32 (a voxel's z by
    repeated addition along the block); a depth equal to a voxel centre's z gives a TSDF of
    exactly 0, which never counts as a sign change. Doing the same arithmetic here keeps the
    extracted surface identical, not just close.

    Returns:
        ``(indices, tsdf)`` of the voxels that got a value within the extraction limits.
    """
    f32 = np.float32
    res = TSDF_UNIT_RESOLUTION
    h, w = depth.shape
    vl = f32(voxel)
    half = vl * f32(0.5)
    unit_len = voxel * res
    fx, fy, cx, cy = f32(intr.fx), f32(intr.fy), f32(intr.cx), f32(intr.cy)
    origin = units.astype(float) * unit_len  # (U, 3) float64, as Open3D's block origin
    steps = (half + vl * np.arange(res, dtype=f32)).astype(f32)  # (16,) float32
    xs = (steps.astype(float)[None, :] + origin[:, 0:1]).astype(f32)  # (U, 16)
    ys = (steps.astype(float)[None, :] + origin[:, 1:2]).astype(f32)
    z0 = (float(half) + origin[:, 2]).astype(f32)
    zs = np.empty((len(units), res), dtype=f32)
    zs[:, 0] = z0
    for k in range(1, res):
        zs[:, k] = zs[:, k - 1] + vl
    shape = (len(units), res, res, res)
    x = np.broadcast_to(xs[:, :, None, None], shape)
    y = np.broadcast_to(ys[:, None, :, None], shape)
    z = np.broadcast_to(zs[:, None, None, :], shape)
    front = z > 0
    safe_z = np.where(front, z, f32(1.0))
    u_f = (x * fx) / safe_z + cx + f32(0.5)
    v_f = (y * fy) / safe_z + cy + f32(0.5)
    eps = f32(0.0001)
    inside = front & (u_f >= eps) & (u_f < f32(w) - eps) & (v_f >= eps) & (v_f < f32(h) - eps)
    ui = np.where(inside, u_f, 0).astype(np.int64)
    vi = np.where(inside, v_f, 0).astype(np.int64)
    d = np.where(inside, depth[vi, ui], f32(0.0))
    sdf = (d - z) * mult[vi, ui]
    tsdf = np.minimum(f32(1.0), sdf * (f32(1.0) / f32(trunc)))
    lim = f32(TSDF_EXTRACT_LIMIT)
    keep = inside & (d > 0) & (sdf > -f32(trunc)) & (tsdf < lim) & (tsdf >= -lim)
    iu, ix, iy, iz = np.nonzero(keep)
    gidx = units[iu] * res + np.stack([ix, iy, iz], axis=1)
    return gidx, tsdf[keep]


def _ray_length_factor(h: int, w: int, intr: Intrinsics) -> np.ndarray:
    """(H, W) float32 ``sqrt(1 + ((u - cx)/fx)^2 + ((v - cy)/fy)^2)`` (depth → ray length)."""
    f32 = np.float32
    xx = (np.arange(w, dtype=f32) - f32(intr.cx)) * (f32(1.0) / f32(intr.fx))
    yy = (np.arange(h, dtype=f32) - f32(intr.cy)) * (f32(1.0) / f32(intr.fy))
    return np.sqrt(xx[None, :] * xx[None, :] + yy[:, None] * yy[:, None] + f32(1.0))


def tsdf_surface(
    depth_m: np.ndarray,
    intr: Intrinsics,
    voxel: float = TSDF_VOXEL,
    trunc: float = TSDF_TRUNC,
    depth_cut: float = TSDF_DEPTH_CUT,
) -> np.ndarray:
    """Surface points of a TSDF built from one depth image at the identity camera pose.

    Args:
        depth_m: (H, W) z-depth in metres (0: no return).
        intr: its intrinsics.
        voxel: voxel size, m.
        trunc: truncation distance, m.
        depth_cut: depth at or beyond this is ignored, m.

    Returns:
        (N, 3) surface points in the camera frame (zero crossings of the TSDF).
    """
    depth = np.asarray(depth_m, dtype=np.float32).copy()
    depth[depth >= depth_cut] = 0.0
    h, w = depth.shape
    res = TSDF_UNIT_RESOLUTION
    unit_len = voxel * res
    # 1. blocks around the depth points (every 4th pixel), +- trunc
    vs, us = np.mgrid[0:h:TSDF_ALLOC_STRIDE, 0:w:TSDF_ALLOC_STRIDE]
    z = depth[vs, us].astype(float)
    ok = z > 0
    if not ok.any():
        return np.zeros((0, 3))
    pts = backproject_pixels(us[ok].astype(float), vs[ok].astype(float), z[ok], intr)
    lo = np.floor((pts - trunc) / unit_len).astype(np.int64)
    hi = np.floor((pts + trunc) / unit_len).astype(np.int64)
    units = []
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                cand = lo + np.array([dx, dy, dz])
                inside = np.all(cand <= hi, axis=1)
                units.append(cand[inside])
    units = np.unique(np.concatenate(units), axis=0)
    # 2. integrate every voxel of those blocks (in chunks of blocks, to bound memory)
    mult = _ray_length_factor(h, w, intr)
    parts = [
        _integrate(units[i : i + 128], depth, mult, intr, voxel, trunc)
        for i in range(0, len(units), 128)
    ]
    gidx = np.concatenate([p[0] for p in parts])
    tsdf = np.concatenate([p[1] for p in parts]).astype(float)
    # voxel centres as Open3D's extraction computes them (float64)
    centre = (0.5 * voxel + voxel * (gidx % res)) + (gidx // res) * unit_len
    # 3. zero crossings between neighbouring voxels with weight
    if len(gidx) == 0:
        return np.zeros((0, 3))
    keys = _keys(gidx)
    order = np.argsort(keys)
    keys_sorted, tsdf_sorted = keys[order], tsdf[order]
    out = []
    for axis in range(3):
        step = np.zeros(3, dtype=np.int64)
        step[axis] = 1
        nk = _keys(gidx + step)
        pos = np.clip(np.searchsorted(keys_sorted, nk), 0, len(keys_sorted) - 1)
        found = keys_sorted[pos] == nk
        f1 = np.where(found, tsdf_sorted[pos], 0.0)
        cross = found & (tsdf * f1 < 0)
        r0, r1 = np.abs(tsdf[cross]), np.abs(f1[cross])
        p = centre[cross].copy()
        p0 = p[:, axis]
        p[:, axis] = (p0 * r1 + (p0 + voxel) * r0) / (r0 + r1)
        out.append(p)
    return np.concatenate(out)


@dataclass(frozen=True)
class OccupancyGrid:
    """Occupied voxels of the scene.

    Attributes:
        origin: (3,) corner of voxel (0, 0, 0), metres.
        voxel: voxel size, metres.
        keys: sorted packed indices of the occupied voxels.
    """

    origin: np.ndarray
    voxel: float
    keys: np.ndarray

    @classmethod
    def from_points(cls, points: np.ndarray, voxel: float = TSDF_VOXEL) -> OccupancyGrid:
        """Voxelise points (origin: their minimum minus half a voxel; floor indices).

        Raises:
            ValueError: no points (the benchmark then counts no collision).
        """
        p = np.asarray(points, dtype=float).reshape(-1, 3)
        if len(p) == 0:
            raise ValueError('no surface points: empty occupancy grid')
        origin = p.min(axis=0) - voxel * 0.5
        idx = np.floor((p - origin) / voxel).astype(np.int64)
        return cls(origin, float(voxel), np.unique(_keys(idx)))

    def occupied(self, points: np.ndarray) -> np.ndarray:
        """(N,) bool: the point's voxel (``int((p - origin) / voxel)``, truncating) is occupied."""
        p = np.asarray(points, dtype=float).reshape(-1, 3)
        idx = ((p - self.origin) / self.voxel).astype(np.int64)
        ok = np.all((idx >= 0) & (idx < (1 << 20)), axis=1)
        keys = _keys(np.where(ok[:, None], idx, 0))
        pos = np.clip(np.searchsorted(self.keys, keys), 0, max(len(self.keys) - 1, 0))
        return ok & (self.keys[pos] == keys) if len(self.keys) else np.zeros(len(p), bool)

    @property
    def size(self) -> int:
        """Number of occupied voxels."""
        return int(len(self.keys))


def scene_occupancy(
    depth_mm: np.ndarray, mask: np.ndarray | None, intr: Intrinsics, voxel: float = TSDF_VOXEL
) -> OccupancyGrid:
    """The obstacles: the depth image with the target's pixels (mask == 255) removed, as a TSDF.

    Args:
        depth_mm: (H, W) depth in millimetres.
        mask: (H, W) target mask (pixels equal to 255 are the target), or None.
        intr: intrinsics.
        voxel: voxel size, m.

    Returns:
        The occupancy grid.

    Raises:
        ValueError: the mask's size differs from the depth's, or the TSDF has no surface.
    """
    depth = np.asarray(depth_mm, dtype=np.float32).copy()
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != depth.shape:
            raise ValueError(f'mask {m.shape} and depth {depth.shape} differ in size')
        depth[m == 255] = 0.0
    surface = tsdf_surface(depth / np.float32(1000.0), intr, voxel=voxel, trunc=4 * voxel)
    return OccupancyGrid.from_points(surface, voxel)


def collision_ratios(
    grid: OccupancyGrid, object_points: np.ndarray, trace: np.ndarray
) -> np.ndarray:
    """Fraction of the object's points in occupied voxels with the object moved along the trace.

    Args:
        grid: scene occupancy.
        object_points: (M, 3) the target's cloud at the trace's first point.
        trace: (N, 3) predicted trace, camera frame, metres.

    Returns:
        (N,) ratios in 0..1 (all 0 for an empty object).
    """
    obj = np.asarray(object_points, dtype=float).reshape(-1, 3)
    t = np.asarray(trace, dtype=float).reshape(-1, 3)
    if len(obj) == 0 or len(t) == 0:
        return np.zeros(len(t))
    moved = obj[None, :, :] + (t - t[0])[:, None, :]
    hits = grid.occupied(moved.reshape(-1, 3)).reshape(len(t), len(obj))
    return hits.sum(axis=1) / len(obj)


def collides(ratios: np.ndarray, threshold: float = COLLISION_RATIO) -> bool:
    """True when the object is more than ``threshold`` inside obstacles at some point."""
    return bool(np.any(np.asarray(ratios) > threshold))
