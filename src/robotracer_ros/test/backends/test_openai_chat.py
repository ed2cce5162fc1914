"""The openai backend against a real HTTP server on 127.0.0.1: request, limits, reasoning."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from robotracer_ros.backends import BackendError, make_backend
from robotracer_ros.pipeline import answer_to_trace
from robotracer_ros.prompts import vlm_json_prompt
from robotracer_ros.testing.model_server import ModelServer, Reply, free_port

K = np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]])
RGB = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
DEPTH_MM = np.random.default_rng(2).integers(300, 3000, (480, 640), dtype=np.uint16)
TRACE = '[[500, 500, 1.0], [600, 450, 0.9]]'


@pytest.fixture
def server():
    with ModelServer() as s:
        yield s


def ask(reply: Reply, **options):
    with ModelServer(lambda req: reply) as s:
        backend = make_backend('openai', url=s.url + '/v1', **options)
        return backend(RGB, None, K, 'move the cup'), s.requests[0]


def test_openai_backend_sends_image_prompt_and_key_and_reads_fenced_json(monkeypatch):
    answer = f'Here is the trace:\n```json\n{TRACE}\n```'
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
    assert not ans.truncated and ans.reasoning == ''
    tr = answer_to_trace(ans.text, width=640, height=480, K=K)
    np.testing.assert_allclose(tr.points_cam[0], [0, 0, 1.0])


# ------------------------------------------------------------------ generation limits


def test_the_default_token_limit_leaves_room_for_reasoning():
    _, req = ask(Reply(TRACE))
    assert req['json']['max_tokens'] == 8192 and req['json']['temperature'] == 0.0
    assert 'max_completion_tokens' not in req['json']


def test_the_limits_come_from_the_model_config():
    _, req = ask(
        Reply(TRACE), max_tokens=32000, max_tokens_field='max_completion_tokens', temperature=-1.0
    )
    assert req['json']['max_completion_tokens'] == 32000
    assert 'max_tokens' not in req['json'] and 'temperature' not in req['json']
    _, req = ask(Reply(TRACE), max_tokens=0, temperature=0.7)
    assert 'max_tokens' not in req['json'] and req['json']['temperature'] == 0.7


def test_bad_limits_are_refused():
    with pytest.raises(BackendError, match='max_tokens must be'):
        make_backend('openai', max_tokens=-5)
    with pytest.raises(BackendError, match='max_tokens_field'):
        make_backend('openai', max_tokens_field='tokens')


def test_a_limit_the_server_refuses_says_which_setting_to_change():
    body = json.dumps(
        {
            'object': 'error',
            'message': "'max_tokens' or 'max_completion_tokens' is too large: 8192. This model's "
            'maximum context length is 8192 tokens and your request has 1200 input tokens',
        }
    ).encode()
    with pytest.raises(BackendError, match='lower max_tokens in the model config') as info:
        ask(Reply(status=400, body=body))
    assert info.value.kind == 'http_status' and 'max-model-len' in str(info.value)


# ------------------------------------------------------------------ reasoning replies


@pytest.mark.parametrize('field', ['reasoning_content', 'reasoning'])
def test_separate_reasoning_is_kept_apart_and_the_content_is_the_answer(field):
    thought = 'The cup is at [(1, 1, 0.5), (2, 2, 0.5), (3, 3, 0.5)], so...'
    ans, _ = ask(Reply(TRACE, reasoning=thought, reasoning_field=field))
    assert ans.text == TRACE and ans.reasoning == thought
    tr = answer_to_trace(ans.text, width=640, height=480, K=K)
    assert len(tr.points_cam) == 2


def test_think_text_in_the_content_is_skipped_when_parsing():
    content = '<think>\nMaybe [[1, 1, 0.5], [2, 2, 0.5], [3, 3, 0.5]]?\n</think>\n\n' + TRACE
    ans, _ = ask(Reply(content))
    tr = answer_to_trace(ans.text, width=640, height=480, K=K)
    np.testing.assert_allclose(tr.pixels, [[320, 240], [384, 216]])
    assert 'reasoning' in tr.note


def test_a_model_that_spent_its_limit_on_reasoning_is_a_model_error():
    reply = Reply(None, reasoning='Let me think. ' * 50, finish_reason='length')
    with pytest.raises(BackendError) as info:
        ask(reply, max_tokens=512)
    msg = str(info.value)
    assert info.value.kind == 'model' and 'token limit (max_tokens=512' in msg
    assert '700 characters of reasoning' in msg and 'raise max_tokens' in msg


def test_reasoning_without_any_content_is_a_bad_response_naming_the_parser():
    with pytest.raises(BackendError, match='only reasoning.*reasoning-parser') as info:
        ask(Reply(None, reasoning=f'the answer is {TRACE}'))
    assert info.value.kind == 'bad_response'


def test_an_answer_cut_off_at_the_limit_is_marked_truncated():
    ans, _ = ask(Reply('[[500, 500, 1.0], [600, 45', finish_reason='length'))
    assert ans.truncated


def test_content_parts_are_joined():
    body = json.dumps(
        {
            'choices': [
                {
                    'finish_reason': 'stop',
                    'message': {
                        'content': [
                            {'type': 'text', 'text': '[[500, 500, 1.0], '},
                            {'text': '[1, 2, 1]]'},
                        ]
                    },
                }
            ]
        }
    ).encode()
    ans, _ = ask(Reply(body=body))
    assert ans.text == '[[500, 500, 1.0], [1, 2, 1]]'


def test_null_content_without_reasoning_is_a_bad_response():
    with pytest.raises(BackendError, match='content of type NoneType') as info:
        ask(Reply(None))
    assert info.value.kind == 'bad_response'


# ------------------------------------------------------------------ errors and secrets


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


def test_a_key_echoed_in_the_reasoning_is_scrubbed(monkeypatch):
    monkeypatch.setenv('TEST_VLM_KEY', 'sk-secret-789')
    ans, _ = ask(Reply(TRACE, reasoning='my key is sk-secret-789'), api_key_env='TEST_VLM_KEY')
    assert 'sk-secret-789' not in ans.reasoning


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
