"""A small synthetic TraceSpatial-Bench folder: depth, mask and image made for given questions.

The benchmark's images cannot be shipped or downloaded here; this builds a stand-in with the
same layout (``raw_data/<path>`` from each question's ``image_path`` / ``gt_depth_path`` /
``mask_path``) so the file-reading, mask and TSDF code paths run on real predictions. Each
scene is ray-cast from the question's intrinsics: a back wall, a floor, the target as a box
around the ground-truth start (in the mask, value 255), and a support box under the
destination. The image size is ``(round(2 cx), round(2 cy))``.

Used by the tests, the benchmark (``bench/eval.py``) and to cross-check against RoboTracer's
own script.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from robotracer_eval.bench_data import Question
from robotracer_eval.metrics import Intrinsics

TARGET_SIZE = 0.16  # m, side of the target box


def ray_box_depth(dirs: np.ndarray, lo: Sequence[float], hi: Sequence[float]) -> np.ndarray:
    """z-depth where rays ``(dx, dy, 1)`` first meet an axis-aligned box (inf: none).

    Args:
        dirs: (..., 3) ray directions with z = 1.
        lo: box minimum corner (3,).
        hi: box maximum corner (3,).

    Returns:
        (...) depth (the ray parameter equals z since dz = 1).
    """
    lo_a, hi_a = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    with np.errstate(divide='ignore', invalid='ignore'):
        t1 = lo_a / dirs
        t2 = hi_a / dirs
    tmin = np.nanmax(np.minimum(t1, t2), axis=-1)
    tmax = np.nanmin(np.maximum(t1, t2), axis=-1)
    hit = (tmax >= tmin) & (tmin > 0)
    return np.where(hit, tmin, np.inf)


def render_scene(
    q: Question, obstacles: Sequence[Sequence[Sequence[float]]] = ()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray-cast a question's stand-in scene.

    Args:
        q: the question (intrinsics, ground truth, destination box).
        obstacles: more boxes ``[lo, hi]`` (camera frame, metres), e.g. a wall across a
            trace.

    Returns:
        ``(rgb, depth_mm, mask)``: (H, W, 3) uint8, (H, W) uint16 millimetres, (H, W) uint8.
    """
    intr = Intrinsics.from_matrix(q.intrinsics)
    w, h = max(8, round(2 * intr.cx)), max(8, round(2 * intr.cy))
    v, u = np.mgrid[0:h, 0:w].astype(float)
    dirs = np.stack([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, np.ones_like(u)], axis=-1)
    traj = q.trajectory
    pts = [traj] + ([q.bbox_center[None, :]] if q.bbox_center is not None else [])
    allp = np.concatenate(pts)
    wall_z = float(min(allp[:, 2].max() + 0.8, 4.6))
    floor_y = float(allp[:, 1].max() + 0.35)
    depth = np.full((h, w), wall_z)
    with np.errstate(divide='ignore'):
        floor = np.where(dirs[..., 1] > 1e-6, floor_y / dirs[..., 1], np.inf)
    depth = np.minimum(depth, floor)
    if q.bbox_center is not None and q.bbox_extent is not None:
        c = q.bbox_center
        e = q.bbox_extent
        top = c[1] + e[1] / 2  # y down: the support's top under the destination box
        lo = [c[0] - e[0] / 2, top + 0.02, c[2] - e[2] / 2]
        hi = [c[0] + e[0] / 2, floor_y, c[2] + e[2] / 2]
        depth = np.minimum(depth, ray_box_depth(dirs, lo, hi))
    for lo, hi in obstacles:
        depth = np.minimum(depth, ray_box_depth(dirs, lo, hi))
    s = traj[0]
    half = TARGET_SIZE / 2
    target = ray_box_depth(dirs, s - half, s + half)
    mask = (target < depth).astype(np.uint8) * 255
    depth = np.minimum(depth, target)
    depth_mm = np.clip(np.round(depth * 1000.0), 0, 65535).astype(np.uint16)
    shade = np.clip(255 - depth * 40, 30, 255).astype(np.uint8)
    rgb = np.repeat(shade[..., None], 3, axis=2)
    rgb[mask > 0] = (200, 60, 60)
    return rgb, depth_mm, mask


def write_bench_folder(
    root: str | Path,
    questions: Sequence[Question],
    obstacles: dict[str, Sequence[Sequence[Sequence[float]]]] | None = None,
) -> Path:
    """Write ``root/raw_data/...`` for the questions (each distinct image once).

    Args:
        root: the benchmark folder to create.
        questions: the questions (their paths, intrinsics and ground truth).
        obstacles: extra boxes per scene, by the question's ``gt_depth_path``.

    Returns:
        ``root``.
    """
    from PIL import Image

    root = Path(root)
    done: set[str] = set()
    for q in questions:
        if q.depth_path in done:
            continue
        done.add(q.depth_path)
        rgb, depth_mm, mask = render_scene(q, (obstacles or {}).get(q.depth_path, ()))
        for rel, arr in ((q.image_path, rgb), (q.depth_path, depth_mm), (q.mask_path, mask)):
            p = root / 'raw_data' / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(p)
    return root
