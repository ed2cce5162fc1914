"""Fuzzing the answer parser and the backends' response handling (issue 11, item 8).

Design notes: docs/design-notes.md (robotracer_ros.testing.fuzz).
"""

from __future__ import annotations

from collections.abc import Callable
import functools
import json
import math
import os
import random
import re
import signal
import threading
import time
from typing import Any

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
import numpy as np

from robotracer_ros.backends._http import decode_json_body
from robotracer_ros.backends.base import BackendError
from robotracer_ros.backends.openai_chat import OpenAIChatBackend
from robotracer_ros.backends.robotracer_http import RoboTracerHttpBackend
from robotracer_ros.filtering import FilterOptions
from robotracer_ros.lifting import LiftOptions
from robotracer_ros.parsing import (
    COORD_MAX,
    MAX_DEPTH_M,
    MAX_POINTS,
    ParsedTrace,
    TraceParseError,
    parse_trace,
)
from robotracer_ros.pipeline import PipelineOptions, TraceResult, answer_to_trace

ENV_EXAMPLES = 'ROBOTRACER_FUZZ_EXAMPLES'
DEFAULT_EXAMPLES = 300
TARGETS = ('parser', 'pipeline', 'robotracer_http', 'openai')
MAX_MESSAGE_CHARS = 2000
_K = np.array([[60.0, 0.0, 31.5], [0.0, 60.0, 23.5], [0.0, 0.0, 1.0]])
_DEPTH = np.full((48, 64), 1000, np.uint16)
_PIPELINE = PipelineOptions(lift=LiftOptions('fused'), filter=FilterOptions())


class FuzzCrash(AssertionError):
    """An input ended neither as a valid trace nor as a clean error."""


class _Hang(BaseException):
    """Raised by the per-input alarm (BaseException: code under test cannot swallow it)."""


def examples_from_env(default: int = DEFAULT_EXAMPLES) -> int:
    """The number of fuzz inputs asked for by ``$ROBOTRACER_FUZZ_EXAMPLES`` (or ``default``)."""
    raw = os.environ.get(ENV_EXAMPLES, '').strip()
    try:
        return max(1, int(float(raw))) if raw else default
    except ValueError:
        return default


# --------------------------------------------------------------------------- strategies

_WORDS = ['nan', 'NaN', 'inf', '-inf', 'Infinity', '-Infinity', 'null', 'true', 'x', 'd']
_SPECIAL_NUMBERS = [
    '0',
    '-0',
    '1000',
    '1000.0',
    '1000.0001',
    '-1',
    '1e3',
    '1e999',
    '-1e999',
    '1e-400',
    '.5',
    '5.',
    '00012',
    '0x10',
    '1_000',
    '9' * 400,
    '1e',
    '+-1',
    '100.0.0',
]


@functools.cache  # build each strategy once
def _number() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(-50, 1100).map(str),
        st.floats(0, 1000, allow_nan=False).map(lambda v: f'{v:.3f}'),
        st.floats(0.01, 5.0).map(lambda v: f'{v:.3f}'),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(_SPECIAL_NUMBERS + _WORDS),
    )


