"""Fuzzing the answer parser and each backend's response handling (issue 11, item 8).

Normal size here (a few hundred inputs per target, seconds); the long mode is the same campaign
with ``ROBOTRACER_FUZZ_EXAMPLES=100000`` (``bench/reliability.py`` runs it). Every input must
end as a valid trace or a clean error: no other exception, no hang.
"""

from __future__ import annotations

import json
import socket
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import pytest

from robotracer_ros.backends import BackendError, make_backend
from robotracer_ros.parsing import TraceParseError, parse_trace
from robotracer_ros.testing.fault_server import FaultServer
from robotracer_ros.testing.fuzz import (
    ENV_EXAMPLES,
    answer_texts,
    check_input,
    examples_from_env,
    mutants,
    response_bodies,
    run_fuzz_campaign,
)
from robotracer_ros.testing.model_faults import fault_frame

pytestmark = pytest.mark.timeout(1800)  # the long mode, when selected, takes minutes
FAST = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FAST
@given(answer_texts(), st.booleans())
def test_parser_gives_a_valid_trace_or_a_clean_error(text, expect_depth):
    t0 = time.perf_counter()
    assert check_input('parser', text, expect_depth) in ('valid', 'clean_error')
    assert time.perf_counter() - t0 < 1.0


@FAST
@given(answer_texts(), st.booleans())
def test_parse_lift_filter_gives_a_valid_trace_or_a_clean_error(text, expect_depth):
    assert check_input('pipeline', text, expect_depth) in ('valid', 'clean_error')


@FAST
@given(response_bodies('robotracer_http'), st.booleans())
def test_robotracer_http_response_handling(body, expect_depth):
    assert check_input('robotracer_http', body, expect_depth) in ('valid', 'clean_error')


@FAST
@given(response_bodies('openai'), st.booleans())
def test_openai_response_handling(body, expect_depth):
    assert check_input('openai', body, expect_depth) in ('valid', 'clean_error')


@pytest.fixture(scope='module')
def fault_server():
    with FaultServer() as s:
        yield s


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    backend=st.sampled_from(['robotracer_http', 'openai']),
    status=st.sampled_from([200, 200, 200, 201, 204, 301, 400, 404, 429, 500, 502]),
    data=st.data(),
)
def test_backends_over_real_http_answer_or_raise_a_backend_error(
    fault_server, backend, status, data
):
    body = data.draw(response_bodies(backend))
    fault_server.set_fault('raw', status=status, body=body, content_type='application/json')
    url = fault_server.url + ('/v1' if backend == 'openai' else '')
    b = make_backend(backend, url=url, timeout_s=2.0, retries=0)
    frame = fault_frame()
    t0 = time.monotonic()
    try:
        answer = b(frame.rgb, None, frame.K, 'put the cup on the plate')
    except BackendError as exc:
        assert str(exc) and str(exc).isprintable()
    else:
        try:
            parse_trace(answer.text)
        except TraceParseError as exc:
            assert str(exc).isprintable()
    finally:
        fault_server.clear_fault()
    assert time.monotonic() - t0 < 3.0


def test_mutants_are_deterministic_and_keep_the_input_type():
    import random

    a = mutants('[(1, 2, 0.5)]', random.Random(7), 20)
    assert a == mutants('[(1, 2, 0.5)]', random.Random(7), 20)
    assert all(isinstance(m, bytes) for m in mutants(b'{"a": 1}', random.Random(1), 20))


def test_fuzz_campaign_no_crash_no_hang():
    """Normal size in make test; ROBOTRACER_FUZZ_EXAMPLES=100000 selects the long mode."""
    n = examples_from_env(400)
    out = run_fuzz_campaign(n, seed=11)
    print(json.dumps({k: v for k, v in out.items() if k != 'per_target'}))
    assert out['inputs'] >= n
    assert out['crashes'] == 0 and out['hangs'] == 0, out['crash_examples']
    assert out['valid'] > 0 and out['clean_errors'] > 0
    assert out['valid'] + out['clean_errors'] == out['inputs']
    assert all(t['inputs'] > 0 for t in out['per_target'].values())
    json.dumps(out)


def test_examples_from_env(monkeypatch):
    monkeypatch.setenv(ENV_EXAMPLES, '1e5')
    assert examples_from_env() == 100_000
    monkeypatch.setenv(ENV_EXAMPLES, 'lots')
    assert examples_from_env(7) == 7
    monkeypatch.delenv(ENV_EXAMPLES)
    assert examples_from_env(9) == 9


def test_the_fuzz_servers_bind_loopback_only(fault_server):
    assert fault_server.host == '127.0.0.1'
    assert fault_server._httpd.server_address[0] == '127.0.0.1'
    with socket.create_connection(('127.0.0.1', fault_server.port), timeout=2):
        pass
