"""Every HTTP backend against real HTTP servers on 127.0.0.1; replay; make_backend."""

from __future__ import annotations

import json
import logging
import os
import time

import numpy as np
import pytest

from robotracer_ros.backends import BackendError, make_backend
from robotracer_ros.pipeline import answer_to_trace
from robotracer_ros.prompts import robotracer_prompt, vlm_json_prompt
from robotracer_ros.testing.model_server import GOOD_3D, ModelServer, Reply, free_port

K = np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]])
RGB = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
DEPTH_MM = np.random.default_rng(2).integers(300, 3000, (480, 640), dtype=np.uint16)
DEPTH_M = DEPTH_MM.astype(np.float32) / 1000.0


@pytest.fixture
def server():
    with ModelServer() as s:
        yield s


# ------------------------------------------------------------------ robotracer_http


def test_base64_form_sends_the_exact_images_prompt_and_intrinsics(server):
    backend = make_backend('robotracer_http', url=server.url, transport='base64')
    ans = backend(RGB, DEPTH_M, K, 'put the red cup on the plate')
    assert ans.text == GOOD_3D and ans.model_id == 'robotracer_http:RoboTracer'
    assert ans.elapsed_s > 0
    req = server.requests[0]
    assert req['path'] == '/query' and 'decode_error' not in req
    np.testing.assert_array_equal(req['rgb'], RGB)  # colour order and pixels preserved
    np.testing.assert_array_equal(req['depth_mm'], DEPTH_MM)  # metres -> 16-bit millimetres
    np.testing.assert_allclose(req['K'], K)
    assert req['text'] == robotracer_prompt('put the red cup on the plate')
    assert req['json']['enable_depth'] == 1 and req['json']['enable_spatial'] == 1
    # the answer lifts to the expected first point (u=320, v=240 -> on the axis at 1 m)
    tr = answer_to_trace(ans.text, width=640, height=480, K=K, depth=DEPTH_MM)
    assert tr.points_cam.shape == (4, 3)


def test_path_form_writes_pngs_the_server_reads_and_cleans_them_up(server, tmp_path):
    backend = make_backend(
        'robotracer_http', url=server.url + '/query', transport='paths', shared_dir=str(tmp_path)
    )
    ans = backend(RGB, DEPTH_MM, K, 'wipe the table', mode_3d=False)
    assert ans.text == GOOD_3D
    req = server.requests[0]
    assert req['path'] == '/query' and 'decode_error' not in req
    assert set(req['json']) >= {
        'text',
        'image_paths',
        'depth_z_paths',
        'intrinsics',
        'enable_spatial',
    }
    assert req['json']['image_paths'][0].startswith(str(tmp_path))
    np.testing.assert_array_equal(req['rgb'], RGB)
    np.testing.assert_array_equal(req['depth_mm'], DEPTH_MM)
    assert req['text'] == robotracer_prompt('wipe the table', mode_3d=False)
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_without_depth_no_depth_is_sent(server):
    backend = make_backend('robotracer_http', url=server.url)
    backend(RGB, None, K, 'x')
    assert 'depth_url' not in server.requests[0]['json']


def test_server_down_says_so():
    url = f'http://127.0.0.1:{free_port()}'
    backend = make_backend('robotracer_http', url=url, retries=1)
    with pytest.raises(BackendError) as info:
        backend(RGB, None, K, 'x')
    assert info.value.kind == 'server_down'
    assert 'connection refused' in str(info.value) and url in str(info.value)
    assert '2 attempt' in str(info.value)


def test_slow_server_times_out_within_the_bounded_retries():
    with ModelServer(lambda req: Reply(delay_s=2.0)) as s:
        backend = make_backend('robotracer_http', url=s.url, timeout_s=0.3, retries=1)
        t0 = time.monotonic()
        with pytest.raises(BackendError) as info:
            backend(RGB, None, K, 'x')
        elapsed = time.monotonic() - t0
    assert info.value.kind == 'timeout' and 'within 0.3 s' in str(info.value)
    assert elapsed < 1.5  # 2 attempts x 0.3 s + backoff, not the server's 2 s
    assert len(s.requests) == 2


