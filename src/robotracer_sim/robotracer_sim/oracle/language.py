"""The oracle's instruction language: a small, documented grammar over object names and colours.

Design notes: docs/design-notes.md (robotracer_sim.oracle.language).
"""

from __future__ import annotations

from dataclasses import dataclass
import re

from robotracer_sim.oracle.scene import SceneObject

RELATIONS = ('on', 'in', 'left_of', 'right_of', 'in_front_of', 'behind', 'next_to')
DIRECTIONS = ('left', 'right', 'forward', 'backward', 'up')
DEFAULT_DISTANCE = 0.10

_CARRY = r'(?:put|place|move|set|drop|stack|bring|carry|transfer|take)'
_SLIDE = r'(?:push|slide|nudge|shift|drag)'
_LIFT = r'(?:pick\s+up|lift\s+up|lift|raise)'
_RELATION_WORDS: list[tuple[str, str]] = [
    (r'to\s+the\s+left\s+(?:side\s+)?of|on\s+the\s+left\s+of|left\s+of', 'left_of'),
    (r'to\s+the\s+right\s+(?:side\s+)?of|on\s+the\s+right\s+of|right\s+of', 'right_of'),
    (r'in\s+front\s+of', 'in_front_of'),
    (r'behind|in\s+back\s+of', 'behind'),
    (r'next\s+to|beside|near|close\s+to|by', 'next_to'),
    (r'on\s+top\s+of|onto|on', 'on'),
    (r'into|inside\s+of|inside|in', 'in'),
]
_DIRECTION_WORDS: list[tuple[str, str]] = [
    (r'(?:to\s+the\s+)?left(?:wards?)?', 'left'),
    (r'(?:to\s+the\s+)?right(?:wards?)?', 'right'),
    (
        r'forwards?|away(?:\s+from\s+(?:the\s+)?(?:camera|me|you))?|further\s+away|farther\s+away'
        r'|to\s+the\s+back',
        'forward',
    ),
    (
        r'backwards?|back|towards?\s+(?:the\s+)?(?:camera|me|you|the\s+viewer)|closer'
        r'|to\s+the\s+front',
        'backward',
    ),
    (r'up(?:wards?)?', 'up'),
]
_UNITS = {
    'cm': 0.01,
    'centimeter': 0.01,
    'centimeters': 0.01,
    'centimetre': 0.01,
    'centimetres': 0.01,
    'mm': 0.001,
    'millimeter': 0.001,
    'millimeters': 0.001,
    'millimetre': 0.001,
    'millimetres': 0.001,
    'm': 1.0,
    'meter': 1.0,
    'meters': 1.0,
    'metre': 1.0,
    'metres': 1.0,
}
_NUMBER_WORDS = {
    'one': 1,
    'two': 2,
    'three': 3,
    'four': 4,
    'five': 5,
    'six': 6,
    'seven': 7,
    'eight': 8,
    'nine': 9,
    'ten': 10,
    'fifteen': 15,
    'twenty': 20,
    'thirty': 30,
}
_STOPWORDS = {'the', 'a', 'an', 'that', 'this', 'object', 'one', 'thing', 'item'}
_NUM = r'(?P<num>\d+(?:\.\d+)?|' + '|'.join(_NUMBER_WORDS) + r')'
_UNIT = r'(?P<unit>' + '|'.join(sorted(_UNITS, key=len, reverse=True)) + r')'
_DIST = _NUM + r'\s*' + _UNIT


class LanguageError(ValueError):
    """The instruction is outside the language, or names no / several objects."""


@dataclass(frozen=True)
class Task:
    """A parsed instruction.

    Attributes:
        kind: ``place`` (carry X to a relation of Y), ``carry`` (carry X by a displacement),
            ``slide`` (push X along the table) or ``lift``.
        target: the phrase naming the object to move.
        relation: one of :data:`RELATIONS` for ``place``.
        reference: the phrase naming Y for ``place``.
        direction: one of :data:`DIRECTIONS` for ``carry``/``slide``/``lift``.
        distance: metres for ``carry``/``slide``/``lift``.

    """

    kind: str
    target: str
    relation: str | None = None
    reference: str | None = None
    direction: str | None = None
    distance: float | None = None


def _normalise(text: str) -> str:
    t = text.strip().lower()
    t = re.sub(r'[\u2018\u2019\u201c\u201d"\'`]', '', t)
    t = re.sub(r'[.!?;,]+\s*$', '', t)
    t = re.sub(r'\s*,\s*', ' ', t)
    t = re.sub(r'^(?:please|could\s+you|can\s+you|now)\s+', '', t)
    t = re.sub(r'\s+please$', '', t)
    return re.sub(r'\s+', ' ', t).strip()


