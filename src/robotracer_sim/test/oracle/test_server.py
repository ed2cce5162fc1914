"""The oracle's HTTP server behaves like the authors' Flask servers: their payloads, their errors.

The reference bodies are what the authors' client (RoboTracer ``Evaluation/query_model.py``)
sends; the error pages are Flask's own (Werkzeug 3), byte for byte.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
import re
import socket
import time
import urllib.error
import urllib.request

import numpy as np
from PIL import Image
import pytest

from robotracer_sim.oracle import Oracle, OracleConfig, OracleServer
from robotracer_sim.oracle import server as server_module
from robotracer_sim.oracle.core import NOT_FOUND, NOT_UNDERSTOOD
from robotracer_sim.oracle.geometry import transform_points
from robotracer_sim.oracle.server import FLASK_ERROR_PAGES, NO_IMAGE
from robotracer_sim.ur5.world import Ur5World

PROMPT = (
    'Point the 3D object-centric visual trace for the task "{}". Your answer should be '
    'formatted as a list of tuples, i.e., [(x1, y1, d1), (x2, y2, d2), ...], where each tuple '
    'contains the x and y coordinates of the point, and d is the depth of the point.'
)
TRACE_RE = re.compile(r'\[\((\d+), (\d+), (\d+\.\d{3})\)(, \((\d+), (\d+), (\d+\.\d{3})\))+\]')


@pytest.fixture(scope='module')
def world() -> Ur5World:
    w = Ur5World()
    w.step(0.3)
    yield w
    w.close()


@pytest.fixture(scope='module')
def frames(world, tmp_path_factory) -> dict:
    rgb, depth = world.render_rgbd()
    folder = tmp_path_factory.mktemp('shared')
    rgb_path, depth_path = folder / 'rgb.png', folder / 'depth.png'
    Image.fromarray(rgb).save(rgb_path)
    mm = np.clip(np.round(depth * 1000.0), 0, 65535).astype(np.uint16)
    Image.fromarray(mm).save(depth_path)
    return {'rgb': rgb_path, 'depth': depth_path, 'folder': folder}


@pytest.fixture(scope='module')
def server(world):
    with OracleServer(Oracle(world.snapshot, OracleConfig(latency=0.0)), port=0) as s:
        yield s


def post(
    url: str,
    body: bytes | dict | list,
    path: str = '/query',
    content_type: str = 'application/json',
) -> tuple[int, dict | bytes]:
    """POST like ``requests.post(json=...)``; the JSON answer, or the raw body of an error."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        url + path, data=data, headers={'Content-Type': content_type}, method='POST'
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            assert r.headers['Content-Type'] == 'application/json'
            assert raw.endswith(b'\n')  # as Flask's jsonify writes it
            return r.status, json.loads(raw)
    except urllib.error.HTTPError as e:
        assert e.headers['Content-Type'] == 'text/html; charset=utf-8'
        return e.code, e.read()


def b64(path: Path) -> str:
    """The authors' ``encode_image``: raw base64 of the file, no data: prefix."""
    return base64.b64encode(path.read_bytes()).decode('utf-8')


def data_url(path: Path) -> str:
    return 'data:image/png;base64,' + b64(path)


def lift_first_and_last(answer: str, world: Ur5World) -> np.ndarray:
    m = re.findall(r'\((\d+), (\d+), (\d+\.\d+)\)', answer)
    xyd = np.array([m[0], m[-1]], dtype=float)
    u, v, d = xyd[:, 0] / 1000 * 640, xyd[:, 1] / 1000 * 480, xyd[:, 2]
    k = world.k
    cam = np.stack([(u - k[0, 2]) * d / k[0, 0], (v - k[1, 2]) * d / k[1, 1], d], axis=1)
    return transform_points(world.t_world_camera, cam)


def test_binds_loopback_by_default(world):
    s = OracleServer(Oracle(world.snapshot), port=0)
    try:
        assert s.host == '127.0.0.1' and s.url.startswith('http://127.0.0.1:')
        assert s._httpd.server_address[0] == '127.0.0.1'
    finally:
        s.stop()


def spatial_body(frames: dict, world: Ur5World, instruction: str, **changes) -> dict:
    """``query_server_spatial_encoder``'s request_data (RoboTracer_Intrinsics_Depth)."""
    return {
        'image_paths': [str(frames['rgb'])],
        'depth_z_paths': [str(frames['depth'])],
        'intrinsics': world.k.tolist(),
        'enable_spatial': 1,
        'text': PROMPT.format(instruction),
        **changes,
    }


