"""Build the MuJoCo model of the UR5 tabletop world from example-robot-data's URDF and a scene.

Two stages:

1. :func:`convert_ur5_urdf` turns ``ur5_robot.urdf`` into MJCF once and caches it (``out/cache``
   of the workspace when it exists, else ``<tmp>/robotracer_sim_cache``; never inside
   ``src``): ``package://example-robot-data/robots/`` URLs become absolute paths and the
   ``.dae`` visual meshes (MuJoCo cannot read COLLADA) are replaced by the ``.stl`` collision
   meshes. Static links (``base_link``, ``tool0``, ...) are kept as bodies.
2. :func:`build_ur5_model` adds the world around it with ``mujoco.MjSpec``: floor, table (top
   at z = 0, the UR5 base on it at the origin), the scene's objects (free bodies), the fixed
   camera, the gripper and the actuators, then compiles.

The actuation is the simulated equivalent of a UR joint position controller: per arm joint a
position servo (``kp``) plus a velocity servo (``kv``, fed the trajectory's velocity), gravity
compensation on the arm links, forces limited to the UR5's joint efforts (150 / 28 N m).

The gripper is a simple parallel gripper on ``tool0``: a palm and two fingers on slide joints
(position servos; 0 = closed, ``FINGER_OPEN`` = open). Its geoms do not collide; grasping is a
weld equality (see :mod:`robotracer_sim.ur5.world`). The TCP site sits ``tcp_offset`` along
tool0's z axis, between the fingertips.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import math
import os
from pathlib import Path
import re
import tempfile

import mujoco
import numpy as np

from robotracer_sim.oracle.geometry import (
    MJ_CAMERA_TO_OPTICAL,
    matrix_to_quat_xyzw,
    quat_xyzw_to_matrix,
    quat_xyzw_to_wxyz,
)
from robotracer_sim.robot_data import resolve_package_urls, ur5_urdf_path
from robotracer_sim.ur5.scene import CONTAINERS, UR5_JOINTS, ObjectSpec, Ur5Scene

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
ARMATURE = 0.1
# Collision groups: objects and the table collide with everything, arm links with objects and
# the table but not with each other (the UR's own collision meshes overlap at the joints).
GROUP_WORLD = 1
GROUP_ARM = 2
CONTAINER_WALLS = 16
WALL_THICKNESS = 0.006
BASE_THICKNESS = 0.008


def cache_dir() -> Path:
    """Folder where converted models are cached (created if missing).

    ``$ROBOTRACER_CACHE`` if set; else ``<workspace>/out/cache`` when the workspace's ``out``
    folder can be created; else ``<tmp>/robotracer_sim_cache``.

    Returns:
        The folder.

    """
    env = os.environ.get('ROBOTRACER_CACHE')
    candidates = [Path(env)] if env else []
    ws = os.environ.get('ROBOTRACER_WS')
    if ws:
        candidates.append(Path(ws) / 'out' / 'cache')
    candidates.append(Path(tempfile.gettempdir()) / 'robotracer_sim_cache')
    for c in candidates:
        try:
            c.mkdir(parents=True, exist_ok=True)
            return c
        except OSError:
            continue
    raise OSError(f'no writable cache folder (tried {", ".join(map(str, candidates))})')


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
    block = (
        '<mujoco><compiler fusestatic="false" discardvisual="true" strippath="false"'
        ' balanceinertia="true"/></mujoco>'
    )
    text, n = re.subn(r'(<robot\b[^>]*>)', r'\1' + block, text, count=1)
    if n != 1:
        raise ValueError('UR5 URDF has no <robot> element')
    return text


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
    urdf = ur5_urdf_for_mujoco()
    key = hashlib.sha256((urdf + mujoco.__version__).encode()).hexdigest()[:16]
    out = (folder or cache_dir()) / f'ur5_{key}.xml'
    if out.is_file():
        return out
    try:
        spec = mujoco.MjSpec.from_string(urdf)
        spec.compile()
    except Exception as exc:  # mujoco raises ValueError with the parser's message
        raise ValueError(f'MuJoCo could not load the UR5 URDF: {exc}') from exc
    tmp = out.with_suffix(f'.{os.getpid()}.tmp')
    tmp.write_text(spec.to_xml())
    tmp.replace(out)  # atomic: concurrent builders never read a half-written file
    return out


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


def _set_damping(joint: mujoco.MjsJoint, value: float) -> None:
    """Set a joint's linear damping (MuJoCo 4 stores damping as polynomial coefficients)."""
    current = np.atleast_1d(np.asarray(joint.damping, dtype=float))
    if current.size == 1:
        joint.damping = value
    else:
        coeffs = np.zeros_like(current)
        coeffs[0] = value
        joint.damping = coeffs


