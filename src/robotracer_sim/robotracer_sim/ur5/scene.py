"""The UR5 tabletop scene file (``config/scenes/*.yaml``): schema, loader and validation.

A scene file declares the table, the camera and the named objects. Every mistake is reported
as a :class:`SceneError` that names the file and the field (``objects[2].shape: unknown shape
'pyramid' (known: box, bowl, ...)``).

Schema (all lengths in metres, angles in degrees, frames as in the module ``geometry``)::

    world_frame: world            # the world frame == the UR5 base frame
    base_frame: base_link
    robot:
      home: [0, -1.57, 1.57, -1.57, -1.57, 0]   # initial joint positions, rad
      tcp_offset: 0.15            # TCP = tool0 + tcp_offset along tool0's z axis
      grasp_radius: 0.03          # closed gripper grasps an object within this of the TCP
    table: {center: [0.3, 0.0], size: [1.2, 1.4], thickness: 0.04, height: 0.75, color: wood}
    camera:
      frame_id: camera_color_optical_frame
      width: 640
      height: 480
      fovy_deg: 45.0
      position: [x, y, z]         # optical-frame origin in world_frame
      quat_xyzw: [x, y, z, w]     # optical frame (x right, y down, z forward) in world_frame
      depth_max: 6.0              # depth beyond this is "no return" (0)
    objects:
      - name: red_cube            # [a-z][a-z0-9_]*, unique
        shape: box                # box | cylinder | sphere | cup | bowl | plate
        color: red                # a palette name (see PALETTE); used by the oracle's language
        size: [0.045, 0.045, 0.045]   # box: [x, y, z] full sizes (or one number: a cube)
                                  # cylinder/cup/bowl/plate: [radius, height]; sphere: [radius]
        position: [0.45, -0.15]   # [x, y] resting on the table, or [x, y, z] of its centre
        yaw_deg: 0                # optional rotation about z
        mass: 0.1                 # optional, kg
        words: [block]            # optional extra words the oracle accepts for this object

The object's frame origin is the centre of its bounding box, so an object resting on the table
has its centre at ``z = height / 2``. Cups and bowls are open containers (a base and a ring of
walls) that other objects can be placed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from pathlib import Path
import re
from typing import Any

import numpy as np
import yaml

from robotracer_sim.oracle.geometry import quat_xyzw_to_matrix

SHAPES = ('box', 'cylinder', 'sphere', 'cup', 'bowl', 'plate')
CONTAINERS = ('cup', 'bowl')

PALETTE: dict[str, tuple[float, float, float, float]] = {
    'red': (0.85, 0.1, 0.1, 1.0),
    'green': (0.1, 0.7, 0.2, 1.0),
    'blue': (0.1, 0.25, 0.9, 1.0),
    'yellow': (0.95, 0.85, 0.1, 1.0),
    'orange': (1.0, 0.5, 0.05, 1.0),
    'purple': (0.55, 0.2, 0.75, 1.0),
    'pink': (1.0, 0.5, 0.7, 1.0),
    'cyan': (0.1, 0.8, 0.85, 1.0),
    'white': (0.93, 0.93, 0.93, 1.0),
    'grey': (0.55, 0.55, 0.55, 1.0),
    'gray': (0.55, 0.55, 0.55, 1.0),
    'black': (0.08, 0.08, 0.08, 1.0),
    'brown': (0.5, 0.3, 0.12, 1.0),
    'wood': (0.72, 0.55, 0.38, 1.0),
}

DEFAULT_MASS = {
    'box': 0.1,
    'cylinder': 0.15,
    'sphere': 0.08,
    'cup': 0.15,
    'bowl': 0.25,
    'plate': 0.3,
}

UR5_JOINTS = (
    'shoulder_pan_joint',
    'shoulder_lift_joint',
    'elbow_joint',
    'wrist_1_joint',
    'wrist_2_joint',
    'wrist_3_joint',
)

_NAME_RE = re.compile(r'^[a-z][a-z0-9_]*$')


class SceneError(ValueError):
    """A scene file is missing, unreadable or invalid; the message names the field."""


@dataclass(frozen=True)
class ObjectSpec:
    """One named object on the table.

    Attributes:
        name: unique identifier (``red_cube``).
        shape: one of :data:`SHAPES`.
        color: palette name (``red``).
        rgba: render colour.
        size: box: full sizes (x, y, z); cylinder/cup/bowl/plate: (radius, height);
            sphere: (radius,).
        position: centre in the world frame, metres.
        yaw_deg: rotation about the world z axis, degrees.
        mass: kg.
        words: extra words the oracle accepts for it.

    """

    name: str
    shape: str
    color: str
    rgba: tuple[float, float, float, float]
    size: tuple[float, ...]
    position: tuple[float, float, float]
    yaw_deg: float = 0.0
    mass: float = 0.1
    words: tuple[str, ...] = ()

    @property
    def half_extents(self) -> np.ndarray:
        """Half sizes of the bounding box in the object frame (x, y, z), metres."""
        return half_extents(self.shape, self.size)

    @property
    def quat_xyzw(self) -> tuple[float, float, float, float]:
        """Initial orientation (yaw about z) as ``(x, y, z, w)``."""
        h = math.radians(self.yaw_deg) / 2.0
        return (0.0, 0.0, math.sin(h), math.cos(h))


@dataclass(frozen=True)
class CameraSpec:
    """The fixed RGB-D camera: image size, vertical FOV and optical-frame pose in the world."""

    frame_id: str = 'camera_color_optical_frame'
    width: int = 640
    height: int = 480
    fovy_deg: float = 45.0
    position: tuple[float, float, float] = (1.3, 0.0, 0.8)
    quat_xyzw: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    depth_max: float = 6.0

    @property
    def t_world_camera(self) -> np.ndarray:
        """4×4 optical camera frame → world transform."""
        t = np.eye(4)
        t[:3, :3] = quat_xyzw_to_matrix(self.quat_xyzw)
        t[:3, 3] = self.position
        return t


@dataclass(frozen=True)
class TableSpec:
    """The table: its top surface is at z = 0 (the UR5 base stands on it)."""

    center: tuple[float, float] = (0.3, 0.0)
    size: tuple[float, float] = (1.2, 1.4)
    thickness: float = 0.04
    height: float = 0.75
    rgba: tuple[float, float, float, float] = PALETTE['wood']


@dataclass(frozen=True)
class RobotSpec:
    """UR5 settings: home pose, TCP offset and the grasp model's radius."""

    home: tuple[float, ...] = (0.0, -1.57, 1.57, -1.57, -1.57, 0.0)
    tcp_offset: float = 0.15
    grasp_radius: float = 0.03


