"""Ground-truth traces: where an object's centre should go for a task, in the world and the image.

Design notes: docs/design-notes.md (robotracer_sim.oracle.trace).
"""

from __future__ import annotations

import numpy as np

from robotracer_sim.oracle.geometry import project
from robotracer_sim.oracle.language import LanguageError, Task, resolve
from robotracer_sim.oracle.scene import SceneObject, SceneSnapshot

ROUND_SHAPES = ('cylinder', 'cup', 'bowl', 'plate', 'sphere')
GAP = 0.03  # m between objects set down beside each other
CLEARANCE = 0.04  # m of free space under a carried object over the others
MIN_LIFT = 0.10  # m the object is raised at least
ARC = 0.03  # m extra height in the middle of the travel
MIN_ANSWER_DEPTH = 0.1  # m: the nearest depth a model answers (nothing closer is in view)


class Unanswerable(ValueError):
    """The oracle cannot produce a trace; ``reply`` is what it answers instead (like a model)."""

    def __init__(self, reason: str, reply: str) -> None:
        super().__init__(reason)
        self.reply = reply


def view_axes(t_world_camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The viewer's right and away-from-camera directions in the table plane.

    Args:
        t_world_camera: 4×4 optical camera → world.

    Returns:
        ``(right, forward)``: horizontal unit vectors (3,) in the world.

    """
    r = t_world_camera[:3, :3]
    right = np.array([r[0, 0], r[1, 0], 0.0])
    fwd = np.array([r[0, 2], r[1, 2], 0.0])
    if np.linalg.norm(fwd) < 1e-6:  # looking straight down: "away" is image-up
        fwd = -np.array([r[0, 1], r[1, 1], 0.0])
    right /= max(np.linalg.norm(right), 1e-9)
    fwd /= max(np.linalg.norm(fwd), 1e-9)
    return right, fwd


def _direction_vector(direction: str, t_world_camera: np.ndarray) -> np.ndarray:
    right, fwd = view_axes(t_world_camera)
    return {
        'left': -right,
        'right': right,
        'forward': fwd,
        'backward': -fwd,
        'up': np.array([0.0, 0.0, 1.0]),
    }[direction]


def extent_along(o: SceneObject, d: np.ndarray) -> float:
    """Distance from an object's centre to the edge of its footprint in direction ``d``."""
    h = o.world_half_extents
    if o.shape in ROUND_SHAPES:
        return float(max(h[0], h[1]))
    return float(abs(d[0]) * h[0] + abs(d[1]) * h[1])


def destination(task: Task, x: SceneObject, snap: SceneSnapshot) -> np.ndarray:
    """Where the centre of the moved object ``x`` ends for ``task``.

    Args:
        task: the parsed task.
        x: the object to move.
        snap: the scene.

    Returns:
        The destination of the centre in the world (3,).

    Raises:
        Unanswerable: the reference object cannot be resolved or is ``x`` itself.

    """
    hx = x.world_half_extents
    if task.kind in ('carry', 'slide', 'lift'):
        assert task.direction is not None and task.distance is not None
        return x.position + _direction_vector(task.direction, snap.t_world_camera) * task.distance
    assert task.reference is not None
    y = _resolve(task.reference, snap)
    if y.name == x.name:
        raise Unanswerable(
            f'{x.name} cannot be placed relative to itself',
            'The object cannot be placed relative to itself.',
        )
    if task.relation in ('on', 'in'):
        return np.array([y.position[0], y.position[1], y.position[2] + y.support_offset + hx[2]])
    if task.relation == 'next_to':
        d = x.position - y.position
        d[2] = 0.0
        if np.linalg.norm(d) < 1e-6:
            d = view_axes(snap.t_world_camera)[0]
        d = d / np.linalg.norm(d)
    else:
        d = _direction_vector(
            {
                'left_of': 'left',
                'right_of': 'right',
                'in_front_of': 'backward',
                'behind': 'forward',
            }[task.relation or ''],
            snap.t_world_camera,
        )
    offset = extent_along(y, d) + extent_along(x, d) + GAP
    floor = y.position[2] - y.world_half_extents[2]
    p = y.position + d * offset
    p[2] = floor + hx[2]
    return p


def _resolve(phrase: str, snap: SceneSnapshot) -> SceneObject:
    try:
        return resolve(phrase, snap.objects)
    except LanguageError as exc:
        if 'ambiguous' in str(exc):
            raise Unanswerable(
                str(exc), 'There is more than one matching object; which one do you mean?'
            ) from None
        raise Unanswerable(str(exc), 'I cannot find that object in the image.') from None


def plan_trace(task: Task, snap: SceneSnapshot) -> tuple[str, np.ndarray]:
    """Plan the ground-truth trace of ``task`` in ``snap``.

    Args:
        task: the parsed task.
        snap: the scene.

    Returns:
        ``(object name, points)``: the moved object and the (N, 3) world trace of its centre.

    Raises:
        Unanswerable: an object cannot be resolved.

    """
    x = _resolve(task.target, snap)
    start = x.position.copy()
    end = destination(task, x, snap)
    if task.kind == 'slide':
        return x.name, np.linspace(start, end, 6)
    if task.kind == 'lift':
        return x.name, np.linspace(start, end, 5)
    others = [o for o in snap.objects if o.name != x.name and not o.held]
    tops = [o.position[2] + o.world_half_extents[2] for o in others]
    hx = x.world_half_extents[2]
    travel = max(
        start[2] + MIN_LIFT,
        end[2] + MIN_LIFT,
        (max(tops) if tops else 0.0) + hx + CLEARANCE,
    )
    pts = [start, np.array([*start[:2], (start[2] + travel) / 2]), np.array([*start[:2], travel])]
    span = float(np.linalg.norm(end[:2] - start[:2]))
    n_mid = 3 if span > 0.15 else (1 if span > 0.05 else 0)
    for i in range(1, n_mid + 1):
        f = i / (n_mid + 1)
        xy = start[:2] + f * (end[:2] - start[:2])
        pts.append(np.array([*xy, travel + ARC * np.sin(np.pi * f)]))
    pts += [np.array([*end[:2], travel]), np.array([*end[:2], (end[2] + travel) / 2]), end]
    return x.name, np.asarray(pts)


def project_trace(
    points_world: np.ndarray,
    k: np.ndarray,
    t_world_camera: np.ndarray,
    width: int,
    height: int,
) -> np.ndarray:
    """Project a world trace into RoboTracer's normalised image coordinates.

    Args:
        points_world: (N, 3) points in the world.
        k: 3×3 intrinsics of the image the answer is about.
        t_world_camera: 4×4 optical camera → world.
        width: that image's width, pixels.
        height: its height, pixels.

    Returns:
        (N, 3) ``(x, y, d)``: x, y in 0–1000 (clipped), d z-depth in metres.

    """
    uvz = project(points_world, k, t_world_camera)
    x = np.clip(1000.0 * uvz[:, 0] / width, 0.0, 1000.0)
    y = np.clip(1000.0 * uvz[:, 1] / height, 0.0, 1000.0)
    return np.stack([x, y, uvz[:, 2]], axis=1)


def visible_trace(
    points_world: np.ndarray,
    k: np.ndarray,
    t_world_camera: np.ndarray,
    width: int,
    height: int,
    min_depth: float = MIN_ANSWER_DEPTH,
) -> np.ndarray:
    """The part of a world trace a model looking at the image can answer.

    Points in front of the camera are kept (a point beside the image is clipped to its border
    later, by :func:`project_trace`). Where the trace passes behind the camera (depth below
    ``min_depth``), it ends at the last point along it that lies inside the image and in front
    of the camera: a model cannot place what it cannot see, and never answers a depth at or
    behind the camera.

    Args:
        points_world: (N, 3) trace in the world.
        k: 3×3 intrinsics of the image.
        t_world_camera: 4×4 optical camera → world.
        width: image width, pixels.
        height: image height, pixels.
        min_depth: the nearest depth answered, metres.

    Returns:
        (M, 3) world points, M <= N + 1 (the first point is assumed to be in view).

    """
    pts = np.asarray(points_world, dtype=float)
    z = project(pts, k, t_world_camera)[:, 2]
    behind = np.flatnonzero(z < min_depth)
    if behind.size == 0 or behind[0] == 0:
        return pts
    i = int(behind[0])
    a, b = pts[i - 1], pts[i]
    ts = np.linspace(0.0, 1.0, 201)
    seg = a[None, :] + ts[:, None] * (b - a)[None, :]
    uvz = project(seg, k, t_world_camera)
    with np.errstate(invalid='ignore'):
        inside = (
            (uvz[:, 2] >= min_depth)
            & (uvz[:, 0] >= 0.0)
            & (uvz[:, 0] <= width)
            & (uvz[:, 1] >= 0.0)
            & (uvz[:, 1] <= height)
        )
    last = int(np.flatnonzero(inside)[-1]) if inside.any() else 0
    if last == 0:  # the previous point is the last one in view
        return pts[:i]
    return np.vstack([pts[:i], seg[last][None, :]])


def in_view(
    point_world: np.ndarray, k: np.ndarray, t_world_camera: np.ndarray, width: int, height: int
) -> bool:
    """True when a world point projects inside the image, in front of the camera."""
    u, v, z = project(np.asarray(point_world)[None, :], k, t_world_camera)[0]
    return bool(z >= MIN_ANSWER_DEPTH and -0.5 <= u <= width - 0.5 and -0.5 <= v <= height - 0.5)


def format_answer(trace_xyd: np.ndarray, three_d: bool = True) -> str:
    """Format a projected trace exactly as RoboTracer answers.

    Args:
        trace_xyd: (N, 3) ``(x, y, d)`` from :func:`project_trace`.
        three_d: False for the 2D answer ``[(x, y), ...]``.

    Returns:
        e.g. ``"[(726, 624, 1.533), (738, 574, 1.499)]"``.

    """
    if three_d:
        items = [f'({round(x)}, {round(y)}, {d:.3f})' for x, y, d in trace_xyd]
    else:
        items = [f'({round(x)}, {round(y)})' for x, y, _ in trace_xyd]
    return '[' + ', '.join(items) + ']'
