"""The G1 room scene file (``config/scenes/g1_room.yaml``): schema, loader and validation.

A scene file declares the room, its tables, the named objects on them, the robot's start
stance, the head camera and the grasp model's thresholds. Every mistake is reported as a
:class:`~robotracer_sim.ur5.scene.SceneError` naming the file and the field
(``objects[1] (plate).position: [3.0, 0.0] is on no table (tables: near_table, far_table)``).

Schema (lengths in metres, angles in degrees; the world frame is the odometry frame)::

    world_frame: odom               # frame of object poses and of the base odometry
    room: {size: [6.0, 5.0], wall_height: 1.2, center: [0.8, 0.0]}
    robot:
      start: [0.0, 0.0, 0.0]        # x, y, yaw_deg of the pelvis in world_frame
      grasp_distance: 0.05          # hand grasps an object whose surface is this close
      close_threshold: 0.5          # commanded finger closure (0 open .. 1 closed) to grasp
      open_threshold: 0.3           # ... and to release
    camera:                         # the head D435 (on d435_link), RGB-D aligned to colour
      width: 640
      height: 480
      fovy_deg: 58.0
      depth_max: 6.0                # farther = "no return" (0)
    tables:
      - name: near_table            # [a-z][a-z0-9_]*, unique among tables and objects
        center: [0.55, 0.0]         # x, y of the top's centre
        size: [0.6, 1.0]            # x, y extent of the top
        height: 0.72                # top surface height above the floor
        color: wood
    objects:                        # same fields as the UR5 scene's objects, plus ``table``
      - name: red_cup
        shape: cup                  # box | cylinder | sphere | cup | bowl | plate
        color: red
        size: [0.035, 0.09]
        position: [0.42, 0.12]      # x, y: resting on the table under it; or x, y, z (centre)
        words: [mug]

Objects become :class:`~robotracer_sim.ur5.scene.ObjectSpec` (the type the oracle reads), with
``position`` the centre of the bounding box in the world frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from pathlib import Path
import re
from typing import Any

import yaml

from robotracer_sim.ur5.scene import (
    DEFAULT_MASS,
    PALETTE,
    SHAPES,
    ObjectSpec,
    SceneError,
    half_extents,
)

_NAME_RE = re.compile(r'^[a-z][a-z0-9_]*$')


@dataclass(frozen=True)
class TableSpec:
    """A table: a box top on four legs standing on the floor.

    Attributes:
        name: unique identifier (``far_table``).
        center: x, y of the top's centre in the world, metres.
        size: x, y extent of the top, metres.
        height: height of the top surface above the floor, metres.
        thickness: top thickness, metres.
        color: palette name.
        rgba: render colour.

    """

    name: str
    center: tuple[float, float]
    size: tuple[float, float]
    height: float
    thickness: float = 0.04
    color: str = 'wood'
    rgba: tuple[float, float, float, float] = PALETTE['wood']

    def contains(self, x: float, y: float, margin: float = 0.0) -> bool:
        """Whether ``(x, y)`` lies over the top (shrunk by ``margin`` on every side)."""
        return (
            abs(x - self.center[0]) <= self.size[0] / 2 - margin
            and abs(y - self.center[1]) <= self.size[1] / 2 - margin
        )


@dataclass(frozen=True)
class RoomSpec:
    """The room: floor and four walls around ``center``."""

    size: tuple[float, float] = (6.0, 5.0)
    center: tuple[float, float] = (0.8, 0.0)
    wall_height: float = 1.2


@dataclass(frozen=True)
class G1RobotSpec:
    """The robot's start stance and the grasp model's parameters."""

    start: tuple[float, float, float] = (0.0, 0.0, 0.0)  # x, y, yaw_deg
    grasp_distance: float = 0.05
    close_threshold: float = 0.5
    open_threshold: float = 0.3


@dataclass(frozen=True)
class HeadCameraSpec:
    """The head RGB-D camera's image size, vertical FOV and depth range."""

    width: int = 640
    height: int = 480
    fovy_deg: float = 58.0
    depth_max: float = 6.0


@dataclass(frozen=True)
class G1Scene:
    """A whole G1 scene file, validated."""

    tables: tuple[TableSpec, ...]
    objects: tuple[ObjectSpec, ...]
    room: RoomSpec = field(default_factory=RoomSpec)
    robot: G1RobotSpec = field(default_factory=G1RobotSpec)
    camera: HeadCameraSpec = field(default_factory=HeadCameraSpec)
    world_frame: str = 'odom'
    source: str = '<memory>'

    @property
    def names(self) -> tuple[str, ...]:
        """Object names in file order."""
        return tuple(o.name for o in self.objects)

    def object(self, name: str) -> ObjectSpec:
        """Return the object called ``name``.

        Raises:
            KeyError: no such object (the message lists the known ones).

        """
        for o in self.objects:
            if o.name == name:
                return o
        raise KeyError(f'unknown object {name!r} (known: {", ".join(self.names)})')

    def table(self, name: str) -> TableSpec:
        """Return the table called ``name``.

        Raises:
            KeyError: no such table (the message lists the known ones).

        """
        for t in self.tables:
            if t.name == name:
                return t
        known = ', '.join(t.name for t in self.tables)
        raise KeyError(f'unknown table {name!r} (known: {known})')