def _container_geoms(
    body: mujoco.MjsBody, o: ObjectSpec, rgba: list[float], mass: float, walls: int
) -> None:
    r, h = o.size
    base_t = min(BASE_THICKNESS, h / 3)
    wall_t = min(WALL_THICKNESS, r / 3)
    wall_h = h - base_t
    base_vol = math.pi * r * r * base_t
    half_w = (r - wall_t / 2) * math.tan(math.pi / walls) + 0.001
    wall_vol = wall_t * 2 * half_w * wall_h
    total = base_vol + walls * wall_vol
    g = body.add_geom()
    g.name = f'{o.name}_base'
    g.type = mujoco.mjtGeom.mjGEOM_CYLINDER
    g.size = [r, base_t / 2, 0]
    g.pos = [0, 0, -h / 2 + base_t / 2]
    g.rgba = rgba
    g.mass = mass * base_vol / total
    for i in range(walls):
        th = 2 * math.pi * i / walls
        rr = r - wall_t / 2
        w = body.add_geom()
        w.name = f'{o.name}_wall{i}'
        w.type = mujoco.mjtGeom.mjGEOM_BOX
        w.size = [wall_t / 2, half_w, wall_h / 2]
        w.pos = [rr * math.cos(th), rr * math.sin(th), -h / 2 + base_t + wall_h / 2]
        w.quat = [math.cos(th / 2), 0, 0, math.sin(th / 2)]
        w.rgba = rgba
        w.mass = mass * wall_vol / total


def container_floor_offset(o: ObjectSpec) -> float:
    """Height of a container's inner floor above its centre (negative), metres."""
    r, h = o.size
    return -h / 2 + min(BASE_THICKNESS, h / 3)


def _add_object(spec: mujoco.MjSpec, o: ObjectSpec) -> None:
    body = spec.worldbody.add_body()
    body.name = o.name
    body.pos = list(o.position)
    body.quat = list(quat_xyzw_to_wxyz(o.quat_xyzw))
    fj = body.add_freejoint()
    fj.name = f'{o.name}_free'
    rgba = list(o.rgba)
    if o.shape in CONTAINERS:
        _container_geoms(body, o, rgba, o.mass, CONTAINER_WALLS)
    else:
        g = body.add_geom()
        g.name = f'{o.name}_geom'
        g.rgba = rgba
        g.mass = o.mass
        if o.shape == 'box':
            g.type = mujoco.mjtGeom.mjGEOM_BOX
            g.size = list(np.asarray(o.size) / 2)
        elif o.shape == 'sphere':
            g.type = mujoco.mjtGeom.mjGEOM_SPHERE
            g.size = [o.size[0], 0, 0]
        else:  # cylinder, plate
            g.type = mujoco.mjtGeom.mjGEOM_CYLINDER
            g.size = [o.size[0], o.size[1] / 2, 0]
    for i in range(len(body.geoms)):
        g = body.geoms[i]
        g.contype = GROUP_WORLD
        g.conaffinity = GROUP_WORLD | GROUP_ARM
        g.friction = [1.0, 0.01, 0.001]
        g.condim = 4
    eq = spec.add_equality()
    eq.name = f'grasp_{o.name}'
    eq.type = mujoco.mjtEq.mjEQ_WELD
    eq.objtype = mujoco.mjtObj.mjOBJ_BODY
    eq.name1 = o.name
    eq.name2 = TOOL_BODY
    eq.active = False
    eq.solref = [0.01, 1.0]


