"""The UR5 tabletop scene file (``config/scenes/*.yaml``): schema, loader and validation.

Design notes: docs/design-notes.md (robotracer_sim.ur5.scene).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robotracer_sim.common.scene_schema import (
    CONTAINERS,
    DEFAULT_MASS,
    PALETTE,
    SHAPES,
    NamedObjects,
    ObjectSpec,
    SceneError,
    check_keys,
    color_rgba,
    errors_from,
    field_error,
    frame_name,
    half_extents,
    image_size,
    load_scene_file,
    mapping,
    non_empty_list,
    numbers,
    parse_object,
    positive,
    scene_file_path,
    unique_names,
)
from robotracer_sim.oracle.geometry import quat_xyzw_to_matrix

# The object schema is shared with the G1 room (robotracer_sim.common.scene_schema) and stays
# importable from here.
__all__ = [
    'CONTAINERS',
    'DEFAULT_MASS',
    'PALETTE',
    'SHAPES',
    'UR5_JOINTS',
    'CameraSpec',
    'ObjectSpec',
    'RobotSpec',
    'SceneError',
    'TableSpec',
    'Ur5Scene',
    'default_scene_path',
    'half_extents',
    'load_scene',
    'parse_scene',
]

UR5_JOINTS = (
    'shoulder_pan_joint',
    'shoulder_lift_joint',
    'elbow_joint',
    'wrist_1_joint',
    'wrist_2_joint',
    'wrist_3_joint',
)


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
class Ur5Scene(NamedObjects):
    """A whole scene file, validated."""

    objects: tuple[ObjectSpec, ...]
    camera: CameraSpec = field(default_factory=CameraSpec)
    table: TableSpec = field(default_factory=TableSpec)
    robot: RobotSpec = field(default_factory=RobotSpec)
    world_frame: str = 'world'
    base_frame: str = 'base_link'
    source: str = '<memory>'


# --------------------------------------------------------------------------- validation


def _object(where: str, raw: Any, table: TableSpec) -> ObjectSpec:
    def on_table(
        where: str, d: dict, pos: tuple[float, ...], half: np.ndarray
    ) -> tuple[float, float, float]:
        if len(pos) == 2:
            pos = (pos[0], pos[1], float(half[2]))
        tx, ty = table.center
        sx, sy = table.size
        if not (tx - sx / 2 <= pos[0] <= tx + sx / 2 and ty - sy / 2 <= pos[1] <= ty + sy / 2):
            raise field_error(where + '.position', f'{list(pos[:2])} is off the table')
        return pos  # type: ignore[return-value]

    return parse_object(
        where,
        raw,
        name_example='red_cube',
        check_size=positive,
        place=on_table,
        parse_mass=lambda field, v: positive(field, numbers(field, v, (1,)))[0],
    )


def _camera(raw: Any) -> CameraSpec:
    where = 'camera'
    d = mapping(where, raw)
    check_keys(
        where,
        d,
        {'frame_id', 'width', 'height', 'fovy_deg', 'position', 'quat_xyzw', 'depth_max'},
    )
    base = CameraSpec()
    frame_id = d.get('frame_id', base.frame_id)
    if not isinstance(frame_id, str) or not frame_id:
        raise field_error(where + '.frame_id', f'expected a frame name, got {frame_id!r}')
    width, height = image_size(where, d, base.width, base.height)
    fovy = numbers(where + '.fovy_deg', d.get('fovy_deg', base.fovy_deg), (1,))[0]
    if not 1.0 <= fovy <= 170.0:
        raise field_error(where + '.fovy_deg', f'expected 1..170 degrees, got {fovy}')
    if 'position' not in d or 'quat_xyzw' not in d:
        raise field_error(
            where, 'position and quat_xyzw (the optical frame pose in the world) required'
        )
    pos = numbers(where + '.position', d['position'], (3,))
    q = np.asarray(numbers(where + '.quat_xyzw', d['quat_xyzw'], (4,)))
    if abs(float(np.linalg.norm(q)) - 1.0) > 1e-3:
        raise field_error(
            where + '.quat_xyzw', f'not a unit quaternion (norm {np.linalg.norm(q):.4f})'
        )
    depth_max = positive(
        where + '.depth_max', numbers(where + '.depth_max', d.get('depth_max', 6.0), (1,))
    )[0]
    q = q / np.linalg.norm(q)
    return CameraSpec(
        frame_id=frame_id,
        width=width,
        height=height,
        fovy_deg=fovy,
        position=pos,  # type: ignore[arg-type]
        quat_xyzw=tuple(float(v) for v in q),  # type: ignore[arg-type]
        depth_max=depth_max,
    )


def _table(raw: Any) -> TableSpec:
    where = 'table'
    d = mapping(where, raw)
    check_keys(where, d, {'center', 'size', 'thickness', 'height', 'color'})
    base = TableSpec()
    center = numbers(where + '.center', d.get('center', base.center), (2,))
    size = positive(where + '.size', numbers(where + '.size', d.get('size', base.size), (2,)))
    thick = positive(
        where + '.thickness', numbers(where + '.thickness', d.get('thickness', 0.04), (1,))
    )[0]
    height = positive(where + '.height', numbers(where + '.height', d.get('height', 0.75), (1,)))
    _, rgba = color_rgba(where, d.get('color', 'wood'))
    return TableSpec(center, size, thick, height[0], rgba)  # type: ignore[arg-type]


def _robot(raw: Any) -> RobotSpec:
    where = 'robot'
    d = mapping(where, raw)
    check_keys(where, d, {'home', 'tcp_offset', 'grasp_radius'})
    base = RobotSpec()
    home = numbers(where + '.home', d.get('home', list(base.home)), (6,))
    tcp = numbers(where + '.tcp_offset', d.get('tcp_offset', base.tcp_offset), (1,))[0]
    if not 0.0 <= tcp <= 0.5:
        raise field_error(where + '.tcp_offset', f'expected 0..0.5 m, got {tcp}')
    radius = numbers(where + '.grasp_radius', d.get('grasp_radius', base.grasp_radius), (1,))[0]
    if not 0.0 < radius <= 0.2:
        raise field_error(where + '.grasp_radius', f'expected (0, 0.2] m, got {radius}')
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
    with errors_from(source):
        d = mapping('scene', data)
        check_keys(
            'scene', d, {'world_frame', 'base_frame', 'robot', 'table', 'camera', 'objects'}
        )
        table = _table(d.get('table'))
        raw_objects = non_empty_list('objects', d.get('objects'), 'objects')
        objects = [_object(f'objects[{i}]', o, table) for i, o in enumerate(raw_objects)]
        unique_names('objects', objects, set(), 'object name')
        world_frame = frame_name(d, 'world_frame', 'world')
        base_frame = frame_name(d, 'base_frame', 'base_link')
        return Ur5Scene(
            objects=tuple(objects),
            camera=_camera(d.get('camera')),
            table=table,
            robot=_robot(d.get('robot')),
            world_frame=world_frame,
            base_frame=base_frame,
            source=source,
        )


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
    return load_scene_file(path, parse_scene)


def default_scene_path(name: str = 'ur5_tabletop.yaml') -> Path:
    """Path of the shipped scene file ``name`` (``config/scenes/``), the UR5 tabletop by default.

    Raises:
        SceneError: none found (see :func:`~robotracer_sim.common.scene_schema.scene_file_path`
            for where it looks).

    """
    return scene_file_path(name)
