"""Build the MuJoCo model of the UR5 tabletop world from example-robot-data's URDF and a scene.

Design notes: docs/design-notes.md (robotracer_sim.ur5.model).
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
from pathlib import Path
import re

import mujoco
import numpy as np

from robotracer_sim.common.mjcf import (
    BASE_THICKNESS,
    CONTAINER_WALLS,
    GROUP_WORLD,
    WALL_THICKNESS,
    add_floor,
    add_grasp_weld,
    add_joint_actuator,
    add_light,
    add_object,
    add_table,
    cache_dir,
    compile_spec,
    container_floor_offset,
    convert_urdf,
    name_ids,
    object_indices,
    set_damping,
    set_offscreen_view,
    urdf_with_compiler_block,
    world_spec,
    write_atomically,
)
from robotracer_sim.oracle.geometry import (
    MJ_CAMERA_TO_OPTICAL,
    matrix_to_quat_xyzw,
    quat_xyzw_to_matrix,
    quat_xyzw_to_wxyz,
)
from robotracer_sim.robot_data import resolve_package_urls, ur5_urdf_path
from robotracer_sim.ur5.scene import UR5_JOINTS, Ur5Scene

# cache_dir, container_floor_offset and the container constants live in common.mjcf (shared
# with the G1 room) and stay importable from here.
__all__ = [
    'BASE_THICKNESS',
    'CONTAINER_WALLS',
    'WALL_THICKNESS',
    'Ur5ModelInfo',
    'build_ur5_model',
    'build_ur5_spec',
    'cache_dir',
    'container_floor_offset',
    'convert_ur5_urdf',
    'ur5_urdf_for_mujoco',
]

TIMESTEP = 0.002
CAMERA_NAME = 'scene_camera'
TCP_SITE = 'tcp'
TOOL_BODY = 'tool0'
FINGER_JOINTS = ('finger_left_joint', 'finger_right_joint')
FINGER_OPEN = 0.045  # m of travel per finger: 0 = fingers touching, 0.045 = 9 cm apart
ARM_BODIES = (
    'shoulder_link',
    'upper_arm_link',
    'forearm_link',
    'wrist_1_link',
    'wrist_2_link',
    'wrist_3_link',
)
EFFORT = (150.0, 150.0, 150.0, 28.0, 28.0, 28.0)
KP = (4000.0, 4000.0, 3000.0, 800.0, 800.0, 500.0)
KV = (400.0, 400.0, 300.0, 60.0, 60.0, 40.0)
# Integral action while holding a position: the position servo's target moves by KI × error per
# second, at most INTEGRAL_EFFORT_FRACTION × EFFORT / KP (so the integral adds at most that
# fraction of the joint's effort); it decays with INTEGRAL_LEAK_S while a trajectory runs.
KI = 8.0  # 1/s
INTEGRAL_EFFORT_FRACTION = 0.4
INTEGRAL_LEAK_S = 0.3
ARMATURE = 0.1
# Collision groups: objects and the table collide with everything, arm links with objects and
# the table but not with each other (the UR's own collision meshes overlap at the joints).
GROUP_ARM = 2
OBJECT_FRICTION = 1.0


def ur5_urdf_for_mujoco() -> str:
    """Return the UR5 URDF rewritten so MuJoCo can load it.

    Returns:
        URDF text with absolute mesh paths, STL meshes only, and a ``<mujoco>`` compiler block
        that keeps static links (``fusestatic="false"``).

    Raises:
        FileNotFoundError: example-robot-data is missing.

    """
    text = resolve_package_urls(ur5_urdf_path().read_text())
    text = re.sub(r'meshes/ur5/visual/(\w+)\.dae', r'meshes/ur5/collision/\1.stl', text)
    return urdf_with_compiler_block(text, 'UR5', discard_visual=True)


def convert_ur5_urdf(folder: Path | None = None) -> Path:
    """Convert the UR5 URDF to MJCF once and return the cached file.

    Args:
        folder: cache folder; :func:`cache_dir` when omitted.

    Returns:
        Path of ``ur5_<hash>.xml`` (the hash covers the URDF text and the MuJoCo version).

    Raises:
        FileNotFoundError: example-robot-data is missing.
        ValueError: MuJoCo cannot load the URDF (its message is included).

    """
    return convert_urdf(ur5_urdf_for_mujoco(), 'ur5', 'UR5', folder)


@dataclass(frozen=True)
class Ur5ModelInfo:
    """Indices into the compiled model that the world needs."""

    arm_qpos: np.ndarray  # qpos addresses of the six arm joints (UR5_JOINTS order)
    arm_dof: np.ndarray  # dof addresses of the six arm joints
    pos_actuators: np.ndarray  # position servo per arm joint
    vel_actuators: np.ndarray  # velocity servo per arm joint
    finger_actuators: np.ndarray  # position servo per finger
    finger_qpos: np.ndarray
    object_bodies: dict[str, int]
    object_qpos: dict[str, int]  # first qpos address of each object's free joint
    object_dof: dict[str, int]
    object_welds: dict[str, int]  # weld equality id per object (inactive until grasped)
    tool_body: int
    tcp_site: int
    camera: int


def _add_table_and_floor(spec: mujoco.MjSpec, scene: Ur5Scene) -> None:
    t = scene.table
    add_floor(spec, (4, 4), (0, 0, -t.height), (0.42, 0.45, 0.5, 1), GROUP_ARM)
    add_table(
        spec,
        'table',
        t.center,
        t.size,
        t.thickness,
        t.height,
        top_z=0.0,
        rgba=t.rgba,
        friction=1.0,
        robot_group=GROUP_ARM,
        legs_collide=False,
    )


def _add_gripper(spec: mujoco.MjSpec, scene: Ur5Scene) -> None:
    tool = spec.body(TOOL_BODY)
    tcp = scene.robot.tcp_offset
    palm_h = max(0.02, tcp - 0.1)
    palm = tool.add_geom()
    palm.name = 'gripper_palm'
    palm.type = mujoco.mjtGeom.mjGEOM_BOX
    palm.size = [0.025, 0.06, palm_h / 2]
    palm.pos = [0, 0, palm_h / 2]
    palm.rgba = [0.15, 0.15, 0.17, 1]
    palm.mass = 0.3
    finger_len = tcp + 0.01 - palm_h
    for side, name in ((1.0, FINGER_JOINTS[0]), (-1.0, FINGER_JOINTS[1])):
        f = tool.add_body()
        f.name = name.replace('_joint', '')
        f.pos = [0, side * 0.008, palm_h]
        f.gravcomp = 1.0
        j = f.add_joint()
        j.name = name
        j.type = mujoco.mjtJoint.mjJNT_SLIDE
        j.axis = [0, side, 0]
        j.range = [0, FINGER_OPEN]
        j.limited = mujoco.mjtLimited.mjLIMITED_TRUE
        j.armature = 0.01
        set_damping(j, 5.0)
        g = f.add_geom()
        g.name = name.replace('_joint', '_pad')
        g.type = mujoco.mjtGeom.mjGEOM_BOX
        g.size = [0.012, 0.006, finger_len / 2]
        g.pos = [0, 0, finger_len / 2]
        g.rgba = [0.3, 0.3, 0.33, 1]
        g.mass = 0.05
    # The palm and finger pads are solid, like the arm: they touch and push objects (the
    # executor's `push` mode relies on it). A grasped object is welded to tool0.
    for i in range(len(tool.geoms)):
        tool.geoms[i].contype = GROUP_ARM
        tool.geoms[i].conaffinity = GROUP_WORLD
    for name in FINGER_JOINTS:
        for i in range(len(spec.body(name.replace('_joint', '')).geoms)):
            g = spec.body(name.replace('_joint', '')).geoms[i]
            g.contype = GROUP_ARM
            g.conaffinity = GROUP_WORLD
    site = tool.add_site()
    site.name = TCP_SITE
    site.pos = [0, 0, tcp]
    site.size = [0.005, 0, 0]
    site.rgba = [1, 0, 1, 0.0]
    tool.gravcomp = 1.0


def _add_actuators(spec: mujoco.MjSpec) -> None:
    for i, jname in enumerate(UR5_JOINTS):
        j = spec.joint(jname)
        j.armature = ARMATURE
        set_damping(j, 0.5)
        add_joint_actuator(spec, f'pos_{jname}', jname, EFFORT[i]).set_to_position(kp=KP[i])
        add_joint_actuator(spec, f'vel_{jname}', jname, EFFORT[i]).set_to_velocity(kv=KV[i])
    for jname in FINGER_JOINTS:
        a = add_joint_actuator(spec, f'pos_{jname}', jname, 40)
        a.set_to_position(kp=300.0, kv=10.0)
        a.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        a.ctrlrange = [0, FINGER_OPEN]


def _add_camera_and_lights(spec: mujoco.MjSpec, scene: Ur5Scene) -> None:
    c = scene.camera
    cam = spec.worldbody.add_camera()
    cam.name = CAMERA_NAME
    cam.pos = list(c.position)
    r_mj = quat_xyzw_to_matrix(c.quat_xyzw) @ MJ_CAMERA_TO_OPTICAL
    cam.quat = list(quat_xyzw_to_wxyz(matrix_to_quat_xyzw(r_mj)))
    cam.fovy = c.fovy_deg
    for pos, diffuse in (((0.4, -0.8, 2.0), 0.5), ((1.2, 0.9, 1.8), 0.35)):
        add_light(spec, pos, -np.asarray(pos) / np.linalg.norm(pos), diffuse)
    set_offscreen_view(spec, c.width, c.height, headlight_diffuse=0.45)
    # No multisampling: 2-4x faster on a CPU (llvmpipe) renderer, and depth edges stay crisp
    # like a real depth camera's instead of blending foreground and background.
    spec.visual.quality.offsamples = 0


def build_ur5_spec(scene: Ur5Scene, folder: Path | None = None) -> mujoco.MjSpec:
    """Assemble (but do not compile) the MuJoCo spec of the UR5 world for ``scene``.

    Args:
        scene: the validated scene.
        folder: cache folder for the converted URDF (see :func:`cache_dir`).

    Returns:
        The spec; ``spec.compile()`` gives the model and ``spec.to_xml()`` its MJCF.

    Raises:
        FileNotFoundError: example-robot-data is missing.
        ValueError: the URDF could not be converted.

    """
    spec = world_spec(convert_ur5_urdf(folder), 'ur5_tabletop', TIMESTEP)
    for name in ARM_BODIES:
        spec.body(name).gravcomp = 1.0
    for name in ('base_link', *ARM_BODIES):
        b = spec.body(name)
        for i in range(len(b.geoms)):
            g = b.geoms[i]
            g.contype = GROUP_ARM
            g.conaffinity = GROUP_WORLD
            g.rgba = [0.7, 0.72, 0.75, 1.0] if name != 'base_link' else [0.3, 0.3, 0.32, 1.0]
    ee = spec.body('ee_link')
    for i in range(len(ee.geoms)):
        ee.geoms[i].contype = 0
        ee.geoms[i].conaffinity = 0
        ee.geoms[i].rgba = [0, 0, 0, 0]
    _add_table_and_floor(spec, scene)
    _add_gripper(spec, scene)
    _add_actuators(spec)
    for o in scene.objects:
        add_object(spec, o, OBJECT_FRICTION, GROUP_ARM)
        add_grasp_weld(spec, f'grasp_{o.name}', o.name, TOOL_BODY)
    _add_camera_and_lights(spec, scene)
    return spec


def build_ur5_model(
    scene: Ur5Scene, folder: Path | None = None
) -> tuple[mujoco.MjModel, Ur5ModelInfo]:
    """Compile the UR5 world for ``scene`` and index it.

    The full MJCF is also written next to the cached robot (``ur5_tabletop_<hash>.xml``) for
    inspection with ``python -m mujoco.viewer --mjcf=...``.

    Args:
        scene: the validated scene.
        folder: cache folder (see :func:`cache_dir`).

    Returns:
        The compiled model and its :class:`Ur5ModelInfo`.

    Raises:
        FileNotFoundError: example-robot-data is missing.
        ValueError: compiling failed (MuJoCo's message is included).

    """
    spec = build_ur5_spec(scene, folder)
    model = compile_spec(spec, f'the UR5 scene {scene.source}')
    xml = spec.to_xml()
    out = (folder or cache_dir()) / (
        'ur5_tabletop_' + hashlib.sha256(xml.encode()).hexdigest()[:16] + '.xml'
    )
    if not out.is_file():
        write_atomically(out, xml)
    jnt = name_ids(model, mujoco.mjtObj.mjOBJ_JOINT, UR5_JOINTS)
    fingers = name_ids(model, mujoco.mjtObj.mjOBJ_JOINT, FINGER_JOINTS)
    act = mujoco.mjtObj.mjOBJ_ACTUATOR
    names = [o.name for o in scene.objects]
    bodies, qpos, dof = object_indices(model, names)
    welds = name_ids(model, mujoco.mjtObj.mjOBJ_EQUALITY, [f'grasp_{n}' for n in names])
    info = Ur5ModelInfo(
        arm_qpos=model.jnt_qposadr[jnt].copy(),
        arm_dof=model.jnt_dofadr[jnt].copy(),
        pos_actuators=name_ids(model, act, [f'pos_{j}' for j in UR5_JOINTS]),
        vel_actuators=name_ids(model, act, [f'vel_{j}' for j in UR5_JOINTS]),
        finger_actuators=name_ids(model, act, [f'pos_{j}' for j in FINGER_JOINTS]),
        finger_qpos=model.jnt_qposadr[fingers].copy(),
        object_bodies=bodies,
        object_qpos=qpos,
        object_dof=dof,
        object_welds=dict(zip(names, welds.tolist(), strict=True)),
        tool_body=int(name_ids(model, mujoco.mjtObj.mjOBJ_BODY, [TOOL_BODY])[0]),
        tcp_site=int(name_ids(model, mujoco.mjtObj.mjOBJ_SITE, [TCP_SITE])[0]),
        camera=int(name_ids(model, mujoco.mjtObj.mjOBJ_CAMERA, [CAMERA_NAME])[0]),
    )
    return model, info