def _distance(m: re.Match | None) -> float:
    if m is None or m.group('num') is None:
        return DEFAULT_DISTANCE
    raw = m.group('num')
    value = float(_NUMBER_WORDS[raw]) if raw in _NUMBER_WORDS else float(raw)
    return value * _UNITS[m.group('unit')]


def _direction(words: str) -> str | None:
    for pattern, name in _DIRECTION_WORDS:
        if re.fullmatch(pattern, words.strip()):
            return name
    return None


def _displacement(verb_kind: str, rest: str) -> Task | None:
    """Parse ``X [by] N unit DIR`` / ``X DIR [by N unit]`` / ``X N unit to the DIR``."""
    dir_alt = '|'.join(p for p, _ in _DIRECTION_WORDS)
    patterns = [
        rf'^(?P<x>.+?)\s+(?:by\s+)?{_DIST}\s+(?P<dir>{dir_alt})$',
        rf'^(?P<x>.+?)\s+(?P<dir>{dir_alt})(?:\s+(?:by\s+)?{_DIST})?$',
    ]
    for pat in patterns:
        m = re.match(pat, rest)
        if m:
            direction = _direction(m.group('dir'))
            if direction is None or direction == 'up':
                return None
            return Task(
                kind=verb_kind,
                target=m.group('x'),
                direction=direction,
                distance=_distance(m),
            )
    return None


def parse_instruction(text: str) -> Task:
    """Parse one instruction of the language (see the module docstring).

    Args:
        text: the instruction, e.g. ``"put the red cube on the plate"``.

    Returns:
        The :class:`Task` (object phrases unresolved).

    Raises:
        LanguageError: the sentence is not in the language.

    """
    t = _normalise(text)
    if not t:
        raise LanguageError('empty instruction')
    m = re.match(rf'^(?:{_LIFT})\s+(?P<x>.+?)(?:\s+up)?(?:\s+(?:by\s+)?{_DIST})?$', t)
    if m is None:
        m = re.match(rf'^pick\s+(?P<x>.+?)\s+up(?:\s+(?:by\s+)?{_DIST})?$', t)
    if m is not None:
        return Task(kind='lift', target=m.group('x'), direction='up', distance=_distance(m))
    m = re.match(rf'^{_SLIDE}\s+(?P<rest>.+)$', t)
    if m is not None:
        task = _displacement('slide', m.group('rest'))
        if task is not None:
            return task
        raise LanguageError(f'cannot tell where to push in {text!r}')
    m = re.match(rf'^{_CARRY}\s+(?P<rest>.+)$', t)
    if m is None:
        raise LanguageError(f'no known action in {text!r}')
    rest = m.group('rest')
    task = _displacement('carry', rest)
    if task is not None:
        return task
    for pattern, relation in _RELATION_WORDS:
        mm = re.match(rf'^(?P<x>.+?)\s+(?:{pattern})\s+(?P<y>.+)$', rest)
        if mm is not None:
            return Task(
                kind='place',
                target=mm.group('x'),
                relation=relation,
                reference=mm.group('y'),
            )
    raise LanguageError(f'cannot tell where to put the object in {text!r}')


def phrase_words(phrase: str) -> list[str]:
    """The content words of an object phrase (articles and fillers removed)."""
    words = re.findall(r'[a-z0-9]+', phrase.lower().replace('_', ' '))
    return [w for w in words if w not in _STOPWORDS]


def resolve(phrase: str, objects: tuple[SceneObject, ...] | list[SceneObject]) -> SceneObject:
    """Find the one object a phrase refers to.

    An exact name (``red_cube``) wins; otherwise every content word of the phrase must be in
    the object's vocabulary (plural ``s`` tolerated).

    Args:
        phrase: e.g. ``"the red block"``.
        objects: the candidates.

    Returns:
        The object.

    Raises:
        LanguageError: no object or more than one matches (the message says which).

    """
    key = phrase.strip().lower().replace(' ', '_')
    for o in objects:
        if o.name == key or o.name == key.removeprefix('the_'):
            return o
    words = phrase_words(phrase)
    if not words:
        raise LanguageError(f'no object named in {phrase!r}')

    def matches(o: SceneObject) -> bool:
        vocab = o.vocabulary
        return all(w in vocab or (w.endswith('s') and w[:-1] in vocab) for w in words)

    found = [o for o in objects if matches(o)]
    if not found:
        raise LanguageError(f'no object matches {phrase!r}')
    if len(found) > 1:
        raise LanguageError(f'{phrase!r} is ambiguous: ' + ', '.join(o.name for o in found))
    return found[0]
