"""Security of the perception side (issue 11, item 10): keys, URLs, redirects, bind addresses.

API keys come only from the environment and never appear in a log line, an error message, an
exception (chained ones included) or an answer that could be recorded, even when the server
echoes them back. Servers the project starts bind 127.0.0.1 unless configured otherwise (the
oracle's own tests cover its bind address and shared-folder jail).
"""

from __future__ import annotations

import logging
from pathlib import Path
import re
import traceback

import pytest

from robotracer_ros.backends import BackendError, make_backend
from robotracer_ros.testing.fault_server import FaultServer
from robotracer_ros.testing.model_faults import fault_frame, make_service
from robotracer_ros.trace_service import ERROR_BAD_ANSWER, ERROR_MODEL, TraceRequest

KEY = 'sk-test-Zq81mTOPSECRET4471'
ENV = 'ROBOTRACER_TEST_API_KEY'
FRAME = fault_frame()
SRC = Path(__file__).resolve().parents[2]  # src/


@pytest.fixture
def server():
    with FaultServer() as s:
        yield s


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    return KEY


def _all_text(exc: BaseException) -> str:
    return ''.join(traceback.format_exception(exc))


@pytest.mark.parametrize('status', [401, 403, 500, 503])
def test_a_key_echoed_by_the_server_never_reaches_errors_or_logs(server, key, caplog, status):
    caplog.set_level(logging.DEBUG)
    server.set_fault('echo_key', status=status)
    backend = make_backend('openai', url=server.url + '/v1', api_key_env=ENV, retries=1)
    with pytest.raises(BackendError) as info:
        backend(FRAME.rgb, None, FRAME.K, 'put the cup on the plate')
    assert server.requests[0]['headers']['Authorization'] == f'Bearer {KEY}'  # it was sent
    assert f'HTTP {status}' in str(info.value) and '[redacted]' in str(info.value)
    assert KEY not in _all_text(info.value)  # message, cause chain and traceback
    assert KEY not in caplog.text
    if status >= 500:
        assert 'retrying' in caplog.text  # the retry was logged, without the key
    out = make_service(backend).handle(TraceRequest('put the cup on the plate'), FRAME)
    assert out.error_code == ERROR_MODEL and KEY not in out.error_msg


def test_a_key_echoed_in_an_answer_is_scrubbed_before_it_can_be_recorded(server, key):
    backend = make_backend('openai', url=server.url + '/v1', api_key_env=ENV)
    server.set_fault('none', answer=f'[(500, 500, 1.0), (560, 480, 0.98)] (auth: Bearer {KEY})')
    answer = backend(FRAME.rgb, None, FRAME.K, 'go')
    assert KEY not in answer.text and '[redacted]' in answer.text
    server.set_fault('none', answer=f'Your key {KEY} is not allowed to see this image.')
    out = make_service(backend).handle(TraceRequest('go'), FRAME)
    assert out.error_code == ERROR_BAD_ANSWER
    assert KEY not in out.error_msg and KEY not in out.answer.text
    server.set_fault('no_answer')
    out = make_service(backend).handle(TraceRequest('go'), FRAME)
    assert KEY not in out.error_msg


def test_keys_come_only_from_the_environment(server, monkeypatch):
    with pytest.raises(BackendError, match='does not take option') as info:
        make_backend('openai', url=server.url, api_key=KEY)
    assert KEY not in str(info.value)
    for url in (f'http://user:{KEY}@127.0.0.1:{server.port}/v1', f'http://{KEY}@127.0.0.1:1'):
        for name in ('openai', 'robotracer_http'):
            with pytest.raises(BackendError, match='carries credentials') as info:
                make_backend(name, url=url)
            assert KEY not in _all_text(info.value)
    monkeypatch.setenv(ENV, KEY + '\r\nX-Injected: 1')
    backend = make_backend('openai', url=server.url + '/v1', api_key_env=ENV)
    with pytest.raises(BackendError, match='cannot carry') as info:
        backend(FRAME.rgb, None, FRAME.K, 'go')
    assert KEY not in _all_text(info.value)
    assert server.requests == []  # nothing was sent


def test_robotracer_http_sends_no_credentials(server, monkeypatch):
    monkeypatch.setenv('OPENAI_API_KEY', KEY)
    make_backend('robotracer_http', url=server.url)(FRAME.rgb, None, FRAME.K, 'go')
    headers = server.requests[0]['headers']
    assert 'Authorization' not in headers and KEY not in repr(headers)


def test_redirects_are_not_followed_so_the_key_stays_with_its_host(key):
    with FaultServer() as elsewhere, FaultServer() as server:
        server.set_fault(
            'status',
            status=307,
            body=b'{}',
            headers={'Location': elsewhere.url + '/v1/chat/completions?leak=1'},
        )
        backend = make_backend('openai', url=server.url + '/v1', api_key_env=ENV)
        with pytest.raises(BackendError, match='redirects are not followed') as info:
            backend(FRAME.rgb, None, FRAME.K, 'go')
    assert elsewhere.requests == []  # the key never went to the other host
    assert info.value.status == 307 and 'leak' not in str(info.value)


def test_urls_in_messages_carry_no_query_string(server):
    backend = make_backend('robotracer_http', url=server.url + '/query?token=abc123', retries=0)
    server.set_fault('status', status=500)
    with pytest.raises(BackendError) as info:
        backend(FRAME.rgb, None, FRAME.K, 'go')
    assert 'abc123' not in str(info.value) and server.url in str(info.value)


def test_test_servers_bind_loopback(server):
    assert server._httpd.server_address[0] == '127.0.0.1'


def test_no_server_in_the_sources_binds_all_interfaces_by_default():
    """Every bind address in the product packages is loopback unless a parameter says else."""
    bad = []
    for pkg in ('robotracer_ros', 'robotracer_sim', 'trace_executor'):
        for path in (SRC / pkg / pkg).rglob('*.py'):
            text = path.read_text(encoding='utf-8')
            for pattern in (r"['\"]0\.0\.0\.0['\"]", r"bind\(\(\s*['\"]{2}", r"\(\(['\"]{2},"):
                if re.search(pattern, text):
                    bad.append(f'{path.relative_to(SRC)}: {pattern}')
    assert bad == []