def base64_body(frames: dict, instruction: str, **changes) -> dict:
    """``query_server``'s request_data (raw base64 images)."""
    return {
        'image_url': [b64(frames['rgb'])],
        'depth_url': [b64(frames['depth'])],
        'enable_depth': 1,
        'text': PROMPT.format(instruction),
        **changes,
    }


def test_paths_form_answers_with_a_trace_from_the_object(server, frames, world):
    status, body = post(server.url, spatial_body(frames, world, 'put the blue cube on the plate'))
    assert status == 200 and body == {'result': 1, 'answer': body['answer']}
    assert TRACE_RE.fullmatch(body['answer']), body['answer']
    start, end = lift_first_and_last(body['answer'], world)
    poses = world.object_poses()
    assert np.linalg.norm(start - poses['blue_cube'].position) < 0.02
    assert np.linalg.norm(end[:2] - poses['plate'].position[:2]) < 0.02


@pytest.mark.parametrize(
    'changes',
    [
        {'depth_z_paths': None},  # RoboTracer_Intrinsics
        {'depth_z_paths': None, 'intrinsics': None},  # RoboTracer (spatial encoder, RGB)
        {'depth_z_paths': None, 'intrinsics': None, 'enable_spatial': 0},  # RoboTracer_RGB
        {'intrinsics': None},  # depth without intrinsics
    ],
)
def test_every_mode_of_the_authors_evaluation_is_served(server, frames, world, changes):
    status, body = post(
        server.url, spatial_body(frames, world, 'put the blue cube on the plate', **changes)
    )
    assert status == 200 and TRACE_RE.fullmatch(body['answer']), body


def test_base64_form_gives_the_same_answer(server, frames, world):
    instruction = 'move the cup next to the bowl'
    s1, b1 = post(server.url, spatial_body(frames, world, instruction))
    s2, b2 = post(server.url, base64_body(frames, instruction))
    s3, b3 = post(server.url, base64_body(frames, instruction, depth_url=[], enable_depth=0))
    s4, b4 = post(
        server.url, {'image_url': [b64(frames['rgb'])], 'text': PROMPT.format(instruction)}
    )
    assert s1 == s2 == s3 == s4 == 200  # (the last: what RoboTracer's Qwen3VL.py reads)
    assert b1['answer'] == b2['answer'] == b3['answer'] == b4['answer']
    assert TRACE_RE.fullmatch(b2['answer'])


def test_a_smaller_image_gets_the_same_normalised_trace(server, frames, world):
    small = frames['folder'] / 'small.png'
    Image.open(frames['rgb']).resize((320, 240)).save(small)
    k = world.k.copy()
    k[:2, :] *= 0.5
    k[0, 2], k[1, 2] = (320 - 1) / 2, (240 - 1) / 2
    text = 'push the red cube 5 cm left'
    _, full = post(server.url, spatial_body(frames, world, text, depth_z_paths=None))
    _, half = post(
        server.url,
        spatial_body(
            frames,
            world,
            text,
            image_paths=[str(small)],
            depth_z_paths=None,
            intrinsics=k.tolist(),
        ),
    )
    a = np.array(re.findall(r'\d+\.?\d*', full['answer']), dtype=float).reshape(-1, 3)
    b = np.array(re.findall(r'\d+\.?\d*', half['answer']), dtype=float).reshape(-1, 3)
    assert np.max(np.abs(a[:, :2] - b[:, :2])) <= 3 and np.allclose(a[:, 2], b[:, 2])


def test_unknown_instruction_is_answered_unusably_not_as_an_error(server, frames, world):
    status, body = post(server.url, spatial_body(frames, world, 'make me a sandwich'))
    assert status == 200 and body == {'result': 1, 'answer': NOT_UNDERSTOOD}


def test_an_object_out_of_view_gets_the_plain_text_answer(world, frames):
    w = Ur5World()
    try:
        w.step(0.3)
        w.set_object_pose('cup', [2.5, 0.0, -0.7])  # behind the camera
        w.step(0.3)
        with OracleServer(Oracle(w.snapshot, OracleConfig(latency=0.0)), port=0) as s:
            status, body = post(s.url, spatial_body(frames, w, 'put the cup on the plate'))
    finally:
        w.close()
    assert status == 200 and body == {'result': 1, 'answer': NOT_FOUND}


def test_a_prompt_without_an_image_is_answered_in_words(server):
    status, body = post(server.url, {'text': PROMPT.format('put the cup on the plate')})
    assert status == 200 and body == {'result': 1, 'answer': NO_IMAGE}


def test_latency_option_delays_the_answer(world, frames):
    with OracleServer(Oracle(world.snapshot, OracleConfig(latency=0.4)), port=0) as s:
        t0 = time.monotonic()
        status, _ = post(s.url, base64_body(frames, 'put the red cube on the plate'))
        assert status == 200 and time.monotonic() - t0 >= 0.4