def _add_table_and_floor(spec: mujoco.MjSpec, scene: Ur5Scene) -> None:
    t = scene.table
    wb = spec.worldbody
    floor = wb.add_geom()
    floor.name = 'floor'
    floor.type = mujoco.mjtGeom.mjGEOM_PLANE
    floor.size = [4, 4, 0.1]
    floor.pos = [0, 0, -t.height]
    floor.rgba = [0.42, 0.45, 0.5, 1]
    floor.contype = GROUP_WORLD
    floor.conaffinity = GROUP_WORLD | GROUP_ARM
    top = wb.add_geom()
    top.name = 'table_top'
    top.type = mujoco.mjtGeom.mjGEOM_BOX
    top.size = [t.size[0] / 2, t.size[1] / 2, t.thickness / 2]
    top.pos = [t.center[0], t.center[1], -t.thickness / 2]
    top.rgba = list(t.rgba)
    top.contype = GROUP_WORLD
    top.conaffinity = GROUP_WORLD | GROUP_ARM
    top.friction = [1.0, 0.01, 0.001]
    leg_h = t.height - t.thickness
    for i, (sx, sy) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
        leg = wb.add_geom()
        leg.name = f'table_leg{i}'
        leg.type = mujoco.mjtGeom.mjGEOM_BOX
        leg.size = [0.025, 0.025, leg_h / 2]
        leg.pos = [
            t.center[0] + sx * (t.size[0] / 2 - 0.05),
            t.center[1] + sy * (t.size[1] / 2 - 0.05),
            -t.thickness - leg_h / 2,
        ]
        leg.rgba = [v * 0.8 for v in t.rgba[:3]] + [1.0]
        leg.contype = 0
        leg.conaffinity = 0


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
        _set_damping(j, 5.0)
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
        _set_damping(j, 0.5)
        p = spec.add_actuator()
        p.name = f'pos_{jname}'
        p.target = jname
        p.trntype = mujoco.mjtTrn.mjTRN_JOINT
        p.set_to_position(kp=KP[i])
        p.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        p.forcerange = [-EFFORT[i], EFFORT[i]]
        v = spec.add_actuator()
        v.name = f'vel_{jname}'
        v.target = jname
        v.trntype = mujoco.mjtTrn.mjTRN_JOINT
        v.set_to_velocity(kv=KV[i])
        v.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        v.forcerange = [-EFFORT[i], EFFORT[i]]
    for jname in FINGER_JOINTS:
        a = spec.add_actuator()
        a.name = f'pos_{jname}'
        a.target = jname
        a.trntype = mujoco.mjtTrn.mjTRN_JOINT
        a.set_to_position(kp=300.0, kv=10.0)
        a.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        a.ctrlrange = [0, FINGER_OPEN]
        a.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        a.forcerange = [-40, 40]


