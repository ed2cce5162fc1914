"""Randomised simulator scenes scored with the benchmark's metrics (``--world ur5|g1``).

Design notes: docs/design-notes.md (robotracer_eval.sim_scenes).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from robotracer_eval import report, scoring
from robotracer_eval.bench_data import TUPLES, question_from_json
from robotracer_eval.execute import execute_ur5, executor_parameters

RELATIONS = ('on', 'in', 'to the left of', 'to the right of', 'in front of', 'behind')
MIN_SEPARATION = 0.13  # m between object centres when scattering
#: an episode's target must show at least this many pixels (else the scene is drawn again: a
#: question about an object the camera cannot see has no ground truth in the image)
MIN_TARGET_PIXELS = 150
#: scenes drawn per episode at most, looking for one whose target is in view
MAX_DRAWS = 10
CONTACT_MARGIN = (
    0.005  # m each ground-truth obstacle is shrunk by: resting contact is no collision
)


class SolidOccupancy:
    """Obstacles from the simulator's ground truth: oriented boxes in the camera frame.

    Has the occupancy grid's ``occupied(points)``, so the benchmark's collision rule
    (:func:`robotracer_eval.geometry3d.collision_ratios`) applies unchanged.

    Args:
        boxes: ``(centre (3,), rotation (3, 3) box → camera, half extents (3,))`` each.
    """

    def __init__(self, boxes: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        self.boxes = boxes

    @property
    def size(self) -> int:
        """Number of boxes."""
        return len(self.boxes)

    def occupied(self, points: np.ndarray) -> np.ndarray:
        """(N,) bool: the point lies inside some obstacle."""
        p = np.asarray(points, dtype=float).reshape(-1, 3)
        out = np.zeros(len(p), dtype=bool)
        for c, r, h in self.boxes:
            local = (p - c) @ r
            out |= np.all(np.abs(local) < h, axis=1)
        return out


class ModelError(RuntimeError):
    """The model could not be created or never answered."""


class Ur5Scenes:
    """The UR5 tabletop as a source of random scenes."""

    region = ((0.32, 0.72), (-0.38, 0.38))  # x, y ranges on the table, metres

    def __init__(self) -> None:
        os.environ.setdefault('MUJOCO_GL', 'egl')
        from robotracer_sim.ur5.world import Ur5World

        self.world = Ur5World()
        self.names = list(self.world.scene.names)
        poses = self.world.object_poses()
        self.rest_z = {n: float(p.position[2]) for n, p in poses.items()}
        self.k = self.world.k.copy()
        self.width, self.height = self.world.width, self.world.height
        self.home_pose = self.world.t_world_camera.copy()
        self.pose = self.home_pose.copy()
        self.look_at = np.array([0.45, 0.0, 0.0])  # the shipped camera's target (scene file)
        cam = self.world.info.camera
        self.home_cam = (
            self.world.model.cam_pos[cam].copy(),
            self.world.model.cam_quat[cam].copy(),
        )

    def jitter_camera(self, rng: np.random.Generator, std: float) -> None:
        """Move the camera: its centre and the point it looks at each by N(0, std²) per axis."""
        from robotracer_sim.oracle.geometry import (
            MJ_CAMERA_TO_OPTICAL,
            look_at_optical,
            matrix_to_quat_xyzw,
            quat_xyzw_to_wxyz,
        )

        centre = self.home_pose[:3, 3] + rng.normal(0.0, std, 3)
        self.pose = look_at_optical(centre, self.look_at + rng.normal(0.0, std, 3))
        r_mj = self.pose[:3, :3] @ MJ_CAMERA_TO_OPTICAL
        quat = quat_xyzw_to_wxyz(matrix_to_quat_xyzw(r_mj))
        _set_camera(self.world, self.world.info.camera, centre, quat)

    def home_camera(self) -> None:
        """Put the camera back where the scene file has it (no jitter)."""
        if np.array_equal(self.pose, self.home_pose):
            return
        self.pose = self.home_pose.copy()
        cam = self.world.info.camera
        _set_camera(self.world, cam, self.home_cam[0], self.home_cam[1])

    def set_pose(self, name: str, position: np.ndarray, yaw: float) -> None:
        """Teleport an object."""
        q = (0.0, 0.0, float(np.sin(yaw / 2)), float(np.cos(yaw / 2)))
        self.world.set_object_pose(name, position, q)

    def static_boxes(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The table as ``(centre, rotation, half extents)`` in the world (top at z = 0)."""
        t = self.world.scene.table
        c = np.array([t.center[0], t.center[1], -t.thickness / 2])
        return [(c, np.eye(3), np.array([t.size[0] / 2, t.size[1] / 2, t.thickness / 2]))]

    def render(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rgb, depth_m, t_world_camera)``."""
        rgb, depth = self.world.render_rgbd()
        return rgb, depth, self.pose.copy()

    def snapshot(self) -> Any:
        """The oracle's ground truth, seen from the (jittered) camera."""
        import dataclasses

        return dataclasses.replace(self.world.snapshot(), t_world_camera=self.pose.copy())

    def close(self) -> None:
        """Free the renderer."""
        self.world.close()