@dataclass(frozen=True)
class Ur5Scene:
    """A whole scene file, validated."""

    objects: tuple[ObjectSpec, ...]
    camera: CameraSpec = field(default_factory=CameraSpec)
    table: TableSpec = field(default_factory=TableSpec)
    robot: RobotSpec = field(default_factory=RobotSpec)
    world_frame: str = 'world'
    base_frame: str = 'base_link'
    source: str = '<memory>'

    def object(self, name: str) -> ObjectSpec:
        """Return the object called ``name``.

        Raises:
            KeyError: no such object (the message lists the known ones).

        """
        for o in self.objects:
            if o.name == name:
                return o
        raise KeyError(f'unknown object {name!r} (known: {", ".join(self.names)})')

    @property
    def names(self) -> tuple[str, ...]:
        """Object names in file order."""
        return tuple(o.name for o in self.objects)


def half_extents(shape: str, size: tuple[float, ...]) -> np.ndarray:
    """Half sizes (x, y, z) of a shape's bounding box.

    Args:
        shape: one of :data:`SHAPES`.
        size: the shape's size tuple (see :class:`ObjectSpec`).

    Returns:
        The three half extents, metres.

    Raises:
        SceneError: unknown shape.

    """
    if shape == 'box':
        return np.asarray(size, dtype=float) / 2.0
    if shape == 'sphere':
        return np.full(3, float(size[0]))
    if shape in ('cylinder', 'cup', 'bowl', 'plate'):
        r, h = float(size[0]), float(size[1])
        return np.array([r, r, h / 2.0])
    raise SceneError(f'unknown shape {shape!r} (known: {", ".join(SHAPES)})')


# --------------------------------------------------------------------------- validation


def _err(where: str, msg: str) -> SceneError:
    return SceneError(f'{where}: {msg}')


def _numbers(where: str, value: Any, lengths: tuple[int, ...]) -> tuple[float, ...]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or len(value) not in lengths:
        want = ' or '.join(str(n) for n in lengths)
        raise _err(where, f'expected a list of {want} numbers, got {value!r}')
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _err(where, f'expected finite numbers, got {value!r}')
        out.append(float(v))
    return tuple(out)


def _positive(where: str, values: tuple[float, ...]) -> tuple[float, ...]:
    if any(v <= 0 for v in values):
        raise _err(where, f'sizes must be > 0, got {list(values)}')
    return values


def _check_keys(where: str, d: dict, allowed: set[str]) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise _err(where, f'unknown key(s) {unknown} (allowed: {sorted(allowed)})')


