"""The UR5 tabletop world: MuJoCo physics, the arm's trajectory following, the grasp model, RGB-D.

Design notes: docs/design-notes.md (robotracer_sim.ur5.world).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import math
from pathlib import Path
import threading

import mujoco
import numpy as np

from robotracer_sim.common.render import RgbdRenderer
from robotracer_sim.common.snapshot import object_snapshot
from robotracer_sim.oracle.geometry import (
    intrinsics_from_fovy,
    matrix_to_quat_xyzw,
    quat_wxyz_to_xyzw,
    quat_xyzw_to_wxyz,
)
from robotracer_sim.oracle.scene import SceneSnapshot
from robotracer_sim.ur5.model import (
    EFFORT,
    FINGER_OPEN,
    INTEGRAL_EFFORT_FRACTION,
    INTEGRAL_LEAK_S,
    KI,
    KP,
    build_ur5_model,
)
from robotracer_sim.ur5.scene import UR5_JOINTS, Ur5Scene, default_scene_path, load_scene
from robotracer_sim.ur5.trajectory import (
    JointLimits,
    TimedTrajectory,
    TrajectoryError,
    build_trajectory,
)

__all__ = ['ObjectPose', 'TrajectoryError', 'Ur5World']

FINGER_WIDTH = 0.008  # m: half thickness of a finger pad plus its offset from the centre


@dataclass(frozen=True)
class ObjectPose:
    """Ground-truth pose of an object in the world frame."""

    position: np.ndarray  # (3,) metres
    quat_xyzw: np.ndarray  # (4,)
    held: bool


class Ur5World:
    """A UR5 on a table with named objects, a parallel gripper and a fixed RGB-D camera.

    Args:
        scene: a validated scene, a path to a scene YAML, or None for the default
            ``config/scenes/ur5_tabletop.yaml``.
        cache: folder for converted models (see ``model.cache_dir``).

    Raises:
        SceneError: the scene file is invalid.
        FileNotFoundError: example-robot-data is missing.
        ValueError: the model does not compile.

    """

    def __init__(self, scene: Ur5Scene | str | Path | None = None, cache: Path | None = None):
        if scene is None:
            scene = default_scene_path()
        if not isinstance(scene, Ur5Scene):
            scene = load_scene(scene)
        self.scene = scene
        self.model, self.info = build_ur5_model(scene, cache)
        self.data = mujoco.MjData(self.model)
        self._lock = threading.RLock()
        self._renderer: RgbdRenderer | None = None
        self._renderer_lock = threading.Lock()
        self._traj: TimedTrajectory | None = None
        self._hold = np.asarray(scene.robot.home, dtype=float)
        self._desired = self._hold.copy()
        self._integral = np.zeros(len(UR5_JOINTS))  # rad, added to the position target
        self._integral_max = INTEGRAL_EFFORT_FRACTION * np.asarray(EFFORT) / np.asarray(KP)
        self._held: str | None = None
        self._closed = False
        cam = scene.camera
        self.width, self.height = cam.width, cam.height
        self.k = intrinsics_from_fovy(cam.width, cam.height, cam.fovy_deg)
        self.camera_frame = cam.frame_id
        jnt = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in UR5_JOINTS]
        rng = self.model.jnt_range[jnt]
        self.limits = JointLimits(lower=rng[:, 0].copy(), upper=rng[:, 1].copy())
        self.reset()

    # ------------------------------------------------------------------ state

    @property
    def joint_names(self) -> tuple[str, ...]:
        """The arm's joint names, in the order of all joint arrays."""
        return UR5_JOINTS

    @property
    def lock(self) -> threading.RLock:
        """The re-entrant lock guarding ``data`` (hold it to read ``data`` consistently)."""
        return self._lock

    @property
    def time(self) -> float:
        """Simulated time, seconds."""
        with self._lock:
            return float(self.data.time)

    @property
    def timestep(self) -> float:
        """Physics timestep, seconds."""
        return float(self.model.opt.timestep)

    def reset(self) -> None:
        """Put the arm at home, the gripper open, the objects where the scene file says."""
        with self._lock:
            mujoco.mj_resetData(self.model, self.data)
            self.data.qpos[self.info.arm_qpos] = self.scene.robot.home
            self.data.qpos[self.info.finger_qpos] = FINGER_OPEN
            for o in self.scene.objects:
                adr = self.info.object_qpos[o.name]
                self.data.qpos[adr : adr + 3] = o.position
                self.data.qpos[adr + 3 : adr + 7] = quat_xyzw_to_wxyz(o.quat_xyzw)
            self.data.eq_active[:] = 0
            self.model.body_gravcomp[list(self.info.object_bodies.values())] = 0.0
            self._held, self._closed, self._traj = None, False, None
            self._hold = np.asarray(self.scene.robot.home, dtype=float)
            self._desired = self._hold.copy()
            self._integral[:] = 0.0
            self._apply_control()
            mujoco.mj_forward(self.model, self.data)

    def joint_positions(self) -> np.ndarray:
        """Arm joint positions (6,), rad."""
        with self._lock:
            return self.data.qpos[self.info.arm_qpos].copy()

    def joint_velocities(self) -> np.ndarray:
        """Arm joint velocities (6,), rad/s."""
        with self._lock:
            return self.data.qvel[self.info.arm_dof].copy()

    def joint_efforts(self) -> np.ndarray:
        """Arm joint actuator torques (6,), N m."""
        with self._lock:
            return self.data.qfrc_actuator[self.info.arm_dof].copy()

    def tcp_pose(self) -> np.ndarray:
        """4×4 pose of the TCP (tool0 + tcp_offset along its z) in the world."""
        with self._lock:
            t = np.eye(4)
            t[:3, :3] = self.data.site_xmat[self.info.tcp_site].reshape(3, 3)
            t[:3, 3] = self.data.site_xpos[self.info.tcp_site]
            return t

    @property
    def t_world_camera(self) -> np.ndarray:
        """4×4 transform camera optical frame → world (the camera → base extrinsics)."""
        return self.scene.camera.t_world_camera

    # ------------------------------------------------------------------ physics

    def step(self, duration: float | None = None) -> None:
        """Advance the simulation by ``duration`` seconds (rounded to whole physics steps).

        Args:
            duration: seconds to simulate; one physics step when None.

        """
        n = 1 if duration is None else max(0, int(round(duration / self.timestep)))
        with self._lock:
            for _ in range(n):
                self._apply_control()
                mujoco.mj_step(self.model, self.data)

    def _apply_control(self) -> None:
        t = float(self.data.time)
        dt = self.timestep
        if self._traj is not None:
            q, qd = self._traj.sample(t)
            if t >= self._traj.end_time:
                self._hold, self._traj = self._traj.goal, None
            self._integral *= np.exp(-dt / INTEGRAL_LEAK_S)  # lag while moving is expected
        else:
            q, qd = self._hold, np.zeros(6)
            err = q - self.data.qpos[self.info.arm_qpos]
            self._integral = np.clip(
                self._integral + KI * err * dt, -self._integral_max, self._integral_max
            )
        self._desired = q
        self.data.ctrl[self.info.pos_actuators] = q + self._integral
        self.data.ctrl[self.info.vel_actuators] = qd
        self.data.ctrl[self.info.finger_actuators] = self._finger_target()

    def tracking_error(self) -> np.ndarray:
        """Commanded minus measured arm joint positions (6,), rad."""
        with self._lock:
            return self._desired - self.data.qpos[self.info.arm_qpos]

    # ------------------------------------------------------------------ arm commands

    def set_trajectory(
        self,
        joint_names: Sequence[str],
        times: Sequence[float],
        positions: Sequence[Sequence[float]],
        velocities: Sequence[Sequence[float]] | None = None,
        start_time: float | None = None,
        accelerations: Sequence[Sequence[float]] | None = None,
    ) -> TimedTrajectory:
        """Follow a new joint trajectory from the current state (replaces any running one).

        As ros2_control's JTC, it starts from the measured joint positions and velocities and
        interpolates like it (see :mod:`robotracer_sim.ur5.trajectory`).

        An empty trajectory (no waypoints) stops the arm where it is.

        Args:
            joint_names: names of the joints the waypoints give (a subset of
                :attr:`joint_names`; the others hold their position).
            times: ``time_from_start`` of each waypoint, seconds.
            positions: per waypoint, one position (rad) per name.
            velocities: per waypoint, one velocity (rad/s) per name, or None.
            start_time: world time of ``time_from_start = 0`` (None or past: now).
            accelerations: per waypoint, one acceleration (rad/s²) per name, or None.

        Returns:
            The accepted trajectory (over all six joints, starting at the current state).

        Raises:
            TrajectoryError: the trajectory is invalid; the arm keeps doing what it did.

        """
        with self._lock:
            if len(times) == 0 and len(positions) == 0:
                self.stop()
                return TimedTrajectory(self.time, np.zeros(1), self._hold[None, :].copy(), None)
            traj = build_trajectory(
                UR5_JOINTS,
                self.limits,
                self.data.qpos[self.info.arm_qpos].copy(),
                float(self.data.time),
                joint_names,
                times,
                positions,
                velocities,
                start_time,
                current_velocity=self.data.qvel[self.info.arm_dof].copy(),
                accelerations=accelerations,
            )
            self._traj = traj
            return traj

    def _desired_now(self) -> np.ndarray:
        if self._traj is not None:
            return self._traj.sample(float(self.data.time))[0]
        return self.data.qpos[self.info.arm_qpos].copy()

    def stop(self) -> None:
        """Abandon the running trajectory and hold the current joint positions."""
        with self._lock:
            self._traj = None
            self._hold = self.data.qpos[self.info.arm_qpos].copy()

    @property
    def trajectory_active(self) -> bool:
        """True while a trajectory is being followed."""
        with self._lock:
            return self._traj is not None

    # ------------------------------------------------------------------ gripper

    @property
    def gripper_closed(self) -> bool:
        """True when the gripper was last commanded closed."""
        with self._lock:
            return self._closed

    @property
    def held_object(self) -> str | None:
        """Name of the object the gripper holds, or None."""
        with self._lock:
            return self._held

    def _finger_target(self) -> float:
        if not self._closed:
            return FINGER_OPEN
        if self._held is None:
            return 0.0
        body = self.info.object_bodies[self._held]
        r_obj = self.data.xmat[body].reshape(3, 3)
        y_tool = self.data.xmat[self.info.tool_body].reshape(3, 3)[:, 1]
        half = self.scene.object(self._held).half_extents
        extent = float(np.abs(r_obj.T @ y_tool) @ half)
        return float(np.clip(extent - FINGER_WIDTH, 0.0, FINGER_OPEN))

    def _grasp_candidate(self) -> str | None:
        tcp = self.data.site_xpos[self.info.tcp_site]
        best, best_d = None, math.inf
        for o in self.scene.objects:
            body = self.info.object_bodies[o.name]
            r = self.data.xmat[body].reshape(3, 3)
            local = r.T @ (tcp - self.data.xpos[body])
            outside = np.maximum(np.abs(local) - o.half_extents, 0.0)
            if float(np.linalg.norm(outside)) > self.scene.robot.grasp_radius:
                continue
            d = float(np.linalg.norm(tcp - self.data.xpos[body]))
            if d < best_d:
                best, best_d = o.name, d
        return best

    def set_gripper(self, close: bool) -> tuple[bool, str]:
        """Close or open the gripper (the grasp model is in the module docstring).

        Args:
            close: True to close (grasp), False to open (release).

        Returns:
            ``(success, message)``: e.g. ``(True, 'grasped red_cube')``,
            ``(False, 'closed on nothing')`` (closing succeeds only when an object is held, as a
            real gripper's object detection reports), ``(True, 'released red_cube')``,
            ``(True, 'opened')``.

        """
        with self._lock:
            if close:
                if self._held is not None:
                    return True, f'already holding {self._held}'
                self._closed = True
                name = self._grasp_candidate()
                if name is None:
                    return False, 'closed on nothing'
                body = self.info.object_bodies[name]
                tool = self.info.tool_body
                r_obj = self.data.xmat[body].reshape(3, 3)
                r_tool = self.data.xmat[tool].reshape(3, 3)
                rel_pos = r_obj.T @ (self.data.xpos[tool] - self.data.xpos[body])
                rel_quat = quat_xyzw_to_wxyz(matrix_to_quat_xyzw(r_obj.T @ r_tool))
                eq = self.info.object_welds[name]
                self.model.eq_data[eq, 0:3] = 0.0
                self.model.eq_data[eq, 3:6] = rel_pos
                self.model.eq_data[eq, 6:10] = rel_quat
                self.model.eq_data[eq, 10] = 1.0
                self.data.eq_active[eq] = 1
                self.model.body_gravcomp[body] = 1.0  # payload compensation, as on a UR
                self._held = name
                return True, f'grasped {name}'
            self._closed = False
            if self._held is None:
                return True, 'opened'
            name, self._held = self._held, None
            self.data.eq_active[self.info.object_welds[name]] = 0
            self.model.body_gravcomp[self.info.object_bodies[name]] = 0.0
            return True, f'released {name}'

    # ------------------------------------------------------------------ objects

    def object_poses(self, names: Sequence[str] | None = None) -> dict[str, ObjectPose]:
        """Ground-truth poses of the objects.

        Args:
            names: which objects; all when None or empty.

        Returns:
            ``{name: ObjectPose}`` in the requested (or scene) order.

        Raises:
            KeyError: an unknown name (the message lists the known ones).

        """
        wanted = list(names) if names else list(self.scene.names)
        for n in wanted:
            if n not in self.info.object_bodies:
                raise KeyError(f'unknown object {n!r} (known: {", ".join(self.scene.names)})')
        with self._lock:
            out = {}
            for n in wanted:
                b = self.info.object_bodies[n]
                out[n] = ObjectPose(
                    position=self.data.xpos[b].copy(),
                    quat_xyzw=quat_wxyz_to_xyzw(self.data.xquat[b]),
                    held=n == self._held,
                )
            return out

    def set_object_pose(
        self,
        name: str,
        position: Sequence[float],
        quat_xyzw: Sequence[float] = (0.0, 0.0, 0.0, 1.0),
    ) -> None:
        """Teleport an object (at rest) to a new pose.

        Args:
            name: the object.
            position: its new centre in the world, metres.
            quat_xyzw: its new orientation.

        Raises:
            KeyError: unknown object.
            ValueError: the robot holds it, or the pose is not finite / not a unit quaternion.

        """
        if name not in self.info.object_bodies:
            raise KeyError(f'unknown object {name!r} (known: {", ".join(self.scene.names)})')
        p = np.asarray(position, dtype=float)
        q = np.asarray(quat_xyzw, dtype=float)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise ValueError(f'position must be 3 finite numbers, got {list(position)}')
        if q.shape != (4,) or not np.all(np.isfinite(q)) or abs(np.linalg.norm(q) - 1.0) > 1e-3:
            raise ValueError(f'orientation must be a unit quaternion (x, y, z, w), got {list(q)}')
        with self._lock:
            if name == self._held:
                raise ValueError(
                    f'{name} is held by the gripper; open the gripper before moving it'
                )
            adr = self.info.object_qpos[name]
            dof = self.info.object_dof[name]
            self.data.qpos[adr : adr + 3] = p
            self.data.qpos[adr + 3 : adr + 7] = quat_xyzw_to_wxyz(q / np.linalg.norm(q))
            self.data.qvel[dof : dof + 6] = 0.0
            mujoco.mj_forward(self.model, self.data)

    def snapshot(self) -> SceneSnapshot:
        """Ground truth for the oracle: objects, camera pose and intrinsics, time."""
        with self._lock:
            objs = []
            for o in self.scene.objects:
                b = self.info.object_bodies[o.name]
                r = self.data.xmat[b].reshape(3, 3).copy()
                objs.append(object_snapshot(o, self.data.xpos[b].copy(), r, o.name == self._held))
            return SceneSnapshot(
                objects=tuple(objs),
                t_world_camera=self.t_world_camera.copy(),
                k=self.k.copy(),
                width=self.width,
                height=self.height,
                stamp=float(self.data.time),
                frame_id=self.scene.world_frame,
            )

    # ------------------------------------------------------------------ camera

    def render_rgbd(self) -> tuple[np.ndarray, np.ndarray]:
        """Render the fixed camera.

        Returns:
            ``(rgb, depth)``: uint8 H×W×3 and float32 H×W metric z-depth (0 = no return).

        Raises:
            RuntimeError: no OpenGL context (set ``MUJOCO_GL=egl``).

        """
        if self._renderer is None:
            with self._renderer_lock:  # not the world lock: GL setup must not stall physics
                if self._renderer is None:
                    cam = self.scene.camera
                    self._renderer = RgbdRenderer(
                        self.model, self.info.camera, cam.width, cam.height, cam.depth_max
                    )
        with self._lock:
            self._renderer.update(self.data)
        return self._renderer.render()

    def close(self) -> None:
        """Release the renderer."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