@pytest.mark.parametrize(
    'make_body, reason',
    [
        # the request this project used to send: a data: prefix before the base64
        (lambda f: {'image_url': [data_url(f['rgb'])], 'text': 'x'}, 'image_url'),
        (lambda f: {'image_url': ['@@@'], 'text': 'x'}, 'image_url'),
        (
            lambda f: {'image_url': [base64.b64encode(b'hello').decode()], 'text': 'x'},
            'not a readable image',
        ),
        (
            lambda f: {
                'image_url': [b64(f['rgb'])],
                'depth_url': [b64(f['depth'])] * 2,
                'enable_depth': 1,
                'text': 'x',
            },
            "Depth URL's number",
        ),
        (lambda f: [1, 2], "'list' object has no attribute 'get'"),
        (
            lambda f: {'text': 'x', 'image_paths': [str(f['folder'] / 'missing.png')]},
            'No such file',
        ),
        (lambda f: {'text': 'x', 'image_paths': [str(f['folder'])]}, 'No such file'),
        (lambda f: {'text': 'x', 'image_paths': 'rgb.png'}, 'expected a list'),
        (
            lambda f: {
                'text': 'x',
                'image_paths': [str(f['rgb'])],
                'intrinsics': [[1, 0], [0, 1]],
            },
            'intrinsics',
        ),
        (
            lambda f: {
                'text': 'x',
                'image_paths': [str(f['rgb'])],
                'intrinsics': [[0, 0, 320], [0, 500, 240], [0, 0, 1]],
            },
            'fx and fy must be > 0',
        ),
        (
            lambda f: {
                'text': 'x',
                'image_paths': [str(f['rgb'])],
                'depth_z_paths': [str(f['rgb'])],
            },
            '16-bit',
        ),
        (lambda f: {'text': 5, 'image_url': [b64(f['rgb'])]}, 'text must be a string'),
    ],
)
def test_what_the_authors_handler_cannot_serve_gets_flasks_500_page(
    server, frames, make_body, reason
):
    status, body = post(server.url, make_body(frames))
    assert status == 500 and body == FLASK_ERROR_PAGES[500]
    assert reason in server.last_error, server.last_error
    status, _ = post(server.url, base64_body(frames, 'put the red cube on the plate'))
    assert status == 200  # the next good request is served


def test_flasks_other_error_pages(server, frames):
    assert post(server.url, b'{not json') == (400, FLASK_ERROR_PAGES[400])
    good = base64_body(frames, 'put the red cube on the plate')
    assert post(server.url, good, content_type='text/plain') == (415, FLASK_ERROR_PAGES[415])
    assert post(server.url, good, path='/generate') == (404, FLASK_ERROR_PAGES[404])
    status, _ = post(server.url, good, content_type='application/json; charset=utf-8')
    assert status == 200
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server.url + '/query', timeout=5)
    assert info.value.code == 405 and info.value.headers['Allow'] == 'OPTIONS, POST'
    with urllib.request.urlopen(server.url + '/', timeout=5) as r:  # RoboRefer's index
        assert r.read() == b'Hello, World!'


def test_flask_pages_are_the_same_bytes_the_perception_tests_use():
    model_server = pytest.importorskip('robotracer_ros.testing.model_server')
    for code, page in model_server.FLASK_ERROR_PAGES.items():
        assert FLASK_ERROR_PAGES[code] == page


def test_depth_png_round_trips_in_millimetres(frames, world):
    depth = np.asarray(Image.open(frames['depth']))
    assert depth.dtype == np.uint16 and depth.shape == (480, 640)
    _, ref = world.render_rgbd()
    assert np.max(np.abs(depth.astype(float) / 1000.0 - ref)) <= 0.0006


# ------------------------------------------------------------------ security (issue 11, item 10)