def _mapping(where: str, value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _err(where, f'expected a mapping, got {type(value).__name__}')
    return value


def _rgba(where: str, color: Any, rgba: Any) -> tuple[str, tuple[float, float, float, float]]:
    if not isinstance(color, str) or color.lower() not in PALETTE:
        raise _err(
            where + '.color', f'unknown colour {color!r} (known: {", ".join(sorted(PALETTE))})'
        )
    if rgba is None:
        return color.lower(), PALETTE[color.lower()]
    vals = _numbers(where + '.rgba', rgba, (3, 4))
    if any(not 0.0 <= v <= 1.0 for v in vals):
        raise _err(where + '.rgba', f'components must be in [0, 1], got {list(vals)}')
    return color.lower(), (*vals[:3], vals[3] if len(vals) == 4 else 1.0)


def _object(where: str, raw: Any, table: TableSpec) -> ObjectSpec:
    d = _mapping(where, raw)
    _check_keys(
        where,
        d,
        {'name', 'shape', 'color', 'rgba', 'size', 'position', 'yaw_deg', 'mass', 'words'},
    )
    name = d.get('name')
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _err(
            where + '.name', f'expected a name like red_cube ([a-z][a-z0-9_]*), got {name!r}'
        )
    where = f'{where} ({name})'
    shape = d.get('shape')
    if shape not in SHAPES:
        raise _err(where + '.shape', f'unknown shape {shape!r} (known: {", ".join(SHAPES)})')
    color, rgba = _rgba(where, d.get('color'), d.get('rgba'))
    if 'size' not in d:
        raise _err(where + '.size', 'missing')
    if shape == 'box':
        size = _numbers(where + '.size', d['size'], (1, 3))
        size = size * 3 if len(size) == 1 else size
    elif shape == 'sphere':
        size = _numbers(where + '.size', d['size'], (1,))
    else:
        size = _numbers(where + '.size', d['size'], (2,))
    _positive(where + '.size', size)
    half = half_extents(shape, size)
    if 'position' not in d:
        raise _err(where + '.position', 'missing')
    pos = _numbers(where + '.position', d['position'], (2, 3))
    if len(pos) == 2:
        pos = (pos[0], pos[1], float(half[2]))
    tx, ty = table.center
    sx, sy = table.size
    if not (tx - sx / 2 <= pos[0] <= tx + sx / 2 and ty - sy / 2 <= pos[1] <= ty + sy / 2):
        raise _err(where + '.position', f'{list(pos[:2])} is off the table')
    yaw = _numbers(where + '.yaw_deg', d.get('yaw_deg', 0.0), (1,))[0]
    mass = _positive(
        where + '.mass', _numbers(where + '.mass', d.get('mass', DEFAULT_MASS[shape]), (1,))
    )[0]
    words = d.get('words', [])
    if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
        raise _err(where + '.words', f'expected a list of words, got {words!r}')
    return ObjectSpec(
        name=name,
        shape=shape,
        color=color,
        rgba=rgba,
        size=size,
        position=pos,
        yaw_deg=yaw,
        mass=mass,
        words=tuple(w.strip().lower() for w in words),
    )


def _camera(raw: Any) -> CameraSpec:
    where = 'camera'
    d = _mapping(where, raw)
    _check_keys(
        where,
        d,
        {'frame_id', 'width', 'height', 'fovy_deg', 'position', 'quat_xyzw', 'depth_max'},
    )
    base = CameraSpec()
    frame_id = d.get('frame_id', base.frame_id)
    if not isinstance(frame_id, str) or not frame_id:
        raise _err(where + '.frame_id', f'expected a frame name, got {frame_id!r}')
    size = []
    for key, default in (('width', base.width), ('height', base.height)):
        v = d.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not 16 <= v <= 4096:
            raise _err(f'{where}.{key}', f'expected an integer in [16, 4096], got {v!r}')
        size.append(v)
    fovy = _numbers(where + '.fovy_deg', d.get('fovy_deg', base.fovy_deg), (1,))[0]
    if not 1.0 <= fovy <= 170.0:
        raise _err(where + '.fovy_deg', f'expected 1..170 degrees, got {fovy}')
    if 'position' not in d or 'quat_xyzw' not in d:
        raise _err(where, 'position and quat_xyzw (the optical frame pose in the world) required')
    pos = _numbers(where + '.position', d['position'], (3,))
    q = np.asarray(_numbers(where + '.quat_xyzw', d['quat_xyzw'], (4,)))
    if abs(float(np.linalg.norm(q)) - 1.0) > 1e-3:
        raise _err(where + '.quat_xyzw', f'not a unit quaternion (norm {np.linalg.norm(q):.4f})')
    depth_max = _positive(
        where + '.depth_max', _numbers(where + '.depth_max', d.get('depth_max', 6.0), (1,))
    )[0]
    q = q / np.linalg.norm(q)
    return CameraSpec(
        frame_id=frame_id,
        width=size[0],
        height=size[1],
        fovy_deg=fovy,
        position=pos,  # type: ignore[arg-type]
        quat_xyzw=tuple(float(v) for v in q),  # type: ignore[arg-type]
        depth_max=depth_max,
    )


def _table(raw: Any) -> TableSpec:
    where = 'table'
    d = _mapping(where, raw)
    _check_keys(where, d, {'center', 'size', 'thickness', 'height', 'color'})
    base = TableSpec()
    center = _numbers(where + '.center', d.get('center', base.center), (2,))
    size = _positive(where + '.size', _numbers(where + '.size', d.get('size', base.size), (2,)))
    thick = _positive(
        where + '.thickness', _numbers(where + '.thickness', d.get('thickness', 0.04), (1,))
    )[0]
    height = _positive(where + '.height', _numbers(where + '.height', d.get('height', 0.75), (1,)))
    _, rgba = _rgba(where, d.get('color', 'wood'), None)
    return TableSpec(center, size, thick, height[0], rgba)  # type: ignore[arg-type]


def _robot(raw: Any) -> RobotSpec:
    where = 'robot'
    d = _mapping(where, raw)
    _check_keys(where, d, {'home', 'tcp_offset', 'grasp_radius'})
    base = RobotSpec()
    home = _numbers(where + '.home', d.get('home', list(base.home)), (6,))
    tcp = _numbers(where + '.tcp_offset', d.get('tcp_offset', base.tcp_offset), (1,))[0]
    if not 0.0 <= tcp <= 0.5:
        raise _err(where + '.tcp_offset', f'expected 0..0.5 m, got {tcp}')
    radius = _numbers(where + '.grasp_radius', d.get('grasp_radius', base.grasp_radius), (1,))[0]
    if not 0.0 < radius <= 0.2:
        raise _err(where + '.grasp_radius', f'expected (0, 0.2] m, got {radius}')
    return RobotSpec(home, tcp, radius)


def parse_scene(data: Any, source: str = '<memory>') -> Ur5Scene:
    """Validate a scene given as parsed YAML.

    Args:
        data: the mapping loaded from a scene file.
        source: where it came from (used in error messages).

    Returns:
        The validated :class:`Ur5Scene`.

    Raises:
        SceneError: anything invalid; the message starts with ``source`` and names the field.

    """
    try:
        d = _mapping('scene', data)
        _check_keys(
            'scene', d, {'world_frame', 'base_frame', 'robot', 'table', 'camera', 'objects'}
        )
        table = _table(d.get('table'))
        raw_objects = d.get('objects')
        if not isinstance(raw_objects, list) or not raw_objects:
            raise _err('objects', 'expected a non-empty list of objects')
        objects = [_object(f'objects[{i}]', o, table) for i, o in enumerate(raw_objects)]
        seen: set[str] = set()
        for i, o in enumerate(objects):
            if o.name in seen:
                raise _err(f'objects[{i}].name', f'duplicate object name {o.name!r}')
            seen.add(o.name)
        frames = {}
        for key, default in (('world_frame', 'world'), ('base_frame', 'base_link')):
            v = d.get(key, default)
            if not isinstance(v, str) or not v:
                raise _err(key, f'expected a frame name, got {v!r}')
            frames[key] = v
        return Ur5Scene(
            objects=tuple(objects),
            camera=_camera(d.get('camera')),
            table=table,
            robot=_robot(d.get('robot')),
            source=source,
            **frames,
        )
    except SceneError as exc:
        raise SceneError(f'{source}: {exc}') from None


def load_scene(path: str | Path) -> Ur5Scene:
    """Load and validate a scene YAML file.

    Args:
        path: the file.

    Returns:
        The validated scene.

    Raises:
        SceneError: the file is missing, is not YAML, or is invalid (the message says which
            field and why).

    """
    p = Path(path)
    if not p.is_file():
        raise SceneError(f'{p}: scene file not found')
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise SceneError(f'{p}: not valid YAML: {exc}') from None
    return parse_scene(data, source=str(p))


def default_scene_path(name: str = 'ur5_tabletop.yaml') -> Path:
    """Locate a scene file shipped with the workspace (``config/scenes/<name>``).

    Looks in ``$ROBOTRACER_WS/config/scenes``, then in the ``config/scenes`` of the source
    tree this module lives in, then in ``share/robotracer_sim/config/scenes`` of the
    ament prefixes.

    Args:
        name: the file name.

    Returns:
        The path of the first match.

    Raises:
        SceneError: none found (the message lists where it looked).

    """
    import os

    tried: list[Path] = []
    ws = os.environ.get('ROBOTRACER_WS')
    if ws:
        tried.append(Path(ws) / 'config' / 'scenes' / name)
    for parent in Path(__file__).resolve().parents:
        tried.append(parent / 'config' / 'scenes' / name)
    for prefix in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        if prefix:
            tried.append(Path(prefix) / 'share' / 'robotracer_sim' / 'config' / 'scenes' / name)
    for p in tried:
        if p.is_file():
            return p
    raise SceneError(f'scene {name!r} not found (looked in {", ".join(str(p) for p in tried)})')
