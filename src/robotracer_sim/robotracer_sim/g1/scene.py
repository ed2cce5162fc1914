"""The G1 room scene file (``config/scenes/g1_room.yaml``): schema, loader and validation.

Design notes: docs/design-notes.md (robotracer_sim.g1.scene).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robotracer_sim.common.scene_schema import (
    PALETTE,
    NamedObjects,
    ObjectSpec,
    check_keys,
    color_rgba,
    entity_name,
    errors_from,
    field_error,
    find_by_name,
    frame_name,
    image_size,
    load_scene_file,
    mapping,
    non_empty_list,
    number_in,
    numbers,
    parse_object,
    unique_names,
)


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
class G1Scene(NamedObjects):
    """A whole G1 scene file, validated."""

    tables: tuple[TableSpec, ...]
    objects: tuple[ObjectSpec, ...]
    room: RoomSpec = field(default_factory=RoomSpec)
    robot: G1RobotSpec = field(default_factory=G1RobotSpec)
    camera: HeadCameraSpec = field(default_factory=HeadCameraSpec)
    world_frame: str = 'odom'
    source: str = '<memory>'

    def table(self, name: str) -> TableSpec:
        """Return the table called ``name``.

        Raises:
            KeyError: no such table (the message lists the known ones).

        """
        return find_by_name(self.tables, name, 'table')


# --------------------------------------------------------------------------- validation


def _table(where: str, raw: Any) -> TableSpec:
    d = mapping(where, raw)
    check_keys(where, d, {'name', 'center', 'size', 'height', 'thickness', 'color'})
    name = entity_name(where + '.name', d.get('name'), 'red_cup')
    where = f'{where} ({name})'
    for key in ('center', 'size', 'height'):
        if key not in d:
            raise field_error(f'{where}.{key}', 'missing')
    center = numbers(where + '.center', d['center'], (2,))
    size = numbers(where + '.size', d['size'], (2,))
    if any(not 0.1 <= s <= 5.0 for s in size):
        raise field_error(where + '.size', f'expected sizes in [0.1, 5] m, got {list(size)}')
    height = number_in(where + '.height', d['height'], 0.2, 1.5)
    thickness = number_in(where + '.thickness', d.get('thickness', 0.04), 0.01, 0.2)
    color, rgba = color_rgba(where, d.get('color', 'wood'))
    return TableSpec(name, center, size, height, thickness, color, rgba)  # type: ignore[arg-type]


def _object(where: str, raw: Any, tables: tuple[TableSpec, ...]) -> ObjectSpec:
    def check_size(field: str, size: tuple[float, ...]) -> None:
        if any(not 0.0 < s <= 1.0 for s in size):
            raise field_error(field, f'expected sizes in (0, 1] m, got {list(size)}')

    def on_a_table(
        where: str, d: dict, pos: tuple[float, ...], half: np.ndarray
    ) -> tuple[float, float, float]:
        if 'table' in d:
            want = entity_name(where + '.table', d['table'], 'red_cup')
            under = [t for t in tables if t.name == want]
            if not under:
                known = ', '.join(t.name for t in tables)
                raise field_error(where + '.table', f'unknown table {want!r} (known: {known})')
        else:
            under = [t for t in tables if t.contains(pos[0], pos[1])]
        if len(pos) == 2:
            if not under or not under[0].contains(pos[0], pos[1]):
                known = ', '.join(t.name for t in tables)
                where_on = f'table {under[0].name}' if under else f'any table (tables: {known})'
                raise field_error(where + '.position', f'{list(pos)} is not on {where_on}')
            pos = (pos[0], pos[1], under[0].height + float(half[2]))
        return pos  # type: ignore[return-value]

    return parse_object(
        where,
        raw,
        name_example='red_cup',
        check_size=check_size,
        place=on_a_table,
        parse_mass=lambda field, v: number_in(field, v, 0.001, 5.0),
        extra_keys=frozenset({'table'}),
    )


def _robot(raw: Any) -> G1RobotSpec:
    where = 'robot'
    d = mapping(where, raw)
    check_keys(where, d, {'start', 'grasp_distance', 'close_threshold', 'open_threshold'})
    base = G1RobotSpec()
    start = numbers(where + '.start', d.get('start', list(base.start)), (3,))
    dist = number_in(
        where + '.grasp_distance', d.get('grasp_distance', base.grasp_distance), 0.0, 0.2
    )
    close = number_in(
        where + '.close_threshold', d.get('close_threshold', base.close_threshold), 0.05, 1.0
    )
    open_ = number_in(
        where + '.open_threshold', d.get('open_threshold', base.open_threshold), 0, 1
    )
    if open_ >= close:
        raise field_error(
            where + '.open_threshold',
            f'must be below close_threshold ({close}) so grasp and release differ, got {open_}',
        )
    return G1RobotSpec(start, dist, close, open_)  # type: ignore[arg-type]


def _camera(raw: Any) -> HeadCameraSpec:
    where = 'camera'
    d = mapping(where, raw)
    check_keys(where, d, {'width', 'height', 'fovy_deg', 'depth_max'})
    base = HeadCameraSpec()
    width, height = image_size(where, d, base.width, base.height)
    fovy = number_in(where + '.fovy_deg', d.get('fovy_deg', base.fovy_deg), 1.0, 170.0)
    depth_max = number_in(where + '.depth_max', d.get('depth_max', base.depth_max), 0.1, 100.0)
    return HeadCameraSpec(width, height, fovy, depth_max)


def _room(raw: Any) -> RoomSpec:
    where = 'room'
    d = mapping(where, raw)
    check_keys(where, d, {'size', 'center', 'wall_height'})
    base = RoomSpec()
    size = numbers(where + '.size', d.get('size', list(base.size)), (2,))
    if any(not 1.0 <= s <= 50.0 for s in size):
        raise field_error(where + '.size', f'expected sizes in [1, 50] m, got {list(size)}')
    center = numbers(where + '.center', d.get('center', list(base.center)), (2,))
    wall_h = number_in(where + '.wall_height', d.get('wall_height', base.wall_height), 0.0, 5.0)
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
    with errors_from(source):
        d = mapping('scene', data)
        check_keys('scene', d, {'world_frame', 'room', 'robot', 'camera', 'tables', 'objects'})
        raw_tables = non_empty_list('tables', d.get('tables'), 'tables')
        tables = tuple(_table(f'tables[{i}]', t) for i, t in enumerate(raw_tables))
        raw_objects = non_empty_list('objects', d.get('objects'), 'objects')
        objects = tuple(_object(f'objects[{i}]', o, tables) for i, o in enumerate(raw_objects))
        seen: set[str] = set()
        unique_names('tables', tables, seen)
        unique_names('objects', objects, seen)
        frame = frame_name(d, 'world_frame', 'odom')
        return G1Scene(
            tables=tables,
            objects=objects,
            room=_room(d.get('room')),
            robot=_robot(d.get('robot')),
            camera=_camera(d.get('camera')),
            world_frame=frame,
            source=source,
        )


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
    return load_scene_file(path, parse_g1_scene)