class G1Scenes:
    """The G1 room's near table, seen from the standing robot's head camera."""

    region = ((0.42, 0.70), (-0.32, 0.32))

    def __init__(self) -> None:
        os.environ.setdefault('MUJOCO_GL', 'egl')
        from robotracer_sim.g1.scene import load_g1_scene
        from robotracer_sim.g1.world import G1World, HeadCamera
        from robotracer_sim.ur5.scene import scene_file_path

        self.world = G1World(load_g1_scene(scene_file_path('g1_room.yaml')))
        self.camera = HeadCamera(self.world)
        self.names = list(self.world.scene.names)
        poses = {p.name: p for p in self.world.object_poses()}
        table = self.world.scene.table('near_table')
        self.rest_z = {
            n: float(table.height + (p.position[2] - _table_top_under(self.world, p.position)))
            for n, p in poses.items()
        }
        self.k = self.world.camera_intrinsics()
        self.width, self.height = self.camera.width, self.camera.height
        # The head camera at the start stance, and the point of the near table it looks at.
        cam = self.world.info.camera
        self.home_cam = (
            self.world.model.cam_pos[cam].copy(),
            self.world.model.cam_quat[cam].copy(),
        )
        self.jittered = False
        self.home_pose = self.world.camera_pose()
        b = self.world.model.cam_bodyid[cam]
        self.t_world_head = np.eye(4)  # the camera's body (d435_link) at the start stance
        self.t_world_head[:3, :3] = self.world.data.xmat[b].reshape(3, 3)
        self.t_world_head[:3, 3] = self.world.data.xpos[b]
        c, z = self.home_pose[:3, 3], self.home_pose[:3, 2]
        self.look_at = c + z * (table.height - c[2]) / z[2]

    def jitter_camera(self, rng: np.random.Generator, std: float) -> None:
        """Move the head camera on the head, as the UR5's: centre and look-at point N(0, std²).

        The noise is drawn at the start stance (in the world, about the camera's home pose and
        the point of the near table it looks at) and kept as the camera's pose on its body
        (``d435_link``), so the moved camera walks and turns with the robot. The camera's pose
        is known (read from the simulator), as a calibrated camera's would be.
        """
        from robotracer_sim.oracle.geometry import (
            MJ_CAMERA_TO_OPTICAL,
            look_at_optical,
            matrix_to_quat_xyzw,
            quat_xyzw_to_wxyz,
        )

        shift = rng.normal(0.0, std, 3)
        forward = self.home_pose[:3, 2]  # the optical axis
        # never backwards: behind its home pose the camera would sit inside the head's shell
        shift -= 2.0 * min(float(shift @ forward), 0.0) * forward
        centre = self.home_pose[:3, 3] + shift
        pose = look_at_optical(centre, self.look_at + rng.normal(0.0, std, 3))
        rel = np.linalg.inv(self.t_world_head) @ pose  # optical frame → head body
        quat = quat_xyzw_to_wxyz(matrix_to_quat_xyzw(rel[:3, :3] @ MJ_CAMERA_TO_OPTICAL))
        _set_camera(self.world, self.world.info.camera, rel[:3, 3], quat)
        self.jittered = True

    def home_camera(self) -> None:
        """Put the head camera back where the robot model has it (no jitter)."""
        if self.jittered:
            _set_camera(self.world, self.world.info.camera, *self.home_cam)
            self.jittered = False

    def set_pose(self, name: str, position: np.ndarray, yaw: float) -> None:
        """Teleport an object."""
        q = (0.0, 0.0, float(np.sin(yaw / 2)), float(np.cos(yaw / 2)))
        self.world.set_object_pose(name, position, q)

    def supports(self, p: np.ndarray, margin: float = 0.03) -> bool:
        """Whether a table lies under ``p`` (``margin`` m inside its edges).

        The G1 room's tables end where the floor begins, 0.7 m below; the UR5's table is
        larger than its reach, so it has no such check.
        """
        for t in self.world.scene.tables:
            if (
                abs(p[0] - t.center[0]) <= t.size[0] / 2 - margin
                and abs(p[1] - t.center[1]) <= t.size[1] / 2 - margin
            ):
                return True
        return False

    def static_boxes(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """None beyond the snapshot: the G1 room's tables are in it (shape ``table``)."""
        return []

    def render(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rgb, depth_m, t_world_camera)``."""
        rgb, depth, pose, _ = self.camera.capture()
        return rgb, depth, pose

    def snapshot(self) -> Any:
        """The oracle's ground truth."""
        return self.world.snapshot()

    def close(self) -> None:
        """Free the renderer."""
        self.camera.close()


def _set_camera(world: Any, cam: int, pos: np.ndarray, quat_wxyz: np.ndarray) -> None:
    """Place a MuJoCo camera on its body (``cam_pos``, ``cam_quat``) and update the data."""
    import mujoco

    with world.lock:
        world.model.cam_pos[cam] = pos
        world.model.cam_quat[cam] = quat_wxyz
        mujoco.mj_forward(world.model, world.data)


def _table_top_under(world: Any, p: np.ndarray) -> float:
    for t in world.scene.tables:
        if t.contains(float(p[0]), float(p[1])):
            return float(t.height)
    return 0.0


WORLDS = {'ur5': Ur5Scenes, 'g1': G1Scenes}


def scatter(scenes: Any, rng: np.random.Generator) -> None:
    """Put every object at a random free spot of the region with a random yaw."""
    (x0, x1), (y0, y1) = scenes.region
    placed: list[np.ndarray] = []
    for name in scenes.names:
        for _ in range(200):
            xy = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
            if all(np.linalg.norm(xy - o) >= MIN_SEPARATION for o in placed):
                break
        placed.append(xy)
        scenes.set_pose(name, np.array([*xy, scenes.rest_z[name]]), rng.uniform(-np.pi, np.pi))


def phrase(obj: Any) -> str:
    """The words that name an object: ``red cube``, ``yellow cup``."""
    from robotracer_sim.oracle.scene import SHAPE_WORDS

    noun = SHAPE_WORDS.get(obj.shape, (obj.shape,))[0]
    return f'{obj.color} {noun}'


def draw_task(
    snap: Any, rng: np.random.Generator, supports: Any = None
) -> tuple[str, str, np.ndarray] | None:
    """A random answerable instruction with its ground truth.

    Args:
        snap: the scene's ground truth.
        rng: random source.
        supports: ``supports(point) -> bool``: something holds an object whose centre ends
            there (else the draw is rejected: the object would fall); None: no check.

    Returns:
        ``(instruction, target name, world trace)`` or None (nothing answerable drawn).
    """
    from robotracer_sim.oracle.language import LanguageError, parse_instruction
    from robotracer_sim.oracle.trace import Unanswerable, plan_trace

    movable = [o for o in snap.objects if o.shape in ('box', 'cylinder', 'sphere', 'cup')]
    refs = [o for o in snap.objects if o.shape != 'table']
    for _ in range(20):
        x = movable[rng.integers(len(movable))]
        y = refs[rng.integers(len(refs))]
        if x.name == y.name:
            continue
        rel = RELATIONS[rng.integers(len(RELATIONS))]
        if rel == 'in' and not y.container:
            rel = 'on'
        if (
            y.container
            and rel in ('in', 'on')
            and (max(x.world_half_extents[:2]) > min(y.world_half_extents[:2]) * 0.7)
        ):
            continue  # it does not fit inside
        if rel == 'on' and (y.container or y.shape in ('cup', 'cylinder', 'sphere')):
            rel = 'in' if y.container else 'to the left of'
        text = f'put the {phrase(x)} {rel} the {phrase(y)}'
        try:
            obj, pts = plan_trace(parse_instruction(text), snap)
        except (LanguageError, Unanswerable):
            continue
        if supports is not None and not supports(pts[-1]):
            continue  # e.g. "in front of" past the table's edge
        if _goal_taken(snap, obj, y.name if rel in ('in', 'on') else None, pts[-1]):
            continue  # e.g. "in front of the cube" where a cylinder stands
        return text, obj, pts
    return None


def _goal_taken(snap: Any, moved: str, holder: str | None, goal: np.ndarray) -> bool:
    """Whether another object stands where the moved one would end (footprints overlap)."""
    x = snap.get(moved)
    reach = float(np.linalg.norm(x.world_half_extents[:2]))
    for o in snap.objects:
        if o.shape == 'table' or o.name in (moved, holder):
            continue
        gap = float(np.linalg.norm(np.asarray(o.position[:2]) - goal[:2]))
        if gap < reach + float(np.linalg.norm(o.world_half_extents[:2])):
            return True
    return False


def _to_camera(t_world_camera: np.ndarray, p: np.ndarray) -> np.ndarray:
    t = np.linalg.inv(t_world_camera)
    return p @ t[:3, :3].T + t[:3, 3]


def make_episode(
    scenes: Any,
    rng: np.random.Generator,
    camera_jitter: float = 0.0,
    execute_reset: bool = False,
) -> dict[str, Any] | None:
    """Scatter, jitter the camera, draw an instruction, render; return the question.

    Args:
        scenes: the world.
        rng: random source.
        camera_jitter: std of the camera's centre and look-at point, metres.
        execute_reset: put the robot home first (after an executed episode).

    Returns:
        ``{'row': question dict (published format), 'rgb', 'depth_m', 'mask', 'occupancy'}``
        or None when no task was drawn.
    """
    if hasattr(scenes, 'world') and hasattr(scenes.world, 'reset') and execute_reset:
        scenes.world.reset()  # arm home, gripper open, nothing held
    for _ in range(MAX_DRAWS):
        scatter(scenes, rng)
        if camera_jitter > 0 and hasattr(scenes, 'jitter_camera'):
            scenes.jitter_camera(rng, camera_jitter)
        elif hasattr(scenes, 'home_camera'):
            scenes.home_camera()  # a reused world: undo an earlier run's jitter
        snap = scenes.snapshot()
        task = draw_task(snap, rng, getattr(scenes, 'supports', None))
        if task is None:
            return None
        text, name, pts = task
        rgb, depth, t_wc = scenes.render()
        obj = snap.get(name)
        scenes.set_pose(name, np.array([0.0, 0.0, -5.0]), 0.0)
        _, depth_without, _ = scenes.render()
        yaw = float(np.arctan2(obj.rotation[1, 0], obj.rotation[0, 0]))
        scenes.set_pose(name, obj.position, yaw)
        mask = (((depth > 0) & (np.abs(depth - depth_without) > 0.002)) * 255).astype(np.uint8)
        if np.count_nonzero(mask) >= MIN_TARGET_PIXELS:
            break
    else:
        return None  # the target was hidden in every draw
    traj = _to_camera(t_wc, pts)
    r_cam = np.linalg.inv(t_wc)[:3, :3] @ obj.rotation
    solids = []
    for c, r, h in ground_truth_obstacles(snap, name) + scenes.static_boxes():
        solids.append((_to_camera(t_wc, c[None, :])[0], np.linalg.inv(t_wc)[:3, :3] @ r, h))
    row = {
        'question_id': None,
        'prompt': text,
        'target_object': phrase(obj),
        'trajectory': traj.tolist(),
        'bbox_center': traj[-1].tolist(),
        'bbox_extent': (2 * obj.half_extents).tolist(),
        'bbox_rotation': r_cam.tolist(),
        'gt_depth_intrinsics': scenes.k.tolist(),
        'image_path': '',
        'gt_depth_path': '',
        'mask_path': '',
    }
    return {
        'row': row,
        'rgb': rgb,
        'depth_m': depth,
        'mask': mask,
        'occupancy': SolidOccupancy(solids),
        'target': name,
        'goal_world': pts[-1],
        't_world_camera': t_wc,
    }


def ground_truth_obstacles(
    snap: Any, target: str
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The other objects as solid boxes in the world, shrunk by :data:`CONTACT_MARGIN`.

    A container (cup, bowl) counts only below its inner floor (its walls are left out: what is
    put in it goes between them); a table is its slab.

    Returns:
        ``(centre, rotation, half extents)`` per obstacle.
    """
    out = []
    for o in snap.objects:
        if o.name == target or o.held:
            continue
        c = np.asarray(o.position, dtype=float).copy()
        h = np.asarray(o.half_extents, dtype=float).copy()
        if o.container:  # base: from the bottom to the inner floor (world z)
            bottom = c[2] - o.world_half_extents[2]
            floor = c[2] + o.support_offset
            h[2] = max((floor - bottom) / 2, 0.0)
            c[2] = (floor + bottom) / 2
        h = h - CONTACT_MARGIN
        if np.all(h > 0):
            out.append((c, np.asarray(o.rotation, dtype=float), h))
    return out


def _model(args: argparse.Namespace, scenes: Any) -> tuple[Any, Any]:
    """The backend, and the oracle server to stop afterwards (or None)."""
    from robotracer_ros.backends import make_backend

    if args.model in (None, 'oracle'):
        from robotracer_sim.oracle import Oracle, OracleConfig, OracleServer

        cfg = OracleConfig(
            latency=0.0, noise_std=args.noise, malformed_rate=args.failure_rate, seed=args.seed
        )
        server = OracleServer(Oracle(scenes.snapshot, cfg), port=0).start()
        return make_backend('robotracer_http', url=server.url, timeout_s=30.0), server
    from robotracer_eval.live import ModelError as LiveModelError
    from robotracer_eval.live import _backend

    try:
        return _backend(args), None
    except LiveModelError as exc:
        raise ModelError(str(exc)) from exc


def _lift(
    scenes: Any,
    answer: str,
    depth_mm: np.ndarray,
    t_world_camera: np.ndarray,
    depth_source: str = 'fused',
) -> tuple[np.ndarray | None, str]:
    """Lift an answer as the perception node does: ``(world trace or None, why not)``."""
    from robotracer_ros.filtering import FilterOptions
    from robotracer_ros.lifting import LiftOptions
    from robotracer_ros.pipeline import PipelineOptions, answer_to_trace

    try:
        tr = answer_to_trace(
            answer,
            width=scenes.width,
            height=scenes.height,
            K=scenes.k,
            depth=depth_mm,
            options=PipelineOptions(
                lift=LiftOptions(depth_source=depth_source), filter=FilterOptions()
            ),
            T_target_camera=t_world_camera,
            expect_depth=True,
        )
    except ValueError as exc:
        return None, str(exc)
    if tr.status_name == 'invalid':
        return None, tr.note
    return tr.points, ''


def _execute(
    scenes: Any,
    ep: dict,
    answer: str,
    depth_mm: np.ndarray,
    depth_source: str = 'fused',
    backend: Any = None,
) -> dict[str, Any]:
    """Lift the answer as the perception node does, then execute it (UR5 or G1).

    ``backend`` (G1): the model, asked again from the robot's new stance when the plan was cut
    at a look-again walk.
    """
    pts, why = _lift(scenes, answer, depth_mm, ep['t_world_camera'], depth_source)
    if pts is None:
        return {'executed': False, 'success': False, 'final_error_m': None, 'reason': why}
    if not isinstance(scenes, G1Scenes):
        return execute_ur5(scenes, pts, ep['target'], ep['goal_world'])
    from robotracer_eval.g1_execute import execute_g1

    def perceive() -> np.ndarray | None:
        from robotracer_ros.backends import BackendError

        rgb, depth, t_wc = scenes.render()
        mm = np.clip(np.round(depth * 1000.0), 0, 65535).astype(np.uint16)
        try:
            ans = backend(rgb, mm, scenes.k, ep['row']['prompt'], mode_3d=True)
        except BackendError:
            return None
        return _lift(scenes, ans.text, mm, t_wc, depth_source)[0]

    return execute_g1(
        scenes, pts, ep['target'], ep['goal_world'], perceive if backend is not None else None
    )


def default_depth_source(world: str) -> str:
    """``--depth-source`` when none is given.

    The UR5: ``fused`` (``config/perception.yaml``); the G1: that of ``config/g1.yaml``'s
    perception node (``model``: the trace is the object's centre path).
    """
    if world != 'g1':
        return 'fused'
    try:
        return str(executor_parameters('g1.yaml', 'perception_node').get('depth_source', 'model'))
    except (OSError, KeyError):
        return 'model'


def evaluate_world(
    args: argparse.Namespace, scenes: Any = None
) -> tuple[str, dict[str, Any], list]:
    """Run ``robotracer eval --world ur5|g1``.

    Args:
        args: the command's options.
        scenes: a world to reuse (:class:`Ur5Scenes` / :class:`G1Scenes`; left open), or None
            to make one for ``args.world`` (closed at the end).

    Returns:
        ``(name, summary, per-episode scores)``; the summary adds ``episodes_per_min``.

    Raises:
        ValueError: bad options.
        ModelError: the model could not be created.
    """
    from robotracer_ros.backends import BackendError

    if args.episodes < 1:
        raise ValueError('--episodes must be at least 1')
    if not 0.0 <= args.noise <= 1.0 or not 0.0 <= args.failure_rate <= 1.0:
        raise ValueError('--noise must be in [0, 1] m and --failure-rate in [0, 1]')
    if not 0.0 <= getattr(args, 'camera_jitter', 0.0) <= 0.2:
        raise ValueError('--camera-jitter must be in [0, 0.2] m')
    depth_source = getattr(args, 'depth_source', None) or default_depth_source(args.world)
    own = scenes is None
    if own:
        scenes = WORLDS[args.world]()
    # Worlds without a movable camera report none.
    jitter = getattr(args, 'camera_jitter', 0.0) if hasattr(scenes, 'jitter_camera') else 0.0
    backend, server = _model(args, scenes)
    rng = np.random.default_rng(args.seed)
    model = args.model or 'oracle'
    name = args.model_name or f'{model}_{args.world}'
    progress = report.Progress(f'episodes ({name})', enabled=not args.quiet)
    scores, rows = [], []
    t0 = time.perf_counter()
    try:
        n = args.limit or args.episodes
        for i in range(n):
            ep = make_episode(scenes, rng, jitter, args.execute)
            if ep is None:
                continue
            row = ep['row']
            row['question_id'] = i
            k = np.asarray(row['gt_depth_intrinsics'])
            depth_mm = np.clip(np.round(ep['depth_m'] * 1000.0), 0, 65535).astype(np.uint16)
            try:
                ans = backend(ep['rgb'], depth_mm, k, row['prompt'], mode_3d=True)
                row['model_prediction'] = ans.text
            except BackendError as exc:
                row['model_prediction'] = ''
                row['error'] = f'{exc.kind}: {exc}'
            q = question_from_json(row, f'episode {i}')
            scene = scoring.SceneData(
                size=(scenes.width, scenes.height), mask=ep['mask'], depth_mm=depth_mm
            )
            if getattr(args, 'occupancy', 'simulator') == 'simulator':
                scene.occupancy = ep['occupancy']
            sc = scoring.score_3d(q, args.parser if args.parser != 'auto' else TUPLES, scene)
            if args.execute:
                sc.execution = _execute(
                    scenes,
                    ep,
                    row.get('model_prediction', ''),
                    depth_mm,
                    depth_source,
                    backend,
                )
            scores.append(sc)
            rows.append(row)
            progress(i + 1, n)
    finally:
        if server is not None:
            server.stop()
        if own:
            scenes.close()
        elif hasattr(scenes, 'home_camera'):
            scenes.home_camera()  # leave a reused world's camera as it was
    elapsed = time.perf_counter() - t0
    summary = scoring.summarise(scores, '3d')
    if args.execute:
        ex = [getattr(sc, 'execution', None) or {} for sc in scores]
        summary['execution_success_rate'] = (
            sum(1 for e in ex if e.get('success')) / len(ex) if ex else None
        )
        errs = [e['final_error_m'] for e in ex if e.get('final_error_m') is not None]
        summary['execution_final_error_m'] = float(np.median(errs)) if errs else None
        summary['depth_source'] = depth_source
    summary.update(
        world=args.world,
        seed=args.seed,
        noise_m=args.noise,
        failure_rate=args.failure_rate,
        occupancy=getattr(args, 'occupancy', 'simulator'),
        camera_jitter_m=jitter,
        episodes_per_min=round(60.0 * len(scores) / elapsed, 1) if elapsed > 0 else None,
    )
    return name, summary, scores