def _add_camera_and_lights(spec: mujoco.MjSpec, scene: Ur5Scene) -> None:
    c = scene.camera
    cam = spec.worldbody.add_camera()
    cam.name = CAMERA_NAME
    cam.pos = list(c.position)
    r_mj = quat_xyzw_to_matrix(c.quat_xyzw) @ MJ_CAMERA_TO_OPTICAL
    cam.quat = list(quat_xyzw_to_wxyz(matrix_to_quat_xyzw(r_mj)))
    cam.fovy = c.fovy_deg
    for pos, diffuse in (((0.4, -0.8, 2.0), 0.5), ((1.2, 0.9, 1.8), 0.35)):
        light = spec.worldbody.add_light()
        light.pos = list(pos)
        light.dir = list(-np.asarray(pos) / np.linalg.norm(pos))
        light.diffuse = [diffuse] * 3
        light.castshadow = False
    spec.visual.headlight.ambient = [0.35, 0.35, 0.35]
    spec.visual.headlight.diffuse = [0.45, 0.45, 0.45]
    spec.visual.global_.offwidth = max(c.width, 640)
    spec.visual.global_.offheight = max(c.height, 480)
    # No multisampling: 2-4x faster on a CPU (llvmpipe) renderer, and depth edges stay crisp
    # like a real depth camera's instead of blending foreground and background.
    spec.visual.quality.offsamples = 0
    spec.visual.map.znear = 0.01
    spec.visual.map.zfar = 50.0


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
    spec = mujoco.MjSpec.from_file(str(convert_ur5_urdf(folder)))
    spec.modelname = 'ur5_tabletop'
    spec.option.timestep = TIMESTEP
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
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
        _add_object(spec, o)
    _add_camera_and_lights(spec, scene)
    return spec


def _ids(model: mujoco.MjModel, kind: mujoco.mjtObj, names: tuple[str, ...] | list[str]):
    out = []
    for n in names:
        i = mujoco.mj_name2id(model, kind, n)
        if i < 0:
            raise ValueError(f'model has no {kind.name} named {n!r}')
        out.append(i)
    return np.array(out, dtype=int)


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
    try:
        model = spec.compile()
    except Exception as exc:
        raise ValueError(f'MuJoCo could not compile the UR5 scene {scene.source}: {exc}') from exc
    xml = spec.to_xml()
    out = (folder or cache_dir()) / (
        'ur5_tabletop_' + hashlib.sha256(xml.encode()).hexdigest()[:16] + '.xml'
    )
    if not out.is_file():
        tmp = out.with_suffix(f'.{os.getpid()}.tmp')
        tmp.write_text(xml)
        tmp.replace(out)
    jnt = _ids(model, mujoco.mjtObj.mjOBJ_JOINT, UR5_JOINTS)
    fingers = _ids(model, mujoco.mjtObj.mjOBJ_JOINT, FINGER_JOINTS)
    act = mujoco.mjtObj.mjOBJ_ACTUATOR
    names = [o.name for o in scene.objects]
    bodies = _ids(model, mujoco.mjtObj.mjOBJ_BODY, names)
    frees = _ids(model, mujoco.mjtObj.mjOBJ_JOINT, [f'{n}_free' for n in names])
    welds = _ids(model, mujoco.mjtObj.mjOBJ_EQUALITY, [f'grasp_{n}' for n in names])
    info = Ur5ModelInfo(
        arm_qpos=model.jnt_qposadr[jnt].copy(),
        arm_dof=model.jnt_dofadr[jnt].copy(),
        pos_actuators=_ids(model, act, [f'pos_{j}' for j in UR5_JOINTS]),
        vel_actuators=_ids(model, act, [f'vel_{j}' for j in UR5_JOINTS]),
        finger_actuators=_ids(model, act, [f'pos_{j}' for j in FINGER_JOINTS]),
        finger_qpos=model.jnt_qposadr[fingers].copy(),
        object_bodies=dict(zip(names, bodies.tolist(), strict=True)),
        object_qpos=dict(zip(names, model.jnt_qposadr[frees].tolist(), strict=True)),
        object_dof=dict(zip(names, model.jnt_dofadr[frees].tolist(), strict=True)),
        object_welds=dict(zip(names, welds.tolist(), strict=True)),
        tool_body=int(_ids(model, mujoco.mjtObj.mjOBJ_BODY, [TOOL_BODY])[0]),
        tcp_site=int(_ids(model, mujoco.mjtObj.mjOBJ_SITE, [TCP_SITE])[0]),
        camera=int(_ids(model, mujoco.mjtObj.mjOBJ_CAMERA, [CAMERA_NAME])[0]),
    )
    return model, info
