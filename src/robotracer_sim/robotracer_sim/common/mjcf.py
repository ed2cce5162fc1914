"""MuJoCo model pieces both worlds build: URDF -> MJCF conversion and caching, and the scene.

Design notes: docs/design-notes.md (robotracer_sim.common.mjcf).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
import hashlib
import math
import os
from pathlib import Path
import re
import tempfile

import mujoco
import numpy as np

from robotracer_sim.common.scene_schema import CONTAINERS, ObjectSpec
from robotracer_sim.oracle.geometry import quat_xyzw_to_wxyz

GROUP_WORLD = 1
CONTAINER_WALLS = 16
WALL_THICKNESS = 0.006
BASE_THICKNESS = 0.008


def cache_dir() -> Path:
    """Folder where converted models are cached (created if missing).

    ``$ROBOTRACER_CACHE`` if set; else ``<workspace>/out/cache`` when the workspace's ``out``
    folder can be created; else ``<tmp>/robotracer_sim_cache``.

    Returns:
        The folder.

    Raises:
        OSError: no candidate folder is writable.

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


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so no reader sees half of it."""
    tmp = path.with_suffix(f'.{os.getpid()}.tmp')
    tmp.write_text(text)
    tmp.replace(path)


def urdf_with_compiler_block(urdf: str, robot: str, discard_visual: bool) -> str:
    """Insert the ``<mujoco><compiler .../></mujoco>`` block MuJoCo reads from a URDF.

    The block keeps static links as bodies (``fusestatic="false"``), keeps absolute mesh paths
    (``strippath="false"``) and balances degenerate inertias.

    Args:
        urdf: the URDF text (mesh paths already absolute).
        robot: the robot's name, for the error message (``UR5``).
        discard_visual: drop the visual geoms (keep only collision meshes).

    Returns:
        The URDF with the block right after ``<robot ...>``.

    Raises:
        ValueError: the text has no ``<robot>`` element.

    """
    block = (
        f'<mujoco><compiler fusestatic="false" discardvisual="{str(discard_visual).lower()}"'
        ' strippath="false" balanceinertia="true"/></mujoco>'
    )
    text, n = re.subn(r'(<robot\b[^>]*>)', r'\1' + block, urdf, count=1)
    if n != 1:
        raise ValueError(f'{robot} URDF has no <robot> element')
    return text


def convert_urdf(urdf: str, prefix: str, robot: str, folder: Path | None = None) -> Path:
    """Convert a URDF to MJCF once and return the cached file.

    Args:
        urdf: the URDF text MuJoCo can load (see :func:`urdf_with_compiler_block`).
        prefix: file name prefix (``ur5``).
        robot: the robot's name, for the error message (``UR5``).
        folder: cache folder; :func:`cache_dir` when omitted.

    Returns:
        Path of ``<prefix>_<hash>.xml`` (the hash covers the URDF text and the MuJoCo version).

    Raises:
        ValueError: MuJoCo cannot load the URDF (its message is included).

    """
    key = hashlib.sha256((urdf + mujoco.__version__).encode()).hexdigest()[:16]
    out = (folder or cache_dir()) / f'{prefix}_{key}.xml'
    if out.is_file():
        return out
    try:
        spec = mujoco.MjSpec.from_string(urdf)
        spec.compile()
    except Exception as exc:  # mujoco raises ValueError with the parser's message
        raise ValueError(f'MuJoCo could not load the {robot} URDF: {exc}') from exc
    write_atomically(out, spec.to_xml())  # concurrent builders never read a half-written file
    return out


def world_spec(robot_mjcf: Path, model_name: str, timestep: float) -> mujoco.MjSpec:
    """Open a converted robot as the spec of a world.

    Args:
        robot_mjcf: the cached MJCF of :func:`convert_urdf`.
        model_name: the model's name (``ur5_tabletop``).
        timestep: physics step, seconds.

    Returns:
        The spec, with the implicit-fast integrator and elliptic friction cones.

    """
    spec = mujoco.MjSpec.from_file(str(robot_mjcf))
    spec.modelname = model_name
    spec.option.timestep = timestep
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    return spec


def compile_spec(spec: mujoco.MjSpec, what: str) -> mujoco.MjModel:
    """Compile a world's spec.

    Args:
        spec: the assembled spec.
        what: the world, for the error message (``the UR5 scene <file>``).

    Returns:
        The model.

    Raises:
        ValueError: MuJoCo could not compile it (its message is included).

    """
    try:
        return spec.compile()
    except Exception as exc:
        raise ValueError(f'MuJoCo could not compile {what}: {exc}') from exc


def set_damping(joint: mujoco.MjsJoint, value: float) -> None:
    """Set a joint's linear damping (MuJoCo 4 stores damping as polynomial coefficients)."""
    current = np.atleast_1d(np.asarray(joint.damping, dtype=float))
    if current.size == 1:
        joint.damping = value
    else:
        coeffs = np.zeros_like(current)
        coeffs[0] = value
        joint.damping = coeffs


