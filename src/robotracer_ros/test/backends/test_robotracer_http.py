"""robotracer_http against real HTTP servers on 127.0.0.1: the authors' bytes, modes, errors.

The reference is the authors' own client, RoboTracer ``Evaluation/query_model.py``
(github.com/Zhoues/RoboTracer at 11f09e15, Apache-2.0): :func:`authors_query_server` and
:func:`authors_query_server_spatial_encoder` below build its ``request_data`` exactly as it does,
and :func:`requests_json_body` encodes it as ``requests.post(json=...)`` does (``requests``
2.x, ``models.py``: ``complexjson.dumps(json, allow_nan=False)`` as UTF-8; checked once against
requests 2.32 itself -- it is not installed here).
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from robotracer_ros import images
from robotracer_ros.backends import BackendError, make_backend
from robotracer_ros.backends._http import encode_json
from robotracer_ros.backends.robotracer_http import INPUTS, inputs_send_depth
from robotracer_ros.pipeline import answer_to_trace
from robotracer_ros.prompts import robotracer_prompt
from robotracer_ros.testing.model_server import (
    FLASK_ERROR_PAGES,
    FLASK_HTML,
    GOOD_3D,
    ModelServer,
    Reply,
    free_port,
)

K = np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]])
RGB = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
DEPTH_MM = np.random.default_rng(2).integers(300, 3000, (480, 640), dtype=np.uint16)
DEPTH_M = DEPTH_MM.astype(np.float32) / 1000.0
INSTRUCTION = 'put the "red" cup on the plate – gently'


# ------------------------------------------------------------------ the authors' client


def encode_image(image_path: str) -> str:  # query_model.py, verbatim
    with open(image_path, 'rb') as image_file:
        return base64.b64encode(image_file.read()).decode('utf-8')


def authors_query_server(image_paths, prompt, enable_depth=0, depth_paths=None) -> dict:
    """``query_server``'s request body (the base64 form), as it builds it."""
    image_url_list = []
    for path in image_paths:
        image_url_list.append(encode_image(path))
    depth_url_list = []
    if depth_paths is not None:
        if isinstance(depth_paths, str):
            depth_url_list = [encode_image(depth_paths)]
        elif isinstance(depth_paths, list):
            depth_url_list = [encode_image(dpth) for dpth in depth_paths]
    return {
        'image_url': image_url_list,
        'depth_url': depth_url_list,
        'enable_depth': enable_depth,
        'text': prompt,
    }


def authors_query_server_spatial_encoder(
    image_paths, prompt, enable_spatial=0, intrinsics=None, depth_z_paths=None
) -> dict:
    """``query_server_spatial_encoder``'s request body (the paths form), as it builds it."""
    return {
        'image_paths': image_paths,
        'depth_z_paths': depth_z_paths,
        'intrinsics': intrinsics,
        'enable_spatial': enable_spatial,
        'text': prompt,
    }


def requests_json_body(request_data: dict) -> bytes:
    """What ``requests.post(url, json=request_data)`` sends."""
    return json.dumps(request_data, allow_nan=False).encode('utf-8')


@pytest.fixture
def server():
    with ModelServer() as s:
        yield s


# ------------------------------------------------------------------ the same bytes


@pytest.mark.parametrize(
    ('inputs', 'enable_depth', 'with_depth'),
    [('rgbd', 1, True), ('rgb_spatial', 1, False), ('rgb', 0, False)],
)
def test_base64_form_is_byte_for_byte_the_authors_client(
    server, tmp_path, inputs, enable_depth, with_depth
):
    backend = make_backend('robotracer_http', url=server.url, inputs=inputs)
    assert backend.transport == 'base64'  # the default: what the released servers read
    ans = backend(RGB, DEPTH_M, K, INSTRUCTION)
    assert ans.text == GOOD_3D and ans.model_id == 'robotracer_http:RoboTracer'
    req = server.requests[0]
    assert req['path'] == '/query' and 'decode_error' not in req
    # the authors' client, given the same PNG files
    (tmp_path / 'rgb.png').write_bytes(images.encode_png(RGB, compression=0))
    (tmp_path / 'depth.png').write_bytes(images.encode_png(DEPTH_MM, compression=0))
    want = authors_query_server(
        [str(tmp_path / 'rgb.png')],
        robotracer_prompt(INSTRUCTION),
        enable_depth=enable_depth,
        depth_paths=[str(tmp_path / 'depth.png')] if with_depth else None,
    )
    assert req['body'] == requests_json_body(want)
    assert req['headers']['Content-Type'] == 'application/json'
    # raw base64 (no data: prefix), decoded the servers' way: colour and 16-bit mm depth intact
    assert not req['json']['image_url'][0].startswith('data:')
    np.testing.assert_array_equal(req['rgb'], RGB)
    if with_depth:
        np.testing.assert_array_equal(req['depth_mm'], DEPTH_MM)
    else:
        assert 'depth_mm' not in req and req['json']['depth_url'] == []


