"""Build the MuJoCo model of the G1 room from example-robot-data's URDF and a scene file.

Design notes: docs/design-notes.md (robotracer_sim.g1.model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from robotracer_sim.common.mjcf import (
    GROUP_WORLD,
    add_floor,
    add_grasp_weld,
    add_joint_actuator,
    add_light,
    add_object,
    add_table,
    compile_spec,
    convert_urdf,
    name_ids,
    object_indices,
    set_damping,
    set_offscreen_view,
    urdf_with_compiler_block,
    world_spec,
)
from robotracer_sim.common.scene_schema import ObjectSpec
from robotracer_sim.g1.joints import ALL_JOINTS, BODY_JOINTS, HAND_JOINTS, HAND_SIDES
from robotracer_sim.g1.scene import G1Scene
from robotracer_sim.robot_data import resolve_package_urls, robots_dir

URDF_RELATIVE = Path('g1_description') / 'urdf' / 'g1_29dof_with_hand_rev_1_0.urdf'
TIMESTEP = 0.002
PELVIS = 'pelvis'
CAMERA_BODY = 'd435_link'
CAMERA_NAME = 'head_camera'
#: Grasp point of each hand in its ``<side>_hand_palm_link`` frame: between the thumb and the
#: two fingers (the palm faces -y on the left hand, +y on the right).
GRASP_POINT: dict[str, tuple[float, float, float]] = {
    'left': (0.10, -0.035, 0.0),
    'right': (0.10, 0.035, 0.0),
}
#: Motor rotor inertia reflected at the joint (kg m^2); keeps the explicit part of PD stable.
ARMATURE = {'waist': 0.05, 'arm': 0.03, 'hand': 0.002}
JOINT_DAMPING = {'waist': 15.0, 'arm': 0.3, 'hand': 0.01}  # gearbox friction
COLLISION_GROUP = 3  # render group of the robot's collision geoms (hidden by default)
GROUP_ROBOT = 2
FRICTION = 1.2  # objects, table tops and robot links
LEG_BODY_PREFIXES = (
    'left_hip',
    'left_knee',
    'left_ankle',
    'right_hip',
    'right_knee',
    'right_ankle',
)


def g1_urdf_path() -> Path:
    """Return the path of example-robot-data's ``g1_29dof_with_hand_rev_1_0.urdf``.

    Raises:
        FileNotFoundError: example-robot-data or the URDF is missing.

    """
    p = robots_dir() / URDF_RELATIVE
    if not p.is_file():
        raise FileNotFoundError(f'G1 URDF not found at {p} (example-robot-data >= 4.3 needed)')
    return p


def g1_urdf_for_mujoco() -> str:
    """Return the G1 URDF rewritten so MuJoCo loads it with every link and visual mesh.

    Raises:
        FileNotFoundError: example-robot-data is missing.
        ValueError: the file has no ``<robot>`` element.

    """
    text = resolve_package_urls(g1_urdf_path().read_text())
    return urdf_with_compiler_block(text, 'G1', discard_visual=False)


def convert_g1_urdf(folder: Path | None = None) -> Path:
    """Convert the G1 URDF to MJCF once and return the cached file.

    Args:
        folder: cache folder; :func:`robotracer_sim.common.mjcf.cache_dir` when omitted.

    Returns:
        Path of ``g1_<hash>.xml`` (the hash covers the URDF text and the MuJoCo version).

    Raises:
        FileNotFoundError: example-robot-data is missing.
        ValueError: MuJoCo cannot load the URDF (its message is included).

    """
    return convert_urdf(g1_urdf_for_mujoco(), 'g1', 'G1', folder)


def _joint_kind(name: str) -> str:
    if name.startswith('waist'):
        return 'waist'
    return 'hand' if '_hand_' in name else 'arm'


def _is_leg_body(name: str) -> bool:
    return name.startswith(LEG_BODY_PREFIXES)


def _configure_robot(spec: mujoco.MjSpec) -> None:
    pelvis = spec.body(PELVIS)
    pelvis.mocap = True
    for body in spec.bodies:
        if body.name in ('world', ''):
            continue
        leg = body.name == PELVIS or body.name.startswith('pelvis') or _is_leg_body(body.name)
        body.gravcomp = 1.0
        for i in range(len(body.geoms)):
            g = body.geoms[i]
            if g.contype == 0 and g.conaffinity == 0:
                continue  # visual geom
            g.group = COLLISION_GROUP  # not rendered: the visual mesh is drawn instead
            g.contype = 0 if leg else GROUP_ROBOT
            g.conaffinity = 0 if leg else GROUP_WORLD
            g.friction = [FRICTION, 0.01, 0.001]
            g.condim = 4
    for jname in ALL_JOINTS[12:]:
        j = spec.joint(jname)
        kind = _joint_kind(jname)
        j.armature = ARMATURE[kind]
        set_damping(j, JOINT_DAMPING[kind])
        effort = float(j.actfrcrange[1])  # the URDF's effort limit
        if effort <= 0:
            effort = 2.45 if kind == 'hand' else 25.0
        a = add_joint_actuator(spec, f'pd_{jname}', jname, effort)
        a.set_to_position(kp=1.0, kv=0.1)  # gains are rewritten every step by the world
    for side in HAND_SIDES:
        s = spec.body(f'{side}_hand_palm_link').add_site()
        s.name = f'{side}_grasp'
        s.pos = list(GRASP_POINT[side])
        s.size = [0.01, 0, 0]
        s.rgba = [1, 0, 1, 0]


def _add_object(spec: mujoco.MjSpec, o: ObjectSpec) -> None:
    add_object(spec, o, FRICTION, GROUP_ROBOT)
    for side in HAND_SIDES:
        add_grasp_weld(spec, f'grasp_{side}_{o.name}', o.name, f'{side}_hand_palm_link')


def _add_room(spec: mujoco.MjSpec, scene: G1Scene) -> None:
    wb = spec.worldbody
    room = scene.room
    half = (room.size[0] / 2, room.size[1] / 2)
    add_floor(spec, half, (room.center[0], room.center[1], 0), (0.55, 0.55, 0.58, 1), GROUP_ROBOT)
    if room.wall_height > 0:
        hx, hy, t = room.size[0] / 2, room.size[1] / 2, 0.05
        walls = (
            ((room.center[0] + hx + t, room.center[1]), (t, hy + 2 * t)),
            ((room.center[0] - hx - t, room.center[1]), (t, hy + 2 * t)),
            ((room.center[0], room.center[1] + hy + t), (hx, t)),
            ((room.center[0], room.center[1] - hy - t), (hx, t)),
        )
        for i, ((x, y), (sx, sy)) in enumerate(walls):
            w = wb.add_geom()
            w.name = f'wall{i}'
            w.type = mujoco.mjtGeom.mjGEOM_BOX
            w.size = [sx, sy, room.wall_height / 2]
            w.pos = [x, y, room.wall_height / 2]
            w.rgba = [0.86, 0.84, 0.8, 1]
            w.contype = GROUP_WORLD
            w.conaffinity = GROUP_WORLD | GROUP_ROBOT
    for t in scene.tables:
        add_table(
            spec,
            t.name,
            t.center,
            t.size,
            t.thickness,
            t.height,
            top_z=t.height,
            rgba=t.rgba,
            friction=FRICTION,
            robot_group=GROUP_ROBOT,
            legs_collide=True,
        )


def _add_camera_and_lights(spec: mujoco.MjSpec, scene: G1Scene) -> None:
    c = scene.camera
    cam = spec.body(CAMERA_BODY).add_camera()
    cam.name = CAMERA_NAME
    cam.pos = [0, 0, 0]
    # d435_link: x forward, y left, z up. A MuJoCo camera looks along its -z with y up, so its
    # x = -y_link (right) and y = z_link (up).
    r = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    cam.quat = list(_matrix_to_wxyz(r))
    cam.fovy = c.fovy_deg
    cx, cy = scene.room.center
    for pos, diffuse in (((cx - 1.0, cy - 1.5, 2.6), 0.45), ((cx + 1.5, cy + 1.2, 2.4), 0.35)):
        add_light(spec, pos, (0.0, 0.0, -1.0), diffuse)
    set_offscreen_view(spec, c.width, c.height, headlight_diffuse=0.4)


def _matrix_to_wxyz(r: np.ndarray) -> np.ndarray:
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(r, dtype=float).reshape(9))
    return q


def build_g1_spec(scene: G1Scene, folder: Path | None = None) -> mujoco.MjSpec:
    """Assemble (but do not compile) the MuJoCo spec of the G1 room for ``scene``.

    Args:
        scene: the validated scene.
        folder: cache folder for the converted URDF.

    Returns:
        The spec; ``spec.compile()`` gives the model.

    Raises:
        FileNotFoundError: example-robot-data is missing.
        ValueError: the URDF could not be converted.

    """
    spec = world_spec(convert_g1_urdf(folder), 'g1_room', TIMESTEP)
    _configure_robot(spec)
    _add_room(spec, scene)
    for o in scene.objects:
        _add_object(spec, o)
    _add_camera_and_lights(spec, scene)
    return spec


@dataclass(frozen=True)
class G1ModelInfo:
    """Indices into the compiled model that the world needs (joint arrays in ALL_JOINTS order)."""

    qpos: np.ndarray  # qpos address per joint of ALL_JOINTS
    dof: np.ndarray  # dof address per joint of ALL_JOINTS
    actuators: np.ndarray  # PD actuator per joint of ALL_JOINTS[12:] (waist, arms, hands)
    joint_range: np.ndarray  # (n, 2) limits per joint of ALL_JOINTS, rad
    effort: np.ndarray  # actuator force limit per joint of ALL_JOINTS[12:], N m
    pelvis_body: int
    pelvis_mocap: int
    imu_site_body: int  # imu_in_pelvis body
    camera: int
    camera_body: int
    grasp_sites: dict[str, int]
    palm_bodies: dict[str, int]
    object_bodies: dict[str, int]
    object_qpos: dict[str, int]
    object_dof: dict[str, int]
    object_geoms: dict[str, np.ndarray]
    welds: dict[tuple[str, str], int]  # (side, object) -> equality id


def index_model(model: mujoco.MjModel, scene: G1Scene) -> G1ModelInfo:
    """Look up everything the world needs in a compiled G1 room model.

    Args:
        model: the compiled model of :func:`build_g1_spec`.
        scene: the scene it was built from.

    Returns:
        The :class:`G1ModelInfo`.

    Raises:
        ValueError: a joint, body, site or equality is missing.

    """
    jnt = name_ids(model, mujoco.mjtObj.mjOBJ_JOINT, ALL_JOINTS)
    act = name_ids(model, mujoco.mjtObj.mjOBJ_ACTUATOR, [f'pd_{j}' for j in ALL_JOINTS[12:]])
    names = list(scene.names)
    bodies, qpos, dof = object_indices(model, names)
    pelvis = int(name_ids(model, mujoco.mjtObj.mjOBJ_BODY, [PELVIS])[0])
    welds = {}
    for side in HAND_SIDES:
        ids = name_ids(model, mujoco.mjtObj.mjOBJ_EQUALITY, [f'grasp_{side}_{n}' for n in names])
        welds.update({(side, n): int(i) for n, i in zip(names, ids, strict=True)})
    return G1ModelInfo(
        qpos=model.jnt_qposadr[jnt].copy(),
        dof=model.jnt_dofadr[jnt].copy(),
        actuators=act,
        joint_range=model.jnt_range[jnt].copy(),
        effort=model.actuator_forcerange[act, 1].copy(),
        pelvis_body=pelvis,
        pelvis_mocap=int(model.body_mocapid[pelvis]),
        imu_site_body=int(name_ids(model, mujoco.mjtObj.mjOBJ_BODY, ['imu_in_pelvis'])[0]),
        camera=int(name_ids(model, mujoco.mjtObj.mjOBJ_CAMERA, [CAMERA_NAME])[0]),
        camera_body=int(name_ids(model, mujoco.mjtObj.mjOBJ_BODY, [CAMERA_BODY])[0]),
        grasp_sites={
            s: int(name_ids(model, mujoco.mjtObj.mjOBJ_SITE, [f'{s}_grasp'])[0])
            for s in HAND_SIDES
        },
        palm_bodies={
            s: int(name_ids(model, mujoco.mjtObj.mjOBJ_BODY, [f'{s}_hand_palm_link'])[0])
            for s in HAND_SIDES
        },
        object_bodies=bodies,
        object_qpos=qpos,
        object_dof=dof,
        object_geoms={n: np.flatnonzero(model.geom_bodyid == b) for n, b in bodies.items()},
        welds=welds,
    )


def build_g1_model(
    scene: G1Scene, folder: Path | None = None
) -> tuple[mujoco.MjModel, G1ModelInfo]:
    """Compile the G1 room for ``scene`` and index it.

    Args:
        scene: the validated scene.
        folder: cache folder (see :func:`robotracer_sim.common.mjcf.cache_dir`).

    Returns:
        The compiled model and its :class:`G1ModelInfo`.

    Raises:
        FileNotFoundError: example-robot-data is missing.
        ValueError: compiling failed (MuJoCo's message is included).

    """
    spec = build_g1_spec(scene, folder)
    model = compile_spec(spec, f'the G1 scene {scene.source}')
    return model, index_model(model, scene)


__all__ = [
    'BODY_JOINTS',
    'HAND_JOINTS',
    'G1ModelInfo',
    'build_g1_model',
    'build_g1_spec',
    'convert_g1_urdf',
    'g1_urdf_path',
    'index_model',
]