def add_joint_actuator(
    spec: mujoco.MjSpec, name: str, joint: str, force_limit: float
) -> mujoco.MjsActuator:
    """Add an actuator on ``joint`` whose force is limited to ``±force_limit``.

    Args:
        spec: the spec.
        name: the actuator's name.
        joint: the joint it drives.
        force_limit: N m (N for slide joints).

    Returns:
        The actuator; the caller makes it a servo (``set_to_position``, ``set_to_velocity``).

    """
    a = spec.add_actuator()
    a.name = name
    a.target = joint
    a.trntype = mujoco.mjtTrn.mjTRN_JOINT
    a.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
    a.forcerange = [-force_limit, force_limit]
    return a


# --------------------------------------------------------------------------- the world around


def add_floor(
    spec: mujoco.MjSpec,
    half_size: Sequence[float],
    position: Sequence[float],
    rgba: Sequence[float],
    robot_group: int,
) -> None:
    """Add the floor plane ``floor`` (collides with the world and the robot).

    Args:
        spec: the spec.
        half_size: x, y half extents, m.
        position: its centre, m.
        rgba: its colour.
        robot_group: the robot's collision bit.

    """
    floor = spec.worldbody.add_geom()
    floor.name = 'floor'
    floor.type = mujoco.mjtGeom.mjGEOM_PLANE
    floor.size = [half_size[0], half_size[1], 0.1]
    floor.pos = list(position)
    floor.rgba = list(rgba)
    floor.contype = GROUP_WORLD
    floor.conaffinity = GROUP_WORLD | robot_group


def add_table(
    spec: mujoco.MjSpec,
    name: str,
    center: Sequence[float],
    size: Sequence[float],
    thickness: float,
    height: float,
    top_z: float,
    rgba: Sequence[float],
    friction: float,
    robot_group: int,
    legs_collide: bool,
) -> None:
    """Add a table: a box top ``<name>_top`` on four legs ``<name>_leg0..3``.

    Args:
        spec: the spec.
        name: the table's name.
        center: x, y of the top's centre, m.
        size: x, y extent of the top, m.
        thickness: of the top, m.
        height: of the top surface above the floor, m.
        top_z: world z of the top surface, m.
        rgba: colour of the top (the legs are 20 % darker).
        friction: sliding friction of the top.
        robot_group: the robot's collision bit.
        legs_collide: whether the legs collide (as the top does) or are only drawn.

    """
    wb = spec.worldbody
    top = wb.add_geom()
    top.name = f'{name}_top'
    top.type = mujoco.mjtGeom.mjGEOM_BOX
    top.size = [size[0] / 2, size[1] / 2, thickness / 2]
    top.pos = [center[0], center[1], top_z - thickness / 2]
    top.rgba = list(rgba)
    top.contype = GROUP_WORLD
    top.conaffinity = GROUP_WORLD | robot_group
    top.friction = [friction, 0.01, 0.001]
    leg_h = height - thickness
    for i, (sx, sy) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
        leg = wb.add_geom()
        leg.name = f'{name}_leg{i}'
        leg.type = mujoco.mjtGeom.mjGEOM_BOX
        leg.size = [0.025, 0.025, leg_h / 2]
        leg.pos = [
            center[0] + sx * (size[0] / 2 - 0.05),
            center[1] + sy * (size[1] / 2 - 0.05),
            top_z - thickness - leg_h / 2,
        ]
        leg.rgba = [v * 0.8 for v in rgba[:3]] + [1.0]
        leg.contype = GROUP_WORLD if legs_collide else 0
        leg.conaffinity = (GROUP_WORLD | robot_group) if legs_collide else 0


def add_light(
    spec: mujoco.MjSpec, position: Sequence[float], direction: Sequence[float], diffuse: float
) -> None:
    """Add a shadowless white light at ``position`` shining along ``direction``."""
    light = spec.worldbody.add_light()
    light.pos = list(position)
    light.dir = list(direction)
    light.diffuse = [diffuse] * 3
    light.castshadow = False


def set_offscreen_view(
    spec: mujoco.MjSpec, width: int, height: int, headlight_diffuse: float
) -> None:
    """Size the offscreen buffer for ``width``×``height`` images and set the headlight and clip.

    The buffer is at least 640×480; the near/far clip planes are 0.01 and 50 model extents.
    """
    spec.visual.headlight.ambient = [0.35, 0.35, 0.35]
    spec.visual.headlight.diffuse = [headlight_diffuse] * 3
    spec.visual.global_.offwidth = max(width, 640)
    spec.visual.global_.offheight = max(height, 480)
    spec.visual.map.znear = 0.01
    spec.visual.map.zfar = 50.0


# --------------------------------------------------------------------------- objects