@pytest.mark.parametrize('transport', ['base64', 'paths'])
def test_the_server_decodes_exactly_the_frames_pixels_the_authors_way(tmp_path, transport):
    """What RoboTracer's ``API/Qwen3VL.py`` does with a request: ``base64.b64decode`` of the raw
    string into a .png file (paths form: the file itself), ``PIL.Image.open(...).convert('RGB')``;
    the 16-bit millimetre depth PNG read by PIL as well. Every pixel must come back."""
    from PIL import Image

    backend = make_backend(
        'robotracer_http', transport=transport, shared_dir=str(tmp_path), inputs='rgbd'
    )
    payload, files = backend.build_payload(RGB, DEPTH_M, K, INSTRUCTION)
    if transport == 'base64':
        rgb_file, depth_file = tmp_path / 'image.png', tmp_path / 'depth.png'
        rgb_file.write_bytes(base64.b64decode(payload['image_url'][0]))
        depth_file.write_bytes(base64.b64decode(payload['depth_url'][0]))
        assert json.loads(encode_json(payload)) == payload  # the body carries the same text
    else:
        rgb_file, depth_file = payload['image_paths'][0], payload['depth_z_paths'][0]
    with Image.open(rgb_file) as im:
        np.testing.assert_array_equal(np.array(im.convert('RGB')), RGB)
    with Image.open(depth_file) as im:
        assert im.mode == 'I;16'
        np.testing.assert_array_equal(np.array(im), DEPTH_MM)
    backend._cleanup(files)


@pytest.mark.parametrize('inputs', INPUTS)
def test_paths_form_is_byte_for_byte_the_authors_client(server, tmp_path, inputs):
    shared = tmp_path / 'shared'
    shared.mkdir()
    backend = make_backend(
        'robotracer_http',
        url=server.url + '/query',
        transport='paths',
        shared_dir=str(shared),
        inputs=inputs,
    )
    backend(RGB, DEPTH_MM, K, INSTRUCTION, mode_3d=False)
    req = server.requests[0]
    assert 'decode_error' not in req
    sent = req['json']
    send_depth = inputs_send_depth(inputs)
    want = authors_query_server_spatial_encoder(
        sent['image_paths'],
        robotracer_prompt(INSTRUCTION, mode_3d=False),
        enable_spatial=0 if inputs == 'rgb' else 1,
        intrinsics=K.tolist() if 'intrinsics' in inputs else None,
        depth_z_paths=sent['depth_z_paths'] if send_depth else None,
    )
    assert req['body'] == requests_json_body(want)
    assert os.path.isabs(sent['image_paths'][0]) and sent['image_paths'][0].startswith(str(shared))
    np.testing.assert_array_equal(req['rgb'], RGB)
    if send_depth:
        np.testing.assert_array_equal(req['depth_mm'], DEPTH_MM)
    assert list(shared.iterdir()) == []  # nothing left behind


def test_the_paths_form_sends_absolute_paths_for_a_relative_shared_dir(
    server, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'rel').mkdir()
    backend = make_backend('robotracer_http', url=server.url, transport='paths', shared_dir='rel')
    assert backend.shared_dir == str(tmp_path / 'rel')
    backend(RGB, None, K, 'x')
    path = server.requests[0]['json']['image_paths'][0]
    assert os.path.isabs(path) and path.startswith(str(tmp_path / 'rel'))
    assert server.requests[0]['json']['depth_z_paths'] is None  # no depth for this frame


def test_the_body_encoder_equals_json_dumps_for_any_payload():
    payloads = [
        {'image_url': ['A' * 10_000 + '=='], 'text': 'é "q" \\ \n', 'k': [[1.5, 0, 2]]},
        {'image_url': ['data:image/png;base64,' + 'B' * 9000], 'x': None},
        {'s': 'ü' * 9000, 't': 'a"b' * 3000, 'c': '\x01' * 5000},
    ]
    for p in payloads:
        assert encode_json(p) == requests_json_body(p)
    with pytest.raises(ValueError):
        encode_json({'intrinsics': [float('nan')]})