# --------------------------------------------------------------------------- validation


def _err(where: str, msg: str) -> SceneError:
    return SceneError(f'{where}: {msg}')


def _mapping(where: str, value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _err(where, f'expected a mapping, got {type(value).__name__}')
    return value


def _keys(where: str, d: dict, allowed: set[str]) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise _err(where, f'unknown key(s) {unknown} (allowed: {sorted(allowed)})')


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


def _number(where: str, value: Any, lo: float, hi: float) -> float:
    v = _numbers(where, value, (1,))[0]
    if not lo <= v <= hi:
        raise _err(where, f'expected a value in [{lo}, {hi}], got {v}')
    return v


def _color(where: str, value: Any) -> tuple[str, tuple[float, float, float, float]]:
    if not isinstance(value, str) or value.lower() not in PALETTE:
        raise _err(where, f'unknown colour {value!r} (known: {", ".join(sorted(PALETTE))})')
    return value.lower(), PALETTE[value.lower()]


def _name(where: str, value: Any) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise _err(where, f'expected a name like red_cup ([a-z][a-z0-9_]*), got {value!r}')
    return value


def _table(where: str, raw: Any) -> TableSpec:
    d = _mapping(where, raw)
    _keys(where, d, {'name', 'center', 'size', 'height', 'thickness', 'color'})
    name = _name(where + '.name', d.get('name'))
    where = f'{where} ({name})'
    for key in ('center', 'size', 'height'):
        if key not in d:
            raise _err(f'{where}.{key}', 'missing')
    center = _numbers(where + '.center', d['center'], (2,))
    size = _numbers(where + '.size', d['size'], (2,))
    if any(not 0.1 <= s <= 5.0 for s in size):
        raise _err(where + '.size', f'expected sizes in [0.1, 5] m, got {list(size)}')
    height = _number(where + '.height', d['height'], 0.2, 1.5)
    thickness = _number(where + '.thickness', d.get('thickness', 0.04), 0.01, 0.2)
    color, rgba = _color(where + '.color', d.get('color', 'wood'))
    return TableSpec(name, center, size, height, thickness, color, rgba)  # type: ignore[arg-type]


def _object(where: str, raw: Any, tables: tuple[TableSpec, ...]) -> ObjectSpec:
    d = _mapping(where, raw)
    _keys(
        where,
        d,
        {
            'name',
            'shape',
            'color',
            'rgba',
            'size',
            'position',
            'yaw_deg',
            'mass',
            'words',
            'table',
        },
    )
    name = _name(where + '.name', d.get('name'))
    where = f'{where} ({name})'
    shape = d.get('shape')
    if shape not in SHAPES:
        raise _err(where + '.shape', f'unknown shape {shape!r} (known: {", ".join(SHAPES)})')
    color, rgba = _color(where + '.color', d.get('color'))
    if d.get('rgba') is not None:
        vals = _numbers(where + '.rgba', d['rgba'], (3, 4))
        if any(not 0.0 <= v <= 1.0 for v in vals):
            raise _err(where + '.rgba', f'components must be in [0, 1], got {list(vals)}')
        rgba = (*vals[:3], vals[3] if len(vals) == 4 else 1.0)  # type: ignore[assignment]
    if 'size' not in d:
        raise _err(where + '.size', 'missing')
    if shape == 'box':
        size = _numbers(where + '.size', d['size'], (1, 3))
        size = size * 3 if len(size) == 1 else size
    elif shape == 'sphere':
        size = _numbers(where + '.size', d['size'], (1,))
    else:
        size = _numbers(where + '.size', d['size'], (2,))
    if any(not 0.0 < s <= 1.0 for s in size):
        raise _err(where + '.size', f'expected sizes in (0, 1] m, got {list(size)}')
    half = half_extents(shape, size)
    if 'position' not in d:
        raise _err(where + '.position', 'missing')
    pos = _numbers(where + '.position', d['position'], (2, 3))
    if 'table' in d:
        want = _name(where + '.table', d['table'])
        under = [t for t in tables if t.name == want]
        if not under:
            known = ', '.join(t.name for t in tables)
            raise _err(where + '.table', f'unknown table {want!r} (known: {known})')
    else:
        under = [t for t in tables if t.contains(pos[0], pos[1])]
    if len(pos) == 2:
        if not under or not under[0].contains(pos[0], pos[1]):
            known = ', '.join(t.name for t in tables)
            where_on = f'table {under[0].name}' if under else f'any table (tables: {known})'
            raise _err(where + '.position', f'{list(pos)} is not on {where_on}')
        pos = (pos[0], pos[1], under[0].height + float(half[2]))
    yaw = _numbers(where + '.yaw_deg', d.get('yaw_deg', 0.0), (1,))[0]
    mass = _number(where + '.mass', d.get('mass', DEFAULT_MASS[shape]), 0.001, 5.0)
    words = d.get('words', [])
    if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
        raise _err(where + '.words', f'expected a list of words, got {words!r}')
    return ObjectSpec(
        name=name,
        shape=shape,
        color=color,
        rgba=rgba,
        size=size,
        position=pos,  # type: ignore[arg-type]
        yaw_deg=yaw,
        mass=mass,
        words=tuple(w.strip().lower() for w in words),
    )


def _robot(raw: Any) -> G1RobotSpec:
    where = 'robot'
    d = _mapping(where, raw)
    _keys(where, d, {'start', 'grasp_distance', 'close_threshold', 'open_threshold'})
    base = G1RobotSpec()
    start = _numbers(where + '.start', d.get('start', list(base.start)), (3,))
    dist = _number(
        where + '.grasp_distance', d.get('grasp_distance', base.grasp_distance), 0.0, 0.2
    )
    close = _number(
        where + '.close_threshold', d.get('close_threshold', base.close_threshold), 0.05, 1.0
    )
    open_ = _number(where + '.open_threshold', d.get('open_threshold', base.open_threshold), 0, 1)
    if open_ >= close:
        raise _err(
            where + '.open_threshold',
            f'must be below close_threshold ({close}) so grasp and release differ, got {open_}',
        )
    return G1RobotSpec(start, dist, close, open_)  # type: ignore[arg-type]


def _camera(raw: Any) -> HeadCameraSpec:
    where = 'camera'
    d = _mapping(where, raw)
    _keys(where, d, {'width', 'height', 'fovy_deg', 'depth_max'})
    base = HeadCameraSpec()
    size = []
    for key, default in (('width', base.width), ('height', base.height)):
        v = d.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not 16 <= v <= 4096:
            raise _err(f'{where}.{key}', f'expected an integer in [16, 4096], got {v!r}')
        size.append(v)
    fovy = _number(where + '.fovy_deg', d.get('fovy_deg', base.fovy_deg), 1.0, 170.0)
    depth_max = _number(where + '.depth_max', d.get('depth_max', base.depth_max), 0.1, 100.0)
    return HeadCameraSpec(size[0], size[1], fovy, depth_max)


def _room(raw: Any) -> RoomSpec:
    where = 'room'
    d = _mapping(where, raw)
    _keys(where, d, {'size', 'center', 'wall_height'})
    base = RoomSpec()
    size = _numbers(where + '.size', d.get('size', list(base.size)), (2,))
    if any(not 1.0 <= s <= 50.0 for s in size):
        raise _err(where + '.size', f'expected sizes in [1, 50] m, got {list(size)}')
    center = _numbers(where + '.center', d.get('center', list(base.center)), (2,))
    wall_h = _number(where + '.wall_height', d.get('wall_height', base.wall_height), 0.0, 5.0)
    return RoomSpec(size, center, wall_h)  # type: ignore[arg-type]


def parse_g1_scene(data: Any, source: str = '<memory>') -> G1Scene:
    """Validate a G1 scene given as parsed YAML.

    Args:
        data: the mapping loaded from a scene file.
        source: where it came from (used in error messages).

    Returns:
        The validated :class:`G1Scene`.

    Raises:
        SceneError: anything invalid; the message starts with ``source`` and names the field.

    """
    try:
        d = _mapping('scene', data)
        _keys('scene', d, {'world_frame', 'room', 'robot', 'camera', 'tables', 'objects'})
        raw_tables = d.get('tables')
        if not isinstance(raw_tables, list) or not raw_tables:
            raise _err('tables', 'expected a non-empty list of tables')
        tables = tuple(_table(f'tables[{i}]', t) for i, t in enumerate(raw_tables))
        raw_objects = d.get('objects')
        if not isinstance(raw_objects, list) or not raw_objects:
            raise _err('objects', 'expected a non-empty list of objects')
        objects = tuple(_object(f'objects[{i}]', o, tables) for i, o in enumerate(raw_objects))
        seen: set[str] = set()
        for kind, items in (('tables', tables), ('objects', objects)):
            for i, item in enumerate(items):
                if item.name in seen:
                    raise _err(f'{kind}[{i}].name', f'duplicate name {item.name!r}')
                seen.add(item.name)
        frame = d.get('world_frame', 'odom')
        if not isinstance(frame, str) or not frame:
            raise _err('world_frame', f'expected a frame name, got {frame!r}')
        return G1Scene(
            tables=tables,
            objects=objects,
            room=_room(d.get('room')),
            robot=_robot(d.get('robot')),
            camera=_camera(d.get('camera')),
            world_frame=frame,
            source=source,
        )
    except SceneError as exc:
        raise SceneError(f'{source}: {exc}') from None


def load_g1_scene(path: str | Path) -> G1Scene:
    """Load and validate a G1 scene YAML file.

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
    return parse_g1_scene(data, source=str(p))
