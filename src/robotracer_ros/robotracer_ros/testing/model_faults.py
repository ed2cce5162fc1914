"""Model faults (issue 11, item 7): each one tried through the real request logic.

:data:`MODEL_FAULTS` lists what a model server can do wrong, how to make a :class:`FaultServer`
do it, and the GetTrace error code and message fragment the caller must get.
:func:`try_model_fault` runs one fault for one backend through :class:`TraceService` against a
real HTTP server on 127.0.0.1 and then checks that the next request works once the fault is
gone; :func:`run_model_faults` runs them all and returns counts for a benchmark.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import json
import math
import socket
import time
from typing import Any

import numpy as np

from robotracer_ros.backends import make_backend
from robotracer_ros.backends._http import worst_case_s
from robotracer_ros.filtering import FilterOptions
from robotracer_ros.lifting import LiftOptions
from robotracer_ros.pipeline import PipelineOptions
from robotracer_ros.testing.fault_server import GOOD_2D, FaultServer
from robotracer_ros.testing.model_server import FLASK_ERROR_PAGES
from robotracer_ros.trace_service import (
    ERROR_BAD_ANSWER,
    ERROR_MODEL,
    ERROR_NAMES,
    ERROR_NONE,
    ERROR_NOT_VISIBLE,
    Frame,
    TraceRequest,
    TraceService,
)

HTTP_BACKENDS = ('robotracer_http', 'openai')
WIDTH, HEIGHT = 64, 48
K = np.array([[60.0, 0.0, 31.5], [0.0, 60.0, 23.5], [0.0, 0.0, 1.0]])
TEN_MB = 10 * 1024 * 1024


def _many_points(n: int) -> str:
    return '[' + ', '.join(f'({400 + i % 200}, {400 + i % 150}, 1.0)' for i in range(n)) + ']'


@dataclass(frozen=True)
class ModelFault:
    """One thing a model server does wrong, and what the caller must see.

    Attributes:
        name: short id.
        what: the fault in words.
        kind: :class:`FaultServer` fault kind (``'down'``: nothing listens on the port).
        params: the fault's parameters (see :meth:`FaultServer.set_fault`).
        error_code: the GetTrace error the request must end with.
        message: a fragment the error message must contain (case-insensitive).
        mode_3d: the request asks for a 3D trace.
        only: the one backend the fault applies to ('' = every HTTP backend).
    """

    name: str
    what: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    error_code: int = ERROR_BAD_ANSWER
    message: str = ''
    mode_3d: bool = True
    only: str = ''

    def applies_to(self, backend: str) -> bool:
        """Whether the fault is one ``backend`` can meet."""
        return not self.only or self.only == backend


_REASONING_SPENT = json.dumps(
    {
        'id': 'chatcmpl-fault',
        'object': 'chat.completion',
        'choices': [
            {
                'index': 0,
                'finish_reason': 'length',
                'message': {
                    'role': 'assistant',
                    'content': None,
                    'reasoning_content': 'The cup is on the left. First I need to find...',
                },
            }
        ],
    }
).encode()


MODEL_FAULTS: tuple[ModelFault, ...] = (
    ModelFault('down', 'nothing listens on the port', 'down', {}, ERROR_MODEL, 'refused'),
    ModelFault(
        'reset', 'the connection is reset after the request', 'reset', {}, ERROR_MODEL, 'closed'
    ),
    ModelFault(
        'closed', 'the server closes without answering', 'close', {}, ERROR_MODEL, 'closed'
    ),
    ModelFault(
        'slow',
        'the answer comes after the timeout',
        'slow',
        {'delay_s': 5.0},
        ERROR_MODEL,
        'within',
    ),
    ModelFault(
        'drip',
        'the answer drips in a byte at a time, past the timeout',
        'drip',
        {'drip_s': 0.05},
        ERROR_MODEL,
        'within',
    ),
    ModelFault('http_404', 'HTTP 404', 'status', {'status': 404}, ERROR_MODEL, 'HTTP 404'),
    ModelFault('http_422', 'HTTP 422', 'status', {'status': 422}, ERROR_MODEL, 'HTTP 422'),
    ModelFault('http_500', 'HTTP 500', 'status', {'status': 500}, ERROR_MODEL, 'HTTP 500'),
    ModelFault('http_503', 'HTTP 503', 'status', {'status': 503}, ERROR_MODEL, 'HTTP 503'),
    ModelFault(
        'html_502',
        'an HTML error page with 502',
        'html',
        {'status': 502},
        ERROR_MODEL,
        "HTML page titled '502 Bad Gateway'",
    ),
    ModelFault(
        'html_200',
        'an HTML page with 200',
        'html',
        {'status': 200},
        ERROR_BAD_ANSWER,
        "not JSON: an HTML page titled '502 Bad Gateway'",
    ),
    ModelFault(
        'non_json',
        'a body that is not JSON',
        'raw',
        {'body': b'Internal Server Error'},
        ERROR_BAD_ANSWER,
        'not JSON: Internal Server Error',
    ),
    ModelFault(
        'no_answer',
        'JSON without the answer field',
        'no_answer',
        {},
        ERROR_BAD_ANSWER,
        'answer',
    ),
    ModelFault(
        'empty', 'an empty answer', 'none', {'answer': ''}, ERROR_BAD_ANSWER, 'answer is empty'
    ),
    ModelFault(
        'flask_500',
        "the authors' Flask server raised (its HTML 500 page)",
        'html',
        {'status': 500, 'body': FLASK_ERROR_PAGES[500]},
        ERROR_MODEL,
        "HTML page titled '500 Internal Server Error'",
    ),
    ModelFault(
        'result_0',
        'the server reports result 0',
        'raw',
        {
            'body': b'{"result": 0, "error": "model not loaded"}',
            'content_type': 'application/json',
        },
        ERROR_MODEL,
        'model error',
        only='robotracer_http',
    ),
    ModelFault(
        'reasoning_spent',
        'a reasoning model spends its token limit and answers nothing',
        'raw',
        {'body': _REASONING_SPENT, 'content_type': 'application/json'},
        ERROR_MODEL,
        'token limit',
        only='openai',
    ),
    ModelFault(
        'not_visible',
        'the model cannot see the object',
        'none',
        {'answer': 'I cannot find that object in the image.'},
        ERROR_NOT_VISIBLE,
        'object not visible',
    ),
    ModelFault(
        'prose',
        'prose without a trace',
        'none',
        {'answer': 'The object should be picked up and moved to the target location.'},
        ERROR_BAD_ANSWER,
        'no trace found',
    ),
    ModelFault(
        'think_only',
        'only reasoning, cut off',
        'none',
        {'answer': '<think>The cup is at the left, so the first point is'},
        ERROR_BAD_ANSWER,
        'only reasoning',
    ),
    ModelFault(
        'unit_coordinates',
        'x, y normalised to 0-1 where 0-1000 is configured',
        'none',
        {'answer': '[(0.5, 0.5, 1.0), (0.56, 0.48, 0.98)]'},
        ERROR_BAD_ANSWER,
        'normalised to 0-1',
    ),
    ModelFault(
        'out_of_range',
        'coordinates outside 0-1000',
        'none',
        {'answer': '[(500, 500, 1.0), (1500, 480, 1.0)]'},
        ERROR_BAD_ANSWER,
        'x=1500 is outside 0-1000',
    ),
    ModelFault(
        'nan',
        'NaN in a point',
        'none',
        {'answer': '[(500, 500, 1.0), (nan, 480, 1.0)]'},
        ERROR_BAD_ANSWER,
        'not a finite number',
    ),
    ModelFault(
        'inf',
        'infinity in a point',
        'none',
        {'answer': '[[500, 500, 1.0], [560, 480, Infinity]]'},
        ERROR_BAD_ANSWER,
        'not a finite number',
    ),
    ModelFault(
        'ten_mb',
        'a 10 MB answer',
        'none',
        {'answer': '[(500, 500, 1.0), ' * (TEN_MB // 18)},
        ERROR_BAD_ANSWER,
        'limit',
    ),
    ModelFault(
        'ten_thousand_points',
        '10 000 points',
        'none',
        {'answer': _many_points(10_000)},
        ERROR_BAD_ANSWER,
        'limit',
    ),
    ModelFault(
        'answer_2d',
        'a 2D answer when 3D was asked',
        'none',
        {'answer': GOOD_2D},
        ERROR_BAD_ANSWER,
        'no depth',
    ),
)


@dataclass
class FaultResult:
    """What one fault did.

    Attributes:
        fault: the fault's name.
        backend: the backend's name.
        error_code: the code the request ended with.
        error_name: its name.
        message: the error message.
        elapsed_s: how long the request took, seconds.
        limit_s: how long it was allowed to take (the backend's worst case + 1 s), seconds.
        recovered: the next request, with the fault gone, succeeded.
        handled: right code, message names the fault, within the limit, and recovered.
        problem: why ``handled`` is False ('' when handled).
    """

    fault: str
    backend: str
    error_code: int
    error_name: str
    message: str
    elapsed_s: float
    limit_s: float
    recovered: bool
    handled: bool
    problem: str = ''


def fault_frame(stamp_s: float = 0.0) -> Frame:
    """A small synthetic RGB-D frame: a flat wall 1 m in front of the camera."""
    rgb = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    depth = np.full((HEIGHT, WIDTH), 1000, np.uint16)
    return Frame(rgb, depth, None, K.copy(), stamp_s, 'camera_color_optical_frame')


def make_service(backend: Any) -> TraceService:
    """A :class:`TraceService` with fused depth and the default filter, frames never stale."""
    return TraceService(
        backend,
        options=PipelineOptions(lift=LiftOptions('fused'), filter=FilterOptions()),
        max_frame_age_s=0.0,
    )


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


def backend_url(backend: str, server_url: str) -> str:
    """The URL a backend is given for a server at ``server_url``."""
    return server_url + ('/v1' if backend == 'openai' else '')


def try_model_fault(
    fault: ModelFault,
    backend: str,
    *,
    timeout_s: float = 0.5,
    retries: int = 0,
    slack_s: float = 1.0,
) -> FaultResult:
    """Run one fault for one backend through :class:`TraceService`, then check recovery.

    Args:
        fault: the fault.
        backend: ``'robotracer_http'`` or ``'openai'``.
        timeout_s: the backend's per-attempt timeout, seconds.
        retries: the backend's retries.
        slack_s: time allowed beyond the backend's worst case, seconds.

    Returns:
        The result; never raises for the fault itself.
    """
    limit = worst_case_s(timeout_s, retries) + slack_s
    port = free_port() if fault.kind == 'down' else 0
    request = TraceRequest('put the red cup on the plate', mode_3d=fault.mode_3d)
    frame = fault_frame()

    def ask(url: str) -> tuple[Any, float]:
        b = make_backend(
            backend, url=backend_url(backend, url), timeout_s=timeout_s, retries=retries
        )
        t0 = time.monotonic()
        out = make_service(b).handle(request, frame)
        return out, time.monotonic() - t0

    if fault.kind == 'down':
        out, elapsed = ask(f'http://127.0.0.1:{port}')
        with FaultServer(port=port) as server:
            again, _ = ask(server.url)
    else:
        with FaultServer() as server:
            server.set_fault(fault.kind, **fault.params)
            out, elapsed = ask(server.url)
            server.clear_fault()
            again, _ = ask(server.url)
    problems = []
    if out.error_code != fault.error_code:
        problems.append(
            f'error {ERROR_NAMES.get(out.error_code, out.error_code)}, expected '
            f'{ERROR_NAMES[fault.error_code]}'
        )
    if fault.message.lower() not in out.error_msg.lower():
        problems.append(f'message lacks {fault.message!r}')
    if not elapsed <= limit:
        problems.append(f'took {elapsed:.2f} s, limit {limit:.2f} s')
    recovered = bool(again.success and again.error_code == ERROR_NONE)
    if not recovered:
        problems.append(f'the next request failed: {again.error_msg}')
    return FaultResult(
        fault=fault.name,
        backend=backend,
        error_code=out.error_code,
        error_name=ERROR_NAMES.get(out.error_code, str(out.error_code)),
        message=out.error_msg,
        elapsed_s=elapsed,
        limit_s=limit,
        recovered=recovered,
        handled=not problems,
        problem='; '.join(problems),
    )


def run_model_faults(
    backends: tuple[str, ...] = HTTP_BACKENDS,
    faults: tuple[ModelFault, ...] = MODEL_FAULTS,
    *,
    timeout_s: float = 0.5,
    retries: int = 0,
) -> dict[str, Any]:
    """Try every fault for every backend.

    Args:
        backends: backend names.
        faults: the faults.
        timeout_s: per-attempt timeout given to the backends, seconds.
        retries: retries given to the backends.

    Returns:
        ``{"tried", "handled", "max_elapsed_s", "results": [FaultResult as dict, ...]}``.
    """
    results = [
        try_model_fault(f, b, timeout_s=timeout_s, retries=retries)
        for b in backends
        for f in faults
        if f.applies_to(b)
    ]
    return {
        'tried': len(results),
        'handled': sum(r.handled for r in results),
        'max_elapsed_s': max((r.elapsed_s for r in results), default=math.nan),
        'results': [asdict(r) for r in results],
    }
