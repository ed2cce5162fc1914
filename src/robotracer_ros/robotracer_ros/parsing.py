"""Strict parser for trace answers of RoboTracer and general vision-language models.

Design notes: docs/design-notes.md (robotracer_ros.parsing).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import json
import math
import re
from typing import Any

import numpy as np

MAX_ANSWER_BYTES = 64 * 1024
MAX_POINTS = 256
MAX_DEPTH_M = 100.0
COORD_MAX = 1000.0
#: values of the ``coordinates`` setting (see the module docstring)
COORDINATES = ('normalized_1000', 'normalized_1', 'pixels', 'auto')
_MAX_NESTING = 6
_SNIPPET = 60

_POINT_KEYS = ('point', 'point_3d', 'point_2d', 'xy', 'xyd', 'coordinates', 'pos')
_DEPTH_KEYS = ('depth', 'd', 'z', 'depth_m')
_WRAPPER_KEYS = ('trace', 'points', 'path', 'trajectory', 'visual_trace', 'answer', 'waypoints')
_SPECIAL_WORDS = {'nan': math.nan, 'inf': math.inf, 'infinity': math.inf}

# one token: a number, a word (nan, inf, ...), a bracket or comma, or any other character
_TOKEN_RE = re.compile(
    r'[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?'
    r'|[-+]?[A-Za-z_][A-Za-z_0-9]*'
    r'|[\[\]\(\),]'
    r'|\S'
)
_NUM = r'[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?'
_TUPLE = rf'\(\s*{_NUM}\s*,\s*{_NUM}\s*(?:,\s*{_NUM}\s*)?\)'
# RoboTracer's own form, the whole answer: [(x, y, d), ...] -- parsed without the general path
_PLAIN_TUPLES_RE = re.compile(rf'\s*\[\s*{_TUPLE}(?:\s*,\s*{_TUPLE})*\s*,?\s*\]\s*')
_TUPLE_RE = re.compile(_TUPLE)
_NUM_RE = re.compile(_NUM)
_FENCE_RE = re.compile(r'```[^\n`]*\n?(.*?)(?:```|\Z)', re.DOTALL)
_TUPLE_SEP_RE = re.compile(r'\s*,\s*\(')
_OPEN_RE = re.compile(r'[\[{(]')
_STRUCT_RE = re.compile(r'[\[\]{}()"]')
_STRING_TAIL_RE = re.compile(r'(?:[^"\\]|\\.)*"', re.DOTALL)
_OPENERS = {'[': ']', '{': '}', '(': ')'}
_REASONING_TAGS = r'(?:think|thinking|reasoning)'
_REASONING_BLOCK_RE = re.compile(
    rf'<\s*{_REASONING_TAGS}\s*>.*?<\s*/\s*{_REASONING_TAGS}\s*>', re.IGNORECASE | re.DOTALL
)
_REASONING_OPEN_RE = re.compile(rf'<\s*{_REASONING_TAGS}\s*>', re.IGNORECASE)
_REASONING_CLOSE_RE = re.compile(rf'<\s*/\s*{_REASONING_TAGS}\s*>', re.IGNORECASE)
# what models say when they cannot see the object (checked only when no trace is found)
_NOT_VISIBLE_RE = re.compile(
    r"\b(?:can\s*not|can'?t|could\s*n[o']t|unable\s+to|do(?:es)?\s*n[o']t|did\s*n[o']t)\s+"
    r'(?:find|see|locate|spot|detect|identify)\b'
    r'|\bnot\s+(?:visible|found|present|shown|in\s+(?:the|this)\s+(?:image|picture|view|scene|'
    r'frame))\b'
    r'|\bno\s+(?:\w+\s+){0,3}(?:is\s+|are\s+)?(?:visible|in\s+(?:the|this)\s+(?:image|picture|'
    r'view))\b'
    r'|\bout\s+of\s+(?:view|frame|the\s+image|sight)\b'
    r"|\b(?:isn|aren)'?t\s+(?:visible|in\s+(?:the|this)\s+(?:image|picture|view))\b",
    re.IGNORECASE,
)


class TraceParseError(ValueError):
    """The answer holds no usable trace; the message says what was wrong."""


class PointRejected(TraceParseError):
    """One point of the answer is outside what the model may answer.

    Attributes:
        index: the point's number in the answer (1 = the first).
        depth_m: its depth as answered when the depth is the problem (<= 0: behind the camera),
            else NaN.
    """

    def __init__(self, message: str, index: int, depth_m: float = math.nan) -> None:
        super().__init__(message)
        self.index = index
        self.depth_m = depth_m


class ObjectNotVisible(TraceParseError):
    """The answer holds no trace and says the object cannot be seen (not found, out of view)."""


@dataclass(frozen=True)
class ParsedTrace:
    """A trace as the model answered it.

    Attributes:
        xy: (N, 2) float64, x and y normalised to 0-1000 over image width and height.
        depth: (N,) float64 metres (the model's d), or None for a 2D answer.
        form: which form was recognised: ``'tuples'``, ``'json'`` or ``'objects'``.
        note: what the parser did beyond reading the values (e.g. converted 0-1 coordinates,
            skipped reasoning); empty when nothing.
    """

    xy: np.ndarray
    depth: np.ndarray | None
    form: str
    note: str = ''

    @property
    def is_3d(self) -> bool:
        """True when the answer carried a depth per point."""
        return self.depth is not None

    def __len__(self) -> int:
        return int(self.xy.shape[0])


class _SyntaxProblem(Exception):
    """A candidate span is not well-formed (not fatal: the next candidate is tried)."""


class _NotATrace(Exception):
    """A candidate parsed but does not have the shape of a trace (not fatal)."""


def _snippet(text: str) -> str:
    text = ' '.join(text.split())
    return repr(text if len(text) <= _SNIPPET else text[:_SNIPPET] + '...')


# --------------------------------------------------------------------------- candidates


def _spans(text: str) -> Iterator[tuple[str, str | None]]:
    """Yield bracketed spans of ``text`` in order as (span, problem-or-None).

    A span starts at ``[``, ``{`` or ``(`` at top level and ends at its matching closer; inside
    a span, double-quoted strings are skipped. Unterminated spans run to the end of the text and
    come with a problem. Consecutive ``( ... )`` spans separated only by commas and whitespace are
    merged into one run, so bare tuple sequences parse as one trace.
    """
    i, n = 0, len(text)
    while i < n:
        m = _OPEN_RE.search(text, i)  # regex scans: C speed over long prose
        if m is None:
            return
        start = m.start()
        ch = text[start]
        stack = [_OPENERS[ch]]
        j = start + 1
        problem: str | None = None
        while stack:
            m = _STRUCT_RE.search(text, j)
            if m is None:
                j = n
                break
            j = m.start()
            c = text[j]
            if c == '"':
                tail = _STRING_TAIL_RE.match(text, j + 1)
                if tail is None:  # an unterminated string runs to the end
                    j = n
                    break
                j = tail.end()
                continue
            if c in _OPENERS:
                stack.append(_OPENERS[c])
            elif c != stack[-1]:
                problem = f'mismatched {c!r} where {stack[-1]!r} was expected'
                stack.clear()
                break
            else:
                stack.pop()
            j += 1
        if stack:
            problem = f'unterminated {ch!r} (the answer looks truncated)'
            j = n
        if ch == '(' and problem is None:
            # merge a run of tuples: (..), (..), (..)
            k = j
            while True:
                m = _TUPLE_SEP_RE.match(text, k)
                if not m:
                    break
                close = text.find(')', m.end())
                if close < 0:
                    problem = "unterminated '(' (the answer looks truncated)"
                    k = n
                    break
                k = close + 1
            if k != j:
                yield '[' + text[start:k] + ']', problem
                i = k
                continue
        yield text[start:j], problem
        i = max(j, start + 1)


def _candidates(text: str) -> Iterator[tuple[str, str | None, bool]]:
    """Candidate spans as (span, problem-or-None, fenced).

    Fenced blocks first (their content as a whole, then its spans), then spans in the prose
    outside the fences, each group in the order of the text.
    """
    blanked = list(text)
    for m in _FENCE_RE.finditer(text):
        body = m.group(1).strip()
        if body:
            yield body, None, True
            for span, problem in _spans(body):  # prose inside the fence: its bracketed spans
                yield span, problem, True
        for k in range(m.start(), m.end()):
            blanked[k] = ' '
    for span, problem in _spans(''.join(blanked)):
        yield span, problem, False


def strip_reasoning(text: str) -> tuple[str, str]:
    """Remove reasoning sections (``<think>...</think>``) from an answer.

    Handles complete sections, a closing tag without its opening one (chat templates that put
    ``<think>`` into the prompt: everything up to the last closing tag is reasoning) and an
    opening tag that is never closed (the model stopped while reasoning).

    Args:
        text: the model's raw answer.

    Returns:
        (the answer without reasoning, a note saying what was removed or '').

    Raises:
        TraceParseError: nothing but reasoning is left (the message says whether the
            reasoning was cut off, i.e. the token limit was reached).
    """
    if '<' not in text:
        return text, ''
    out, n = _REASONING_BLOCK_RE.subn(' ', text)
    closes = list(_REASONING_CLOSE_RE.finditer(out))
    if closes:
        out = out[closes[-1].end() :]
        n += 1
    opened = _REASONING_OPEN_RE.search(out)
    cut_off = False
    if opened is not None:
        out = out[: opened.start()]
        n += 1
        cut_off = True
    if not n:
        return text, ''
    if not out.strip():
        if cut_off:
            raise TraceParseError(
                'the answer is only reasoning that never ends (<think> without </think>): the '
                'model stopped while reasoning, probably at its token limit (raise max_tokens)'
            )
        raise TraceParseError(
            'the answer holds only reasoning (<think>...</think>) and no final answer'
        )
    return out, 'skipped the reasoning section of the answer'


def says_not_visible(text: str) -> bool:
    """Whether an answer (prose, no trace) says the object cannot be seen.

    Args:
        text: the model's answer.

    Returns:
        True for answers such as ``I cannot find that object in the image.``, ``The red cup is
        not visible.``, ``There is no cup in this image.``, ``The plate is out of view.``.
    """
    return bool(_NOT_VISIBLE_RE.search(text or ''))


# --------------------------------------------------------------------------- loading


def _kind(tok: str) -> str:
    """Classify a token of :data:`_TOKEN_RE`: ``num``, ``word``, ``punct`` or ``other``."""
    c = tok[0]
    if len(tok) == 1 and c in '[](),':
        return 'punct'
    if c.isdecimal() or c == '.':  # isdecimal: exactly the digits \\d matches
        return 'num' if len(tok) > 1 or c.isdecimal() else 'other'
    if c in '+-' and len(tok) > 1:
        c = tok[1]
        if c.isdecimal() or c == '.':
            return 'num'
    if c.isalpha() or c == '_':
        return 'word'
    return 'other'


def _load_tuples(span: str, max_tokens: int) -> Any:
    """Parse list/tuple syntax (Python-like literals of numbers only) without eval.

    Raises:
        _SyntaxProblem: the span is not such a literal.
        TraceParseError: it holds more values than a trace within the point limit can.
    """
    toks = _TOKEN_RE.findall(span)  # C speed; classified lazily, as the grammar reaches them
    if len(toks) > max_tokens:
        raise TraceParseError(
            f'the answer holds a list of over {max_tokens} values: more points than the '
            'limit allows'
        )
    pos = 0
    n = len(toks)

    def value(depth: int) -> Any:
        nonlocal pos
        if pos >= n:
            raise _SyntaxProblem('unexpected end of the answer (truncated?)')
        tok = toks[pos]
        kind = _kind(tok)
        if kind == 'num':
            pos += 1
            try:
                return float(tok)
            except ValueError:
                raise _SyntaxProblem(f'{tok!r} is not a number') from None
        if kind == 'word':
            pos += 1
            sign = -1.0 if tok.startswith('-') else 1.0
            word = tok.lstrip('+-').lower()
            if word in _SPECIAL_WORDS:
                return sign * _SPECIAL_WORDS[word]
            raise _SyntaxProblem(f'unexpected word {tok!r} where a number was expected')
        if kind == 'other':
            raise _SyntaxProblem(f'unexpected character {tok!r}')
        if tok in ('[', '('):
            if depth >= _MAX_NESTING:
                raise _SyntaxProblem(f'nested deeper than {_MAX_NESTING} levels')
            closer = ']' if tok == '[' else ')'
            pos += 1
            items: list[Any] = []
            while True:
                if pos >= n:
                    raise _SyntaxProblem(f'unterminated {tok!r} (the answer looks truncated)')
                if toks[pos] == closer:
                    pos += 1
                    return items
                items.append(value(depth + 1))
                if pos >= n:
                    raise _SyntaxProblem(f'unterminated {tok!r} (the answer looks truncated)')
                sep = toks[pos]
                if sep == ',':
                    pos += 1
                elif sep != closer:
                    raise _SyntaxProblem(f'expected "," or {closer!r}, found {sep!r}')
        raise _SyntaxProblem(f'unexpected {tok!r}')

    result = value(0)
    if pos != n:
        raise _SyntaxProblem(f'unexpected {toks[pos]!r} after the list')
    return result


def _load(span: str, max_tokens: int) -> tuple[Any, str]:
    """Load one candidate: strict JSON first, then the tuple grammar. Returns (value, form)."""
    try:
        return json.loads(span), 'json'
    except RecursionError as exc:
        raise _SyntaxProblem(f'nested deeper than {_MAX_NESTING} levels') from exc
    except ValueError as json_exc:
        if '{' in span or '"' in span:
            raise _SyntaxProblem(f'invalid JSON: {json_exc}') from json_exc
    return _load_tuples(span, max_tokens), 'tuples'


# --------------------------------------------------------------------------- validation


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        shown = repr(value) if len(repr(value)) <= 20 else repr(value)[:20] + '...'
        raise TraceParseError(f'{what} is {shown}, not a number')
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise TraceParseError(f'{what} is {out} (not a finite number)')
    return out


def _is_point_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and 2 <= len(value) <= 3
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )


def _object_point(obj: dict[str, Any], index: int) -> list[Any]:
    for key in _POINT_KEYS:
        if key in obj:
            coords = obj[key]
            if not isinstance(coords, list):
                raise TraceParseError(f'point {index}: {key!r} is not a list of numbers')
            coords = list(coords)
            break
    else:
        if 'x' in obj and 'y' in obj:
            coords = [obj['x'], obj['y']]
        else:
            keys = ', '.join(repr(k) for k in list(obj)[:5])
            raise TraceParseError(
                f"point {index}: object has no 'point' or 'x'/'y' coordinates (keys: {keys})"
            )
    if len(coords) == 2:
        for key in _DEPTH_KEYS:
            if key in obj:
                coords.append(obj[key])
                break
    return coords


def _points(value: Any, depth: int = 0) -> tuple[list[list[Any]], bool]:
    """Extract raw points from a loaded value. Returns (points, from_objects).

    Raises:
        _NotATrace: the value does not have the shape of a trace.
        TraceParseError: it has the shape of a trace but something in it is wrong.
    """
    if isinstance(value, dict):
        for key in _WRAPPER_KEYS:
            if key in value:
                if depth >= _MAX_NESTING:
                    raise _NotATrace(f'wrapped deeper than {_MAX_NESTING} levels')
                return _points(value[key], depth + 1)
        if any(k in value for k in (*_POINT_KEYS, 'x')):
            return [_object_point(value, 1)], True
        raise _NotATrace('an object without a trace in it')
    if not isinstance(value, list):
        raise _NotATrace('not a list')
    if not value:
        raise TraceParseError("the answer's trace is an empty list")
    if _is_point_list(value):
        return [value], False
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise _NotATrace('a flat list of numbers')
    if not all(isinstance(v, (list, dict)) for v in value):
        if any(isinstance(v, (list, dict)) for v in value):
            bad = next(i for i, v in enumerate(value, 1) if not isinstance(v, (list, dict)))
            raise TraceParseError(f'point {bad} is {_snippet(str(value[bad - 1]))}, not a point')
        raise _NotATrace('a list of non-points')
    objects = False
    out: list[list[Any]] = []
    for i, v in enumerate(value, 1):
        if isinstance(v, dict):
            objects = True
            out.append(_object_point(v, i))
        else:
            out.append(v)
    return out, objects


def _check_arity(raw: list[list[Any]], expect_depth: bool | None, max_points: int) -> int:
    if len(raw) > max_points:
        raise TraceParseError(f'the answer has {len(raw)} points, over the limit of {max_points}')
    arity = None
    for i, p in enumerate(raw, 1):
        if not isinstance(p, list):
            raise TraceParseError(f'point {i} is not a list of numbers')
        if len(p) not in (2, 3):
            raise TraceParseError(
                f'point {i} has {len(p)} values; expected 2 (x, y) or 3 (x, y, d)'
            )
        if arity is None:
            arity = len(p)
        elif len(p) != arity:
            raise TraceParseError(
                f'points mix 2D and 3D: point 1 has {arity} values, point {i} has {len(p)}'
            )
    assert arity is not None
    if expect_depth and arity == 2:
        raise TraceParseError(
            "a 3D trace was asked for, but the answer's points have 2 values (x, y): no depth"
        )
    return arity


def _looks_unit_normalised(xy: np.ndarray) -> bool:
    """Every x, y in 0-1 and at least one strictly fractional: RoboRefer's 0-1 style."""
    if xy.size == 0 or float(np.max(xy)) > 1.0:
        return False
    return bool(np.any((xy > 0.0) & (xy < 1.0)))


def _validate(
    raw: list[list[Any]],
    *,
    expect_depth: bool | None,
    max_points: int,
    max_depth_m: float,
    coordinates: str = 'normalized_1000',
    image_size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Check the raw points; returns (xy in 0-1000, depth or None, note)."""
    arity = _check_arity(raw, expect_depth, max_points)
    arr = np.empty((len(raw), arity), dtype=np.float64)
    names = ('x', 'y', 'd')
    for i, p in enumerate(raw, 1):
        for k, v in enumerate(p):
            arr[i - 1, k] = _number(v, f'point {i}: {names[k]}')
    xy = arr[:, :2]
    if coordinates == 'pixels':
        assert image_size is not None
        limits = (float(image_size[0]), float(image_size[1]))
        unit = ' pixels of the {}x{} image'.format(*image_size)
    elif coordinates == 'normalized_1':
        limits, unit = (1.0, 1.0), ' (coordinates: normalized_1)'
    else:
        limits, unit = (COORD_MAX, COORD_MAX), ' (x and y must be normalised to 0-1000)'
    for i in range(len(raw)):
        for k in (0, 1):
            if not 0.0 <= xy[i, k] <= limits[k]:
                hint = unit
                if coordinates == 'normalized_1' and xy[i, k] <= COORD_MAX:
                    hint += (
                        '; the answer looks normalised to 0-1000 (coordinates: normalized_1000)'
                    )
                raise PointRejected(
                    f'point {i + 1}: {names[k]}={xy[i, k]:g} is outside 0-{limits[k]:g}{hint}',
                    i + 1,
                )
        if arity == 3 and not 0.0 < arr[i, 2] <= max_depth_m:
            raise PointRejected(
                f'point {i + 1}: d={arr[i, 2]:g} m is outside (0, {max_depth_m:g}] m',
                i + 1,
                float(arr[i, 2]),
            )
    note = ''
    if coordinates == 'normalized_1':
        xy = xy * COORD_MAX
    elif coordinates == 'pixels':
        if _looks_unit_normalised(xy):
            raise TraceParseError(
                'every x, y of the answer lies in 0-1: it looks normalised to 0-1, not pixels '
                '(set coordinates: normalized_1 for this model)'
            )
        xy = xy * (COORD_MAX / np.array(limits))
    elif _looks_unit_normalised(xy):
        if coordinates != 'auto':
            raise TraceParseError(
                'every x, y of the answer lies in 0-1: it looks normalised to 0-1 '
                "(RoboRefer's style), not 0-1000 as the model config says (coordinates: "
                f'{coordinates}); set coordinates: normalized_1 (or auto) for this model'
            )
        xy = xy * COORD_MAX
        note = 'coordinates read as normalised to 0-1 (every x, y was in 0-1)'
    depth = arr[:, 2].copy() if arity == 3 else None
    return np.ascontiguousarray(xy), depth, note


def join_notes(*notes: str) -> str:
    """The non-empty notes, joined with '; '."""
    return '; '.join(n for n in notes if n)


def parse_trace(
    text: str,
    *,
    expect_depth: bool | None = None,
    max_bytes: int = MAX_ANSWER_BYTES,
    max_points: int = MAX_POINTS,
    max_depth_m: float = MAX_DEPTH_M,
    coordinates: str = 'normalized_1000',
    image_size: tuple[int, int] | None = None,
) -> ParsedTrace:
    """Parse a model's answer into a trace.

    Args:
        text: the model's raw answer.
        expect_depth: True: require (x, y, d) points (a 3D request); False or None: accept 2D
            or 3D points (a 2D request may still get depths back; they are kept).
        max_bytes: size limit of the answer in UTF-8 bytes (default 64 KiB).
        max_points: the most points a trace may have.
        max_depth_m: the largest depth d accepted, metres.
        coordinates: the model's coordinate convention, one of :data:`COORDINATES` (see the
            module docstring).
        image_size: (width, height) of the image the model was sent; needed for ``pixels``.

    Returns:
        The parsed trace: x, y normalised to 0-1000 and (for 3D answers) the model's depth per
        point.

    Raises:
        ObjectNotVisible: no trace, and the answer says the object cannot be seen.
        TraceParseError: the answer is too long, empty, only reasoning, holds no trace, or the
            trace is broken (non-finite number, value out of range, wrong number of values,
            mixed 2D/3D, too many points, 0-1 coordinates where 0-1000 are configured); the
            message says which and where.
        ValueError: (not a TraceParseError) an unknown ``coordinates`` value, or ``pixels``
            without ``image_size``.
    """
    if coordinates not in COORDINATES:
        raise ValueError(f'coordinates {coordinates!r} is not one of {", ".join(COORDINATES)}')
    if coordinates == 'pixels' and (
        image_size is None or min(int(image_size[0]), int(image_size[1])) <= 0
    ):
        raise ValueError("coordinates 'pixels' needs the image size (width, height)")
    if not isinstance(text, str):
        raise TraceParseError(f'the answer must be text, got {type(text).__name__}')
    if len(text) > max_bytes:  # at least one byte a character: too long, without encoding it
        raise TraceParseError(
            f'the answer is {len(text)} characters, over the {max_bytes}-byte limit'
        )
    size = len(text.encode('utf-8', errors='surrogatepass'))
    if size > max_bytes:
        raise TraceParseError(f'the answer is {size} bytes, over the {max_bytes}-byte limit')
    if not text.strip():
        raise TraceParseError('the answer is empty')
    opts = {
        'expect_depth': expect_depth,
        'max_points': max_points,
        'max_depth_m': max_depth_m,
        'coordinates': coordinates,
        'image_size': image_size,
    }
    if _PLAIN_TUPLES_RE.fullmatch(text):  # RoboTracer's own answer: the fast path
        raw = [[float(v) for v in _NUM_RE.findall(t)] for t in _TUPLE_RE.findall(text)]
        xy, depth, note = _validate(raw, **opts)  # type: ignore[arg-type]
        return ParsedTrace(xy=xy, depth=depth, form='tuples', note=note)
    answer, reasoning_note = strip_reasoning(text)
    first_problem: str | None = None
    truncated: str | None = None
    # trace-shaped candidates: (fenced, points, order, parsed or None, error or None)
    found: list[tuple[bool, int, int, ParsedTrace | None, TraceParseError | None]] = []
    for order, (span, problem, fenced) in enumerate(_candidates(answer)):
        if problem is None:
            try:
                value, form = _load(span, 8 * max_points + 16)
                raw, objects = _points(value)
            except (_SyntaxProblem, _NotATrace) as exc:
                problem = str(exc)
            except TraceParseError as exc:  # trace-shaped, but broken
                found.append((fenced, 0, order, None, exc))
            else:
                try:
                    xy, depth, note = _validate(raw, **opts)  # type: ignore[arg-type]
                except TraceParseError as exc:
                    found.append((fenced, len(raw), order, None, exc))
                else:
                    parsed = ParsedTrace(
                        xy=xy,
                        depth=depth,
                        form='objects' if objects else form,
                        note=join_notes(reasoning_note, note),
                    )
                    found.append((fenced, len(raw), order, parsed, None))
        if first_problem is None and problem is not None:
            first_problem = f'{_snippet(span)}: {problem}'
        if truncated is None and problem is not None and 'truncated' in problem:
            truncated = f'{_snippet(span)}: {problem}'
    valid = [f for f in found if f[3] is not None]
    pool = [f for f in valid if f[0] and f[1] >= 2] or valid  # a fenced trace first
    best = max(pool, key=lambda f: (f[1], f[2])) if pool else None
    broken = [f for f in found if f[4] is not None]
    worst = max(broken, key=lambda f: (f[0], f[1], -f[2])) if broken else None
    if best is not None and best[1] < 2 and truncated is not None:
        raise TraceParseError(  # a quoted point, and the real list was cut off
            f'the answer was cut off before its trace was complete ({truncated}); only single '
            'points are quoted before it'
        )
    if best is not None and (best[1] >= 2 or worst is None or worst[1] <= best[1]):
        return best[3]  # type: ignore[return-value]
    if worst is not None:
        raise worst[4]  # type: ignore[misc]
    if says_not_visible(answer):
        raise ObjectNotVisible(
            'no trace found in the answer: the model says it cannot see the object '
            f'({_snippet(answer)})'
        )
    msg = (
        'no trace found in the answer (expected [(x, y, d), ...] or a JSON list '
        f'[[x, y, d], ...]); the answer starts {_snippet(answer)}'
    )
    if first_problem is not None:
        msg += f'; first candidate {first_problem}'
    raise TraceParseError(msg)