@functools.cache  # build each strategy once
def _trace_text() -> st.SearchStrategy[str]:
    """Trace look-alikes in every form the parser knows, often broken."""
    point = st.lists(_number(), min_size=1, max_size=4)
    points = st.lists(point, min_size=0, max_size=12)

    def render(pts: list[list[str]], style: str) -> str:
        if style == 'tuples':
            return '[' + ', '.join('(' + ', '.join(p) + ')' for p in pts) + ']'
        if style == 'json':
            return '[' + ', '.join('[' + ', '.join(p) + ']' for p in pts) + ']'
        if style == 'bare':
            return ', '.join('(' + ', '.join(p) + ')' for p in pts)
        if style == 'objects':
            items = []
            for p in pts:
                head = '"point": [' + ', '.join(p[:2]) + ']'
                tail = f', "depth": {p[2]}' if len(p) > 2 else ''
                items.append('{' + head + tail + '}')
            return '{"trace": [' + ', '.join(items) + ']}'
        return '[' + ', '.join('{"x": ' + ', "y": '.join(p[:2]) + '}' for p in pts) + ']'

    styles = st.sampled_from(['tuples', 'json', 'bare', 'objects', 'xy'])
    good = st.builds(  # well-formed traces of 2D or 3D points, in range
        lambda n, dims, xs, ds: [
            [str(xs[2 * i]), str(xs[2 * i + 1])] + ([f'{ds[i]:.3f}'] if dims == 3 else [])
            for i in range(n)
        ],
        st.integers(1, 12),
        st.sampled_from([2, 3]),
        st.lists(st.integers(0, 1000), min_size=24, max_size=24),
        st.lists(st.floats(0.2, 4.0), min_size=12, max_size=12),
    )
    core = st.builds(render, st.one_of(good, good, points), styles)
    wrapped = st.builds(
        lambda pre, body, post, fence: (
            f'{pre}```{fence}\n{body}\n```{post}' if fence is not None else f'{pre}{body}{post}'
        ),
        st.sampled_from(['', 'Sure! The trace is ', 'Answer: ', '[', '(', '{"answer": ']),
        core,
        st.sampled_from(['', '.', ' Done.', ']', ')', '}', ' (x, y, d)']),
        st.one_of(st.none(), st.sampled_from(['', 'json', 'python'])),
    )
    return st.one_of(
        wrapped,
        st.builds(lambda t, cut: t[: max(0, len(t) - cut)], wrapped, st.integers(1, 30)),
        st.builds(
            lambda t, pos, junk: t[: pos % (len(t) + 1)] + junk + t[pos % (len(t) + 1) :],
            wrapped,
            st.integers(0, 10_000),
            st.sampled_from(['(', ')', '[', ']', '{', '}', '"', ',', ',,', '\\', '\x00', 'é']),
        ),
    )


@functools.cache  # build each strategy once
def _json_value() -> st.SearchStrategy[Any]:
    keys = st.one_of(
        st.sampled_from(['trace', 'points', 'point', 'x', 'y', 'd', 'depth', 'answer', 'result']),
        st.text(max_size=6),
    )
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**6), 10**6),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
    )
    return st.recursive(
        leaves,
        lambda c: st.lists(c, max_size=6) | st.dictionaries(keys, c, max_size=5),
        max_leaves=30,
    )


@functools.cache  # build each strategy once
def answer_texts() -> st.SearchStrategy[str]:
    """Model answers: arbitrary text, trace look-alikes, JSON values, deep or repeated text."""
    return st.one_of(
        st.text(max_size=300),
        _trace_text(),
        _trace_text(),
        _json_value().map(lambda v: json.dumps(v, allow_nan=True)),
        st.builds(
            lambda c, n: c * n,
            st.sampled_from(['[', '(', '{', '[(', '"', '(1,2),']),
            st.integers(1, 5000),
        ),
        st.builds(lambda t, n: t * n, _trace_text(), st.integers(2, 40)),
    )