def test_http_500_is_retried_then_reported_with_the_status_and_body():
    with ModelServer(lambda req: Reply(status=500, body=b'{"detail": "CUDA out of memory"}')) as s:
        backend = make_backend('robotracer_http', url=s.url, retries=2)
        with pytest.raises(BackendError) as info:
            backend(RGB, None, K, 'x')
    assert info.value.kind == 'http_status' and info.value.status == 500
    assert 'HTTP 500' in str(info.value) and 'CUDA out of memory' in str(info.value)
    assert len(s.requests) == 3


def test_http_4xx_is_not_retried():
    with ModelServer(lambda req: Reply(status=422, body=b'{"detail": "bad field"}')) as s:
        backend = make_backend('robotracer_http', url=s.url, retries=3)
        with pytest.raises(BackendError, match='HTTP 422'):
            backend(RGB, None, K, 'x')
    assert len(s.requests) == 1


def test_non_json_answer_is_reported_with_what_came_back():
    with ModelServer(lambda req: Reply(body=b'<html>502 Bad Gateway</html>')) as s:
        backend = make_backend('robotracer_http', url=s.url, retries=2)
        with pytest.raises(BackendError) as info:
            backend(RGB, None, K, 'x')
    assert info.value.kind == 'non_json' and '502 Bad Gateway' in str(info.value)
    assert len(s.requests) == 1


def test_server_side_failure_result_0_is_a_model_error():
    with ModelServer(lambda req: Reply(answer='model not loaded', result=0)) as s:
        backend = make_backend('robotracer_http', url=s.url)
        with pytest.raises(BackendError, match='result=0: model not loaded') as info:
            backend(RGB, None, K, 'x')
    assert info.value.kind == 'model'


def test_bad_configuration_is_rejected_before_any_request(tmp_path):
    with pytest.raises(BackendError, match='transport'):
        make_backend('robotracer_http', transport='ftp')
    with pytest.raises(BackendError, match='shared_dir'):
        make_backend('robotracer_http', transport='paths', shared_dir=str(tmp_path / 'no'))
    with pytest.raises(BackendError, match="unknown backend 'gemini'"):
        make_backend('gemini')
    with pytest.raises(BackendError, match='does not take option'):
        make_backend('openai', transport='paths')


# ------------------------------------------------------------------ openai


def test_openai_backend_sends_image_prompt_and_key_and_reads_fenced_json(monkeypatch):
    answer = 'Here is the trace:\n```json\n[[500, 500, 1.0], [600, 450, 0.9]]\n```'
    monkeypatch.setenv('TEST_VLM_KEY', 'sk-secret-123')
    with ModelServer(lambda req: Reply(answer=answer)) as s:
        backend = make_backend(
            'openai',
            url=s.url + '/v1',
            model='Qwen/Qwen3-VL-8B-Instruct',
            api_key_env='TEST_VLM_KEY',
        )
        ans = backend(RGB, DEPTH_MM, K, 'move the cup')
    req = s.requests[0]
    assert req['path'] == '/v1/chat/completions'
    assert req['headers']['Authorization'] == 'Bearer sk-secret-123'
    assert req['json']['model'] == 'Qwen/Qwen3-VL-8B-Instruct'
    assert req['text'] == vlm_json_prompt('move the cup')
    np.testing.assert_array_equal(req['rgb'], RGB)
    assert ans.text == answer and ans.model_id == 'openai:Qwen/Qwen3-VL-8B-Instruct'
    tr = answer_to_trace(ans.text, width=640, height=480, K=K)
    np.testing.assert_allclose(tr.points_cam[0], [0, 0, 1.0])