def test_a_data_url_is_what_the_authors_servers_cannot_read(server):
    """The old request form: the Flask server's b64decode fails -> its HTML 500 page."""
    body = {
        'image_url': [
            'data:image/png;base64,' + base64.b64encode(images.encode_png(RGB)).decode()
        ],
        'text': 'x',
    }
    req = urllib.request.Request(
        server.url + '/query',
        data=json.dumps(body).encode(),
        headers={'Content-Type': 'application/json'},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 500 and info.value.read() == FLASK_ERROR_PAGES[500]


def test_the_answer_lifts(server):
    ans = make_backend('robotracer_http', url=server.url)(RGB, DEPTH_M, K, 'x')
    tr = answer_to_trace(ans.text, width=640, height=480, K=K, depth=DEPTH_MM)
    assert tr.points_cam.shape == (4, 3)


# ------------------------------------------------------------------ configuration


def test_modes_the_base64_form_cannot_carry_are_refused(tmp_path):
    for inputs in ('rgbd_intrinsics', 'rgb_intrinsics'):
        with pytest.raises(BackendError, match='cannot carry.*transport paths') as info:
            make_backend('robotracer_http', inputs=inputs)
        assert info.value.kind == 'config'
    with pytest.raises(BackendError, match='inputs'):
        make_backend('robotracer_http', inputs='depth_only')
    b = make_backend('robotracer_http', transport='paths', shared_dir=str(tmp_path))
    assert b.inputs == 'rgbd_intrinsics'  # the spatial-encoder client's default
    assert make_backend('robotracer_http').inputs == 'rgbd'


def test_bad_configuration_is_rejected_before_any_request(tmp_path):
    with pytest.raises(BackendError, match='transport'):
        make_backend('robotracer_http', transport='ftp')
    with pytest.raises(BackendError, match='shared_dir'):
        make_backend('robotracer_http', transport='paths', shared_dir=str(tmp_path / 'no'))
    with pytest.raises(BackendError, match='credentials'):
        make_backend('robotracer_http', url='http://user:pw@host:1')


# ------------------------------------------------------------------ what the server does wrong


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


def test_flasks_500_page_is_a_model_error_that_says_what_usually_causes_it():
    page = Reply(status=500, body=FLASK_ERROR_PAGES[500], content_type=FLASK_HTML)
    with ModelServer(lambda req: page) as s:
        backend = make_backend('robotracer_http', url=s.url, retries=1)
        with pytest.raises(BackendError) as info:
            backend(RGB, None, K, 'x')
    msg = str(info.value)
    assert info.value.kind == 'model' and info.value.status == 500
    assert msg.startswith('model error:') and 'HTTP 500' in msg
    assert "HTML page titled '500 Internal Server Error'" in msg
    assert 'transport=base64' in msg and 'traceback' in msg
    assert '<' not in msg and len(msg) < 600
    assert len(s.requests) == 2  # retried once (a GPU out of memory may pass)


def test_result_other_than_1_is_a_model_error():
    with ModelServer(lambda req: Reply(answer='model not loaded', result=0)) as s:
        backend = make_backend('robotracer_http', url=s.url)
        with pytest.raises(
            BackendError, match='model error: .*result=0 .*: model not loaded'
        ) as info:
            backend(RGB, None, K, 'x')
    assert info.value.kind == 'model'


@pytest.mark.parametrize(
    ('status', 'hint'),
    [
        (404, 'no /query endpoint'),
        (405, 'does not take POST'),
        (400, 'as JSON'),
        (415, 'Content-Type'),
    ],
)
def test_flask_4xx_pages_name_the_likely_cause_and_are_not_retried(status, hint):
    page = Reply(status=status, body=FLASK_ERROR_PAGES[status], content_type=FLASK_HTML)
    with ModelServer(lambda req: page) as s:
        backend = make_backend('robotracer_http', url=s.url, retries=3)
        with pytest.raises(BackendError, match=hint) as info:
            backend(RGB, None, K, 'x')
    assert info.value.kind == 'http_status' and f'HTTP {status}' in str(info.value)
    assert len(s.requests) == 1


def test_non_json_answer_is_reported_with_what_came_back():
    with ModelServer(lambda req: Reply(body=b'<html>502 Bad Gateway</html>')) as s:
        backend = make_backend('robotracer_http', url=s.url, retries=2)
        with pytest.raises(BackendError) as info:
            backend(RGB, None, K, 'x')
    assert info.value.kind == 'non_json' and '502 Bad Gateway' in str(info.value)
    assert len(s.requests) == 1