def _dump(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


@functools.cache  # build each strategy once
def response_bodies(backend: str) -> st.SearchStrategy[bytes]:
    """Response bodies for ``backend``: bytes, JSON, and the API's envelope around anything."""
    answer = st.one_of(answer_texts(), answer_texts(), answer_texts(), _json_value())
    if backend == 'openai':
        content = st.one_of(
            answer,
            st.lists(st.fixed_dictionaries({'type': st.just('text'), 'text': answer}), max_size=3),
        )
        envelope = st.builds(
            lambda c, extra: _dump({'choices': [{'message': {'content': c, **extra}}]}),
            content,
            st.dictionaries(st.sampled_from(['refusal', 'role']), _json_value(), max_size=2),
        )
        broken = st.builds(lambda v: _dump({'choices': v}), _json_value()) | st.builds(
            lambda v: _dump({'error': v}), _json_value()
        )
    else:
        envelope = st.builds(
            lambda r, a: _dump({'result': r, 'answer': a}),
            st.one_of(st.just(1), st.just(1), st.just(1), _json_value()),
            answer,
        )
        broken = st.builds(lambda v: _dump(v), _json_value())
    return st.one_of(
        envelope,
        envelope,
        broken,
        st.binary(max_size=300),
        st.text(max_size=200).map(lambda t: t.encode('utf-8', 'surrogatepass')),
    )


@functools.cache  # build each strategy once
def cases() -> st.SearchStrategy[tuple[str, Any, bool, int]]:
    """(target, input, expect_depth, mutation seed) over every target."""
    seeds = st.integers(0, 2**32 - 1)
    return st.one_of(
        st.tuples(st.just('parser'), answer_texts(), st.booleans(), seeds),
        st.tuples(st.just('pipeline'), answer_texts(), st.booleans(), seeds),
        st.tuples(
            st.just('robotracer_http'), response_bodies('robotracer_http'), st.booleans(), seeds
        ),
        st.tuples(st.just('openai'), response_bodies('openai'), st.booleans(), seeds),
    )


_INSERTS = list('()[]{}",.-+eE0123456789 \n`:') + [
    'nan',
    'inf',
    '1e999',
    '-5',
    '100000',
    '\x00',
    '\x1b[31m',
    '\ud800',
    'é',
    '\u202e',
]
_SPECIAL_SWAPS = ['nan', '-inf', '1e999', '-1', '1001', '0', '1e-9', '""', 'null', '[]']


def mutants(data: str | bytes, rng: random.Random, count: int) -> list[str | bytes]:
    """``count`` cheap mutations of ``data``: cuts, deletions, insertions, duplications, swaps.

    Hypothesis picks the structure; these multiply each of its inputs many times over at a
    fraction of its cost per input (what keeps a 10^5-input campaign to about a minute).
    """
    is_bytes = isinstance(data, bytes)
    text = data.decode('utf-8', 'surrogateescape') if is_bytes else data
    out: list[str | bytes] = []
    for _ in range(count):
        t = text
        for _ in range(rng.randint(1, 3)):
            n = len(t)
            op = rng.randrange(6)
            i = rng.randint(0, n)
            j = rng.randint(i, min(n, i + 40))
            if op == 0:
                t = t[:i]
            elif op == 1:
                t = t[:i] + t[j:]
            elif op == 2:
                t = t[:i] + rng.choice(_INSERTS) + t[i:]
            elif op == 3:
                t = t[:j] + t[i:j] * rng.randint(1, 50) + t[j:]
            elif op == 4:
                m = re.search(r'-?\d+(?:\.\d+)?', t[i:])
                if m:
                    a, b = i + m.start(), i + m.end()
                    t = t[:a] + rng.choice(_SPECIAL_SWAPS) + t[b:]
            elif n >= 2:
                a, b = rng.randrange(n), rng.randrange(n)
                a, b = min(a, b), max(a, b)
                t = t[:a] + t[b] + t[a + 1 : b] + t[a] + t[b + 1 :]
        out.append(_to_bytes(t) if is_bytes else t)
    return out


def _to_bytes(text: str) -> bytes:
    try:
        return text.encode('utf-8', 'surrogateescape')
    except UnicodeEncodeError:  # an inserted lone surrogate: keep it, as raw bytes
        return text.encode('utf-8', 'surrogatepass')


# --------------------------------------------------------------------------- oracles

_BACKENDS: dict[str, Any] = {}


def _backend(name: str) -> Any:
    if name not in _BACKENDS:
        cls = RoboTracerHttpBackend if name == 'robotracer_http' else OpenAIChatBackend
        _BACKENDS[name] = cls('http://127.0.0.1:9')
    return _BACKENDS[name]


def _check_message(exc: BaseException) -> None:
    msg = str(exc)
    if not msg or len(msg) > MAX_MESSAGE_CHARS or not msg.isprintable():
        raise FuzzCrash(
            f'{type(exc).__name__} with an unusable message ({len(msg)} chars, '
            f'printable={msg.isprintable()}): {msg[:200]!r}'
        )


def _check_trace(tr: ParsedTrace, expect_depth: bool) -> None:
    n = len(tr)
    xy = tr.xy
    if not 1 <= n <= MAX_POINTS or xy.shape != (n, 2) or not np.all(np.isfinite(xy)):
        raise FuzzCrash(f'bad trace shape or values: {xy!r}')
    if np.any(xy < 0) or np.any(xy > COORD_MAX):
        raise FuzzCrash(f'x/y outside 0-{COORD_MAX:g}: {xy!r}')
    if tr.depth is not None:
        d = tr.depth
        if (
            d.shape != (n,)
            or not np.all(np.isfinite(d))
            or np.any(d <= 0)
            or np.any(d > MAX_DEPTH_M)
        ):
            raise FuzzCrash(f'bad depths: {d!r}')
    elif expect_depth:
        raise FuzzCrash('a 2D trace came back for a 3D request')


def _check_result(res: TraceResult, expect_depth: bool) -> None:
    if expect_depth and not res.answer_3d:
        raise FuzzCrash('the pipeline lifted a 2D answer for a 3D request')
    if res.points_cam.ndim != 2 or res.points_cam.shape[1] != 3:
        raise FuzzCrash(f'bad points shape {res.points_cam.shape}')


def check_input(target: str, data: Any, expect_depth: bool) -> str:
    """Run one input through ``target``; return ``'valid'`` or ``'clean_error'``.

    Args:
        target: one of :data:`TARGETS`.
        data: answer text (``parser``, ``pipeline``) or response body bytes (backends).
        expect_depth: the request asked for a 3D trace.

    Returns:
        ``'valid'`` (a checked trace) or ``'clean_error'`` (a documented error with a one-line
        printable message).

    Raises:
        FuzzCrash: the input broke the contract (an invariant failed, or a message is unusable).
        Exception: anything else the code under test raised (a crash).
    """
    try:
        if target == 'parser':
            _check_trace(parse_trace(data, expect_depth=expect_depth or None), expect_depth)
        elif target == 'pipeline':
            res = answer_to_trace(
                data,
                width=64,
                height=48,
                K=_K,
                depth=_DEPTH,
                options=_PIPELINE,
                expect_depth=expect_depth or None,
            )
            _check_result(res, expect_depth)
        else:
            backend = _backend(target)
            reply = decode_json_body(data, backend.url)
            text = backend.answer_from_reply(reply)
            if not isinstance(text, str):
                raise FuzzCrash(f'answer_from_reply returned {type(text).__name__}')
            _check_trace(parse_trace(text, expect_depth=expect_depth or None), expect_depth)
    except (TraceParseError, BackendError) as exc:
        _check_message(exc)
        return 'clean_error'
    except ValueError as exc:  # answer_to_trace documents ValueError for bad lifting inputs
        if target != 'pipeline':
            raise
        _check_message(exc)
        return 'clean_error'
    return 'valid'


# --------------------------------------------------------------------------- campaign


def run_fuzz_campaign(
    n_inputs: int | None = None,
    *,
    seed: int = 0,
    mutants_per_example: int = 15,
    per_input_limit_ms: float = 1000.0,
    max_examples_kept: int = 5,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Fuzz every target and count the outcomes.

    Args:
        n_inputs: number of inputs (None: ``$ROBOTRACER_FUZZ_EXAMPLES``, default 300).
        seed: hypothesis seed (the same seed gives the same inputs).
        mutants_per_example: mutated copies run after each hypothesis example (0: none).
        per_input_limit_ms: an input taking longer is a hang (interrupted by an alarm when run
            in the main thread).
        max_examples_kept: how many crashing inputs to keep in the report.
        progress: called with the running counts every 10 000 inputs.

    Returns:
        ``{"inputs", "valid", "clean_errors", "crashes", "hangs", "max_ms", "elapsed_s",
        "inputs_per_s", "per_target": {target: {"inputs", "valid", "clean_errors",
        "crashes"}}, "crash_examples": [...], "slowest": {...}}``.
    """
    n = examples_from_env() if n_inputs is None else max(1, int(n_inputs))
    counts: dict[str, Any] = {
        'inputs': 0,
        'valid': 0,
        'clean_errors': 0,
        'crashes': 0,
        'hangs': 0,
        'max_ms': 0.0,
    }
    per_target = {t: {'inputs': 0, 'valid': 0, 'clean_errors': 0, 'crashes': 0} for t in TARGETS}
    examples: list[dict[str, str]] = []
    slowest: dict[str, Any] = {}
    use_alarm = threading.current_thread() is threading.main_thread() and hasattr(
        signal, 'setitimer'
    )

    def on_alarm(signum: int, frame: Any) -> None:
        raise _Hang()

    per_example = 1 + max(0, int(mutants_per_example))

    @settings(
        max_examples=max(1, math.ceil(n / per_example)),
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    @given(case=cases())
    def example(case: tuple[str, Any, bool, int]) -> None:
        target, data, expect_depth, mutation_seed = case
        room = n - counts['inputs']
        if room <= 0:
            return
        rng = random.Random(mutation_seed)
        for item in [data, *mutants(data, rng, min(per_example, room) - 1)]:
            one(target, item, expect_depth)

    def one(target: str, data: Any, expect_depth: bool) -> None:
        t0 = time.perf_counter()
        outcome = 'crash'
        problem = ''
        try:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, per_input_limit_ms / 1000.0)
            try:
                outcome = check_input(target, data, expect_depth)
            finally:
                if use_alarm:
                    signal.setitimer(signal.ITIMER_REAL, 0)
        except _Hang:
            outcome = 'hang'
            problem = f'no result within {per_input_limit_ms:g} ms'
        except Exception as exc:  # a crash: counted and reported, the campaign goes on
            problem = f'{type(exc).__name__}: {str(exc)[:300]}'
        ms = (time.perf_counter() - t0) * 1000.0
        if outcome != 'hang' and ms > per_input_limit_ms:
            outcome, problem = 'hang', f'took {ms:.0f} ms'
        counts['inputs'] += 1
        if ms > counts['max_ms']:
            counts['max_ms'] = ms
            shown = data if isinstance(data, str) else repr(data)
            slowest.update(target=target, chars=len(data), input=repr(shown[:120]), ms=ms)
        pt = per_target[target]
        pt['inputs'] += 1
        if outcome == 'valid':
            counts['valid'] += 1
            pt['valid'] += 1
        elif outcome == 'clean_error':
            counts['clean_errors'] += 1
            pt['clean_errors'] += 1
        else:
            counts['crashes' if outcome == 'crash' else 'hangs'] += 1
            pt['crashes'] += 1
            if len(examples) < max_examples_kept:
                shown = data if isinstance(data, str) else repr(data)
                examples.append({'target': target, 'input': repr(shown[:300]), 'problem': problem})
        if progress is not None and counts['inputs'] % 10_000 == 0:
            progress(dict(counts))

    previous = signal.signal(signal.SIGALRM, on_alarm) if use_alarm else None
    t_start = time.perf_counter()
    try:
        hypothesis_seed(seed)(example)()
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    elapsed = time.perf_counter() - t_start
    counts['max_ms'] = round(counts['max_ms'], 3)
    counts['elapsed_s'] = round(elapsed, 3)
    counts['inputs_per_s'] = round(counts['inputs'] / elapsed, 1) if elapsed > 0 else math.nan
    counts['per_target'] = per_target
    counts['crash_examples'] = examples
    counts['slowest'] = slowest
    return counts


if __name__ == '__main__':  # python -m robotracer_ros.testing.fuzz [N]
    import sys

    n_arg = int(float(sys.argv[1])) if len(sys.argv) > 1 else None
    print(json.dumps(run_fuzz_campaign(n_arg), indent=2))