def test_openai_key_never_appears_in_errors_or_logs(monkeypatch, caplog):
    monkeypatch.setenv('TEST_VLM_KEY', 'sk-secret-456')
    caplog.set_level(logging.DEBUG)
    with ModelServer(lambda req: Reply(status=503, body=b'overloaded')) as s:
        backend = make_backend('openai', url=s.url + '/v1', api_key_env='TEST_VLM_KEY', retries=1)
        with pytest.raises(BackendError) as info:
            backend(RGB, None, K, 'x')
    assert 'HTTP 503' in str(info.value)
    assert 'sk-secret-456' not in str(info.value)
    assert 'sk-secret-456' not in caplog.text
    assert 'retrying' in caplog.text  # the retry was logged (without the key)


def test_openai_401_without_a_key_names_the_variable(monkeypatch):
    monkeypatch.delenv('TEST_VLM_KEY', raising=False)
    with ModelServer(lambda req: Reply(status=401, body=b'{"error": "no key"}')) as s:
        backend = make_backend('openai', url=s.url + '/v1', api_key_env='TEST_VLM_KEY')
        with pytest.raises(BackendError, match='set the environment variable TEST_VLM_KEY'):
            backend(RGB, None, K, 'x')
    assert 'Authorization' not in s.requests[0]['headers']


def test_openai_reply_without_choices_is_a_bad_response():
    with ModelServer(lambda req: Reply(body=json.dumps({'error': 'x'}).encode())) as s:
        backend = make_backend('openai', url=s.url)
        with pytest.raises(BackendError, match='without choices') as info:
            backend(RGB, None, K, 'x')
    assert info.value.kind == 'bad_response'


def test_openai_jpeg_option_sends_a_jpeg(server):
    backend = make_backend('openai', url=server.url, image_format='jpeg')
    backend(RGB, None, K, 'x')
    url = server.requests[0]['json']['messages'][0]['content'][0]['image_url']['url']
    assert url.startswith('data:image/jpeg;base64,')
    assert server.requests[0]['rgb'].shape == RGB.shape


def test_openai_server_down():
    backend = make_backend('openai', url=f'http://127.0.0.1:{free_port()}/v1', retries=0)
    with pytest.raises(BackendError, match='connection refused'):
        backend(RGB, None, K, 'x')


# ------------------------------------------------------------------ replay


def test_replay_answers_by_instruction_and_in_sequence(tmp_path):
    p = tmp_path / 'answers.jsonl'
    lines = [
        {
            'instruction': 'Put the cup on the plate',
            'answer': '[(1, 2, 0.5), (3, 4, 0.5)]',
            'model_id': 'robotracer_http:RoboTracer',
            'elapsed_s': 0.8,
        },
        {'instruction': 'wipe', 'answer': '[(5, 6), (7, 8)]'},
    ]
    p.write_text('\n'.join(json.dumps(x) for x in lines) + '\n\n')
    by_instr = make_backend('replay', path=str(p))
    a = by_instr(RGB, None, K, '  put the cup  on the plate')
    assert a.text == lines[0]['answer'] and a.elapsed_s == 0.8
    assert a.model_id == 'robotracer_http:RoboTracer'
    with pytest.raises(BackendError, match="no answer for 'dance'"):
        by_instr(RGB, None, K, 'dance')
    seq = make_backend('replay', path=str(p), match='sequence', loop=False)
    assert [seq(RGB, None, K, 'q').text for _ in range(2)] == [x['answer'] for x in lines]
    with pytest.raises(BackendError, match='exhausted'):
        seq(RGB, None, K, 'q')


def test_replay_file_problems_name_the_line(tmp_path):
    p = tmp_path / 'bad.jsonl'
    p.write_text('{"answer": "[(1, 2)]"}\n{not json}\n')
    with pytest.raises(BackendError, match='bad.jsonl:2: not JSON'):
        make_backend('replay', path=str(p))
    with pytest.raises(BackendError, match='cannot read replay file'):
        make_backend('replay', path=os.fspath(tmp_path / 'missing.jsonl'))
