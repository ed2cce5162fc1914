"""What every scene file shares: the object schema, the palette, and the field validators.

The UR5 tabletop (:mod:`robotracer_sim.ur5.scene`) and the G1 room (:mod:`robotracer_sim.g1.scene`)
declare their own layout (table, room, camera, robot) but the same kind of named objects
(:class:`ObjectSpec`, the type the oracle reads) and report every mistake as a
:class:`SceneError` naming the file and the field (``objects[2] (cube).shape: unknown shape
'pyramid' (known: box, ...)``). The validators here build those messages: each takes ``where``
(the field's path, e.g. ``objects[2] (cube).size``) and raises :class:`SceneError` with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
import math
import os
from pathlib import Path
import re
from typing import Any, Protocol, TypeVar

import numpy as np
import yaml

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

#: Keys an object entry may have in every scene file (a world may allow more).
OBJECT_KEYS = frozenset(
    {'name', 'shape', 'color', 'rgba', 'size', 'position', 'yaw_deg', 'mass', 'words'}
)

NAME_RE = re.compile(r'^[a-z][a-z0-9_]*$')

T = TypeVar('T')


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


class _Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar('N', bound=_Named)


def find_by_name(items: Sequence[N], name: str, kind: str) -> N:
    """Return the item of ``items`` called ``name``.

    Args:
        items: named things (objects, tables).
        name: the one wanted.
        kind: what they are, for the message (``object``, ``table``).

    Returns:
        The first item with that name.

    Raises:
        KeyError: none has that name (the message lists the known ones).

    """
    for item in items:
        if item.name == name:
            return item
    known = ', '.join(i.name for i in items)
    raise KeyError(f'unknown {kind} {name!r} (known: {known})')


class NamedObjects:
    """Lookup of a scene's objects by name (for scene dataclasses with an ``objects`` field)."""

    objects: tuple[ObjectSpec, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Object names in file order."""
        return tuple(o.name for o in self.objects)

    def object(self, name: str) -> ObjectSpec:
        """Return the object called ``name``.

        Raises:
            KeyError: no such object (the message lists the known ones).

        """
        return find_by_name(self.objects, name, 'object')


# --------------------------------------------------------------------------- field validators


def field_error(where: str, msg: str) -> SceneError:
    """The error for field ``where``: ``SceneError('<where>: <msg>')``."""
    return SceneError(f'{where}: {msg}')


def mapping(where: str, value: Any) -> dict:
    """Return ``value`` as a mapping (``None`` is an empty one).

    Raises:
        SceneError: ``value`` is not a mapping.

    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise field_error(where, f'expected a mapping, got {type(value).__name__}')
    return value


def check_keys(where: str, d: dict, allowed: set[str] | frozenset[str]) -> None:
    """Refuse keys of ``d`` that are not in ``allowed``.

    Raises:
        SceneError: unknown keys (the message lists them and the allowed ones).

    """
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise field_error(where, f'unknown key(s) {unknown} (allowed: {sorted(allowed)})')


def numbers(where: str, value: Any, lengths: tuple[int, ...]) -> tuple[float, ...]:
    """Return ``value`` (a number or a list of numbers) as a tuple of finite floats.

    Args:
        where: the field.
        value: the raw value.
        lengths: the accepted list lengths (a single number counts as a list of one).

    Returns:
        The numbers.

    Raises:
        SceneError: a wrong length, or a value that is not a finite number.

    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or len(value) not in lengths:
        want = ' or '.join(str(n) for n in lengths)
        raise field_error(where, f'expected a list of {want} numbers, got {value!r}')
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise field_error(where, f'expected finite numbers, got {value!r}')
        out.append(float(v))
    return tuple(out)


def number_in(where: str, value: Any, lo: float, hi: float) -> float:
    """Return ``value`` as one float in ``[lo, hi]``.

    Raises:
        SceneError: not one finite number, or out of range.

    """
    v = numbers(where, value, (1,))[0]
    if not lo <= v <= hi:
        raise field_error(where, f'expected a value in [{lo}, {hi}], got {v}')
    return v


def positive(where: str, values: tuple[float, ...]) -> tuple[float, ...]:
    """Return ``values`` when all are > 0.

    Raises:
        SceneError: one is not.

    """
    if any(v <= 0 for v in values):
        raise field_error(where, f'sizes must be > 0, got {list(values)}')
    return values


def color_rgba(
    where: str, color: Any, rgba: Any = None
) -> tuple[str, tuple[float, float, float, float]]:
    """Validate a palette colour name and an optional explicit RGB(A) override.

    Args:
        where: the entry (the fields are ``<where>.color`` and ``<where>.rgba``).
        color: a :data:`PALETTE` name.
        rgba: None (the palette's colour), or 3 or 4 components in [0, 1].

    Returns:
        The lower-case colour name and the render colour.

    Raises:
        SceneError: unknown colour or invalid components.

    """
    if not isinstance(color, str) or color.lower() not in PALETTE:
        raise field_error(
            where + '.color', f'unknown colour {color!r} (known: {", ".join(sorted(PALETTE))})'
        )
    if rgba is None:
        return color.lower(), PALETTE[color.lower()]
    vals = numbers(where + '.rgba', rgba, (3, 4))
    if any(not 0.0 <= v <= 1.0 for v in vals):
        raise field_error(where + '.rgba', f'components must be in [0, 1], got {list(vals)}')
    return color.lower(), (*vals[:3], vals[3] if len(vals) == 4 else 1.0)


def entity_name(where: str, value: Any, example: str) -> str:
    """Validate an object or table name (``[a-z][a-z0-9_]*``).

    Args:
        where: the field.
        value: the raw value.
        example: a valid name to show in the message (``red_cube``).

    Returns:
        The name.

    Raises:
        SceneError: not such a name.

    """
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise field_error(
            where, f'expected a name like {example} ([a-z][a-z0-9_]*), got {value!r}'
        )
    return value


def frame_name(d: dict, key: str, default: str) -> str:
    """Return the frame id under ``key`` of the top-level mapping ``d`` (``default`` if absent).

    Raises:
        SceneError: not a non-empty string.

    """
    v = d.get(key, default)
    if not isinstance(v, str) or not v:
        raise field_error(key, f'expected a frame name, got {v!r}')
    return v


def non_empty_list(where: str, value: Any, what: str) -> list:
    """Return ``value`` when it is a non-empty list.

    Raises:
        SceneError: it is not (``expected a non-empty list of <what>``).

    """
    if not isinstance(value, list) or not value:
        raise field_error(where, f'expected a non-empty list of {what}')
    return value


def image_size(where: str, d: dict, width: int, height: int) -> tuple[int, int]:
    """Validate a camera's ``width`` and ``height`` (integers in [16, 4096]).

    Args:
        where: the camera entry.
        d: its mapping.
        width: default width.
        height: default height.

    Returns:
        ``(width, height)`` in pixels.

    Raises:
        SceneError: one is not an integer in range.

    """
    size = []
    for key, default in (('width', width), ('height', height)):
        v = d.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not 16 <= v <= 4096:
            raise field_error(f'{where}.{key}', f'expected an integer in [16, 4096], got {v!r}')
        size.append(v)
    return size[0], size[1]


# --------------------------------------------------------------------------- object fields


def _object_shape(where: str, d: dict) -> str:
    """Validate an object's ``shape`` (one of :data:`SHAPES`).

    Raises:
        SceneError: unknown shape.

    """
    shape = d.get('shape')
    if shape not in SHAPES:
        raise field_error(
            where + '.shape', f'unknown shape {shape!r} (known: {", ".join(SHAPES)})'
        )
    return shape


def _object_size(where: str, d: dict, shape: str) -> tuple[float, ...]:
    """Parse an object's ``size`` for its shape (range checks are the world's).

    A box takes ``[x, y, z]`` full sizes or one number (a cube); a sphere ``[radius]``; the
    other shapes ``[radius, height]``.

    Raises:
        SceneError: missing, or the wrong count of numbers for the shape.

    """
    if 'size' not in d:
        raise field_error(where + '.size', 'missing')
    if shape == 'box':
        size = numbers(where + '.size', d['size'], (1, 3))
        return size * 3 if len(size) == 1 else size
    if shape == 'sphere':
        return numbers(where + '.size', d['size'], (1,))
    return numbers(where + '.size', d['size'], (2,))


def _object_position(where: str, d: dict) -> tuple[float, ...]:
    """Parse an object's ``position``: ``[x, y]`` (resting) or ``[x, y, z]`` (centre).

    Raises:
        SceneError: missing or not 2 or 3 numbers.

    """
    if 'position' not in d:
        raise field_error(where + '.position', 'missing')
    return numbers(where + '.position', d['position'], (2, 3))


def _object_yaw(where: str, d: dict) -> float:
    """Parse an object's optional ``yaw_deg`` (default 0).

    Raises:
        SceneError: not one finite number.

    """
    return numbers(where + '.yaw_deg', d.get('yaw_deg', 0.0), (1,))[0]


def _object_words(where: str, d: dict) -> tuple[str, ...]:
    """Parse an object's optional ``words`` (extra words the oracle accepts), lower-cased.

    Raises:
        SceneError: not a list of non-blank strings.

    """
    words = d.get('words', [])
    if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
        raise field_error(where + '.words', f'expected a list of words, got {words!r}')
    return tuple(w.strip().lower() for w in words)


def parse_object(
    where: str,
    raw: Any,
    *,
    name_example: str,
    check_size: Callable[[str, tuple[float, ...]], object],
    place: Callable[[str, dict, tuple[float, ...], np.ndarray], tuple[float, float, float]],
    parse_mass: Callable[[str, Any], float],
    extra_keys: frozenset[str] = frozenset(),
) -> ObjectSpec:
    """Validate one entry of a scene's ``objects`` list; the world supplies its own rules.

    The fields are checked in file-schema order (name, shape, colour, size, position, yaw,
    mass, words), so the first mistake is the one reported.

    Args:
        where: the entry (``objects[2]``); fields are reported as ``objects[2] (name).field``.
        raw: the entry as loaded.
        name_example: a valid name to show when the name is not one.
        check_size: ``check_size(field, size)`` raises :class:`SceneError` for a size out of
            the world's range.
        place: ``place(where, entry, position, half_extents)`` returns the object's centre
            from its ``[x, y]`` or ``[x, y, z]`` position (raises for a place it cannot be).
        parse_mass: ``parse_mass(field, value)`` returns the mass in kg (the value is the
            shape's default mass when the entry has none).
        extra_keys: keys the world allows besides :data:`OBJECT_KEYS`.

    Returns:
        The object.

    Raises:
        SceneError: anything invalid (the message names the field).

    """
    d = mapping(where, raw)
    check_keys(where, d, OBJECT_KEYS | extra_keys)
    name = entity_name(where + '.name', d.get('name'), name_example)
    where = f'{where} ({name})'
    shape = _object_shape(where, d)
    color, rgba = color_rgba(where, d.get('color'), d.get('rgba'))
    size = _object_size(where, d, shape)
    check_size(where + '.size', size)
    position = place(where, d, _object_position(where, d), half_extents(shape, size))
    yaw = _object_yaw(where, d)
    mass = parse_mass(where + '.mass', d.get('mass', DEFAULT_MASS[shape]))
    return ObjectSpec(
        name=name,
        shape=shape,
        color=color,
        rgba=rgba,
        size=size,
        position=position,
        yaw_deg=yaw,
        mass=mass,
        words=_object_words(where, d),
    )


def unique_names(kind: str, items: Sequence[_Named], seen: set[str], what: str = 'name') -> None:
    """Refuse a name already in ``seen`` (and add each name to it).

    Args:
        kind: the list's key (``objects``), for the message ``<kind>[i].name``.
        items: the list's entries, in file order.
        seen: names taken so far (updated).
        what: how the message calls the clash (``duplicate <what> 'x'``).

    Raises:
        SceneError: a duplicate.

    """
    for i, item in enumerate(items):
        if item.name in seen:
            raise field_error(f'{kind}[{i}].name', f'duplicate {what} {item.name!r}')
        seen.add(item.name)


# --------------------------------------------------------------------------- files


@contextmanager
def errors_from(source: str) -> Iterator[None]:
    """Prefix every :class:`SceneError` raised in the block with ``source`` (the file)."""
    try:
        yield
    except SceneError as exc:
        raise SceneError(f'{source}: {exc}') from None


def load_scene_file(path: str | Path, parse: Callable[[Any, str], T]) -> T:
    """Read a scene YAML file and validate it with ``parse(data, source)``.

    Args:
        path: the file.
        parse: the world's validator (``parse_scene``, ``parse_g1_scene``).

    Returns:
        What ``parse`` returns.

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
    return parse(data, str(p))


def scene_file_path(name: str) -> Path:
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