def container_floor_offset(o: ObjectSpec) -> float:
    """Height of a container's inner floor above its centre (negative), metres."""
    r, h = o.size
    return -h / 2 + min(BASE_THICKNESS, h / 3)


def _container_geoms(body: mujoco.MjsBody, o: ObjectSpec) -> None:
    r, h = o.size
    base_t = min(BASE_THICKNESS, h / 3)
    wall_t = min(WALL_THICKNESS, r / 3)
    wall_h = h - base_t
    base_vol = math.pi * r * r * base_t
    half_w = (r - wall_t / 2) * math.tan(math.pi / CONTAINER_WALLS) + 0.001
    wall_vol = wall_t * 2 * half_w * wall_h
    total = base_vol + CONTAINER_WALLS * wall_vol
    g = body.add_geom()
    g.name = f'{o.name}_base'
    g.type = mujoco.mjtGeom.mjGEOM_CYLINDER
    g.size = [r, base_t / 2, 0]
    g.pos = [0, 0, -h / 2 + base_t / 2]
    g.mass = o.mass * base_vol / total
    for i in range(CONTAINER_WALLS):
        th = 2 * math.pi * i / CONTAINER_WALLS
        rr = r - wall_t / 2
        w = body.add_geom()
        w.name = f'{o.name}_wall{i}'
        w.type = mujoco.mjtGeom.mjGEOM_BOX
        w.size = [wall_t / 2, half_w, wall_h / 2]
        w.pos = [rr * math.cos(th), rr * math.sin(th), -h / 2 + base_t + wall_h / 2]
        w.quat = [math.cos(th / 2), 0, 0, math.sin(th / 2)]
        w.mass = o.mass * wall_vol / total


def add_object(
    spec: mujoco.MjSpec, o: ObjectSpec, friction: float, robot_group: int
) -> mujoco.MjsBody:
    """Add a scene object as a free body ``<name>`` (free joint ``<name>_free``).

    Containers (cups, bowls) get a base ``<name>_base`` and walls ``<name>_wall<i>``; the
    other shapes one geom ``<name>_geom``. Its geoms collide with the world and the robot.

    Args:
        spec: the spec.
        o: the object.
        friction: sliding friction of its geoms.
        robot_group: the robot's collision bit.

    Returns:
        The body.

    """
    body = spec.worldbody.add_body()
    body.name = o.name
    body.pos = list(o.position)
    body.quat = list(quat_xyzw_to_wxyz(o.quat_xyzw))
    fj = body.add_freejoint()
    fj.name = f'{o.name}_free'
    if o.shape in CONTAINERS:
        _container_geoms(body, o)
    else:
        g = body.add_geom()
        g.name = f'{o.name}_geom'
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
        g.rgba = list(o.rgba)
        g.contype = GROUP_WORLD
        g.conaffinity = GROUP_WORLD | robot_group
        g.friction = [friction, 0.01, 0.001]
        g.condim = 4
    return body


def add_grasp_weld(spec: mujoco.MjSpec, name: str, obj: str, holder: str) -> None:
    """Add an inactive weld ``name`` between body ``obj`` and body ``holder`` (a grasp).

    The world activates it with the relative pose of the moment it grasps.
    """
    eq = spec.add_equality()
    eq.name = name
    eq.type = mujoco.mjtEq.mjEQ_WELD
    eq.objtype = mujoco.mjtObj.mjOBJ_BODY
    eq.name1 = obj
    eq.name2 = holder
    eq.active = False
    eq.solref = [0.01, 1.0]


# --------------------------------------------------------------------------- indexing


def name_ids(model: mujoco.MjModel, kind: mujoco.mjtObj, names: Iterable[str]) -> np.ndarray:
    """Ids of named elements of one kind in a compiled model.

    Args:
        model: the model.
        kind: joint, body, site, ...
        names: their names.

    Returns:
        The ids, in the order of ``names``.

    Raises:
        ValueError: one is missing (the message names it).

    """
    out = []
    for n in names:
        i = mujoco.mj_name2id(model, kind, n)
        if i < 0:
            raise ValueError(f'model has no {kind.name} named {n!r}')
        out.append(i)
    return np.array(out, dtype=int)


def object_indices(
    model: mujoco.MjModel, names: Sequence[str]
) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Look up the objects added by :func:`add_object`.

    Args:
        model: the compiled model.
        names: the objects' names.

    Returns:
        ``(body id, first qpos address, first dof address)`` of each object, by name.

    Raises:
        ValueError: an object or its free joint is missing.

    """
    bodies = name_ids(model, mujoco.mjtObj.mjOBJ_BODY, names)
    frees = name_ids(model, mujoco.mjtObj.mjOBJ_JOINT, [f'{n}_free' for n in names])
    return (
        dict(zip(names, bodies.tolist(), strict=True)),
        dict(zip(names, model.jnt_qposadr[frees].tolist(), strict=True)),
        dict(zip(names, model.jnt_dofadr[frees].tolist(), strict=True)),
    )