def _non_loopback_ipv4() -> str | None:
    """This machine's address on its default route (no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(('192.0.2.1', 9))
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith('127.') or ip == '0.0.0.0' else ip


def test_the_default_server_cannot_be_reached_from_another_address(server):
    ip = _non_loopback_ipv4()
    if ip is None:
        pytest.skip('this machine has no non-loopback IPv4 address to try')
    with socket.socket() as s:
        s.settimeout(2.0)
        with pytest.raises(OSError):  # refused: nothing listens there
            s.connect((ip, server.port))
    with socket.create_connection(('127.0.0.1', server.port), timeout=2.0):
        pass


@pytest.fixture
def jail(world, tmp_path, frames):
    """A server whose shared folder is tmp_path/shared, and a PNG inside and outside it."""
    shared, outside = tmp_path / 'shared', tmp_path / 'outside'
    shared.mkdir()
    outside.mkdir()
    for folder in (shared, outside):
        (folder / 'rgb.png').write_bytes(frames['rgb'].read_bytes())
        (folder / 'depth.png').write_bytes(frames['depth'].read_bytes())
    with OracleServer(Oracle(world.snapshot), port=0, shared_dir=str(shared)) as s:
        yield s, shared, outside


@pytest.fixture
def opened(monkeypatch):
    """Paths the server's image reader opens."""
    seen: list[str] = []
    real_open = server_module.Image.open

    def spy(fp, *args, **kwargs):
        if isinstance(fp, (str, Path)):
            seen.append(os.path.realpath(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(server_module.Image, 'open', spy)
    return seen


def test_the_path_form_reads_files_inside_the_shared_folder(jail, opened):
    server, shared, _ = jail
    status, body = post(
        server.url,
        {
            'text': PROMPT.format('put the blue cube on the plate'),
            'image_paths': [str(shared / 'rgb.png')],
            'depth_z_paths': [str(shared / 'depth.png')],
        },
    )
    assert status == 200 and body['result'] == 1, body
    assert os.path.realpath(shared / 'rgb.png') in opened


@pytest.mark.parametrize(
    'make_path, field, message',
    [
        (lambda sh, out: str(out / 'rgb.png'), 'image_paths', 'outside the shared folder'),
        (lambda sh, out: str(sh / '..' / 'outside' / 'rgb.png'), 'image_paths', "holds '..'"),
        (lambda sh, out: str(sh / 'link.png'), 'image_paths', 'through a symlink'),
        (lambda sh, out: str(sh / 'linked_dir' / 'rgb.png'), 'image_paths', 'outside'),
        (lambda sh, out: 'shared/rgb.png', 'image_paths', 'not an absolute path'),
        (lambda sh, out: '/etc/passwd', 'image_paths', 'outside the shared folder'),
        (lambda sh, out: str(out / 'depth.png'), 'depth_z_paths', 'outside the shared folder'),
    ],
)
def test_the_path_form_refuses_anything_outside_the_shared_folder(
    jail, opened, make_path, field, message
):
    server, shared, outside = jail
    (shared / 'link.png').symlink_to(outside / 'rgb.png')
    (shared / 'linked_dir').symlink_to(outside, target_is_directory=True)
    body = {'text': PROMPT.format('put the blue cube on the plate')}
    body['image_paths'] = [str(shared / 'rgb.png')]
    body[field] = [make_path(shared, outside)]
    status, reply = post(server.url, body)
    assert status == 500 and reply == FLASK_ERROR_PAGES[500], reply
    assert field in server.last_error and message in server.last_error, server.last_error
    # the file outside was never opened (a readable PNG: had it been read, the answer was 200)
    assert not any(p.startswith(os.path.realpath(outside)) for p in opened), opened
    assert '/etc/passwd' not in opened
    status, _ = post(
        server.url,
        {
            'text': PROMPT.format('put the blue cube on the plate'),
            'image_paths': [str(shared / 'rgb.png')],
        },
    )
    assert status == 200  # the next good request is served


def test_a_missing_shared_folder_is_a_clear_error(world, tmp_path):
    with pytest.raises(ValueError, match='not a folder'):
        OracleServer(Oracle(world.snapshot), port=0, shared_dir=str(tmp_path / 'nope'))


# ------------------------------------------------------------------ the project's client


@pytest.mark.parametrize(
    ('transport', 'inputs'),
    [
        ('base64', 'rgbd'),
        ('base64', 'rgb_spatial'),
        ('base64', 'rgb'),
        ('paths', 'rgbd_intrinsics'),
        ('paths', 'rgbd'),
        ('paths', 'rgb_intrinsics'),
        ('paths', 'rgb_spatial'),
        ('paths', 'rgb'),
    ],
)
def test_the_robotracer_http_backend_is_served_in_every_form(server, world, transport, inputs):
    backends = pytest.importorskip('robotracer_ros.backends')
    parsing = pytest.importorskip('robotracer_ros.parsing')
    rgb, depth = world.render_rgbd()
    backend = backends.make_backend(
        'robotracer_http', url=server.url, transport=transport, inputs=inputs, retries=0
    )
    ans = backend(rgb, depth, world.k, 'put the blue cube on the plate')
    trace = parsing.parse_trace(ans.text, expect_depth=True)
    assert len(trace) >= 6
    start, _ = lift_first_and_last(ans.text, world)
    assert np.linalg.norm(start - world.object_poses()['blue_cube'].position) < 0.02
