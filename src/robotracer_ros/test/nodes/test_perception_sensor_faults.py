"""Sensor faults on the perception node (issue 11, item 7: sensors), over real DDS.

A synthetic RGB-D camera runs in its own process
(``python -m robotracer_ros.testing.camera_publisher --control``: faults are switched on and off
through its stdin), the perception node in another, a RoboTracer-API model stand-in in this
process on 127.0.0.1 records every request, and the test asks for traces through the project's
one client (``robotracer_commander.Commander``).

For each fault the GetTrace call must end at once (the checks are local, before the model) with
its specific error code and a message naming the topic and the value that was wrong, the model
must not have been asked, and once the fault is undone the next request must succeed.

The pure helpers the node's checks are built from are tested first, without ROS.
"""

from __future__ import annotations

import queue
import re
import subprocess
import threading
import time

import numpy as np
import pytest

from robotracer_ros import images
from robotracer_ros.lifting import (
    MIN_VALID_DEPTH_FRACTION,
    check_depth_registration,
    depth_coverage,
    sample_depth,
    validate_intrinsics,
)
from robotracer_ros.sync import ApproximateSynchronizer
from robotracer_ros.testing.camera_publisher import BOX_M, WALL_M, scene
from robotracer_ros.testing.model_server import ModelServer, Reply

PUBLISHER = ['python', '-m', 'robotracer_ros.testing.camera_publisher']
W, H = 320, 240
COLOR = '/camera/camera/color/image_raw'
DEPTH = '/camera/camera/aligned_depth_to_color/image_raw'
INFO = '/camera/camera/color/camera_info'
GOOD = '[(450, 700, 0.9), (500, 600, 0.7), (600, 500, 0.7), (700, 300, 1.2)]'
GOOD_2D = '[(450, 700), (700, 300)]'  # box face (0.9 m), wall (1.2 m)
INSTRUCTION = 'put the red box on the wall'
MAX_AGE_S = 1.0
LOCAL_CHECK_S = 3.0  # a fault found before the model answers in ms; 3 s allows for a busy host


# ------------------------------------------------------------------ the pure checks


def test_synchroniser_reports_silent_streams_and_the_closest_set():
    now = [100.0]
    sync = ApproximateSynchronizer(['color', 'depth'], slop_s=0.02, clock=lambda: now[0])
    assert sync.silent_for() == {'color': None, 'depth': None}
    assert sync.closest_set() is None
    for i in range(5):
        sync.add('color', 10.0 + i * 0.1, i)
        sync.add('depth', 7.0 + i * 0.1, i)  # depth stamped 3 s behind: never paired
    assert sync.matched == 0
    now[0] = 102.5
    assert sync.silent_for() == {'color': 2.5, 'depth': 2.5}
    closest = sync.closest_set()
    assert closest == {'color': 10.0, 'depth': 7.4}  # the tightest the queues allow
    assert sync.last_stamp_s == {'color': 10.4, 'depth': 7.4}


def test_depth_coverage_counts_what_lifting_can_use():
    mm = np.zeros((4, 5), np.uint16)
    mm[0, :3] = (900, 20, 20000)  # valid, too near, too far
    c = depth_coverage(mm, min_depth_m=0.05, max_depth_m=10.0)
    assert (c.pixels, c.valid, c.zero, c.non_finite, c.out_of_range) == (20, 1, 17, 0, 2)
    assert c.fraction == pytest.approx(0.05)
    nan = np.full((4, 5), np.nan, np.float32)
    c = depth_coverage(nan)
    assert c.valid == 0 and c.non_finite == 20
    assert c.describe().startswith('0.0% valid (0.0% zero, 100.0% NaN/inf')
    assert depth_coverage(scene(W, H)[1]).fraction == 1.0 > MIN_VALID_DEPTH_FRACTION


def test_depth_of_another_size_is_registered_only_with_the_same_aspect_ratio():
    check_depth_registration((160, 120), (320, 240))
    check_depth_registration((1280, 720), (640, 360))
    with pytest.raises(ValueError, match='depth is 200x120 but colour is 320x240'):
        check_depth_registration((200, 120), (320, 240))
    # nearest-neighbour resampling onto the colour grid agrees with sampling at native size
    _, depth_small, _ = scene(160, 120)
    up = images.resize_depth_nearest(depth_small, W, H)
    assert up.shape == (H, W) and up.dtype == depth_small.dtype
    assert set(np.unique(up)) == set(np.unique(depth_small))  # no invented in-between depths
    px = np.array([[0.5 * W, 0.7 * H], [0.7 * W, 0.3 * H], [W - 0.5, H - 0.5]])
    native = sample_depth(depth_small, px, (W, H), window_px=0)
    resampled = sample_depth(up, px, (W, H), window_px=0)
    np.testing.assert_array_equal(native, resampled)
    np.testing.assert_allclose(native[:2], [BOX_M, WALL_M])


@pytest.mark.parametrize(
    ('fx', 'fy', 'needle'),
    [(0.0, 300.0, 'fx=0, fy=300'), (300.0, -300.0, 'fy=-300'), (np.nan, 300.0, 'fx=nan')],
)
def test_bad_intrinsics_are_named_with_their_values(fx, fy, needle):
    K = np.array([[fx, 0.0, 160.0], [0.0, fy, 120.0], [0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match=re.escape(needle)):
        validate_intrinsics(K)


# ------------------------------------------------------------------ over DDS


class Output:
    """Drain a child's stdout in a thread (a full pipe would block it); wait for a line."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self.q: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.lines.append(line)
            self.q.put(line)

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if text in self.q.get(timeout=0.2):
                    return
            except queue.Empty:
                pass
        raise AssertionError(f'no {text!r} within {timeout} s; output:\n' + ''.join(self.lines))


class Camera:
    """The camera process, driven through its ``--control`` stdin."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.out = Output(proc)
        self.out.wait_for('ready')

    def fault(self, command: str, settle_s: float = 1.0) -> None:
        """Apply a command; return once sets carrying it have had time to reach the node."""
        self.proc.stdin.write(command + '\n')
        self.proc.stdin.flush()
        self.out.wait_for(f'ok {command}', timeout=10.0)
        time.sleep(settle_s)


def reply_for(req: dict) -> Reply:
    return Reply(GOOD_2D if '2D' in (req.get('text') or '') else GOOD)


@pytest.fixture
def rig(spawn):
    """Model stand-in + camera process + node process + a Commander; yields helpers."""
    pytest.importorskip('rclpy')
    from robotracer_commander import Commander

    servers: list = []
    commanders: list = []

    def start(
        *publisher_args: str, node_params: dict | None = None
    ) -> tuple[Camera, ModelServer, Commander]:
        server = ModelServer(reply_for).__enter__()
        servers.append(server)
        camera_proc = spawn(
            [
                *PUBLISHER,
                '--rate',
                '10',
                '--width',
                str(W),
                '--height',
                str(H),
                '--control',
                *publisher_args,
            ],
            stdin=subprocess.PIPE,
        )
        params = {
            'model_url': server.url,
            'target_frame': 'base_link',
            'static_transform.parent_frame': 'base_link',
            'static_transform.xyz': '[0.5, 0.0, 0.6]',
            'static_transform.xyzw': '[1.0, 0.0, 0.0, 0.0]',
            'request_timeout_s': 1.0,
            'request_retries': 0,
            'max_frame_age_s': MAX_AGE_S,
            **(node_params or {}),
        }
        args = ['python', '-m', 'robotracer_ros.nodes.perception_node', '--ros-args']
        for k, v in params.items():
            args += ['-p', f'{k}:={v}']
        node_out = Output(spawn(args))
        node_out.wait_for('ready:')
        camera = Camera(camera_proc)
        cmd = Commander()
        commanders.append(cmd)
        assert not cmd.wait_for_servers(30.0, actions=False, get_trace=True)
        return camera, server, cmd

    try:
        yield start
    finally:
        for c in commanders:
            c.close()
        for s in servers:
            s.__exit__(None, None, None)


def expect_fault(cmd, server, code: int, *needles: str, **fields) -> str:
    """One request on bad data: fast, the right code, a message naming it, no model call."""
    before = len(server.requests)
    t0 = time.monotonic()
    reply = cmd.get_trace(fields.pop('instruction', INSTRUCTION), timeout_s=10.0, **fields)
    elapsed = time.monotonic() - t0
    assert not reply.success and reply.response is not None, reply.message
    assert reply.error_code == code, (reply.error_code, reply.message)
    for needle in needles:
        assert needle in reply.message, (needle, reply.message)
    assert elapsed < LOCAL_CHECK_S, f'{elapsed:.2f} s for a local check: {reply.message}'
    assert len(server.requests) == before, f'the model was asked on bad data: {reply.message}'
    return reply.message


def expect_recovery(cmd, server, timeout: float = 15.0, **fields):
    """Once the fault is gone the next requests succeed (after at most a fresh set or two)."""
    from robotracer_msgs.srv import GetTrace

    E = GetTrace.Response
    deadline = time.monotonic() + timeout
    while True:
        before = len(server.requests)
        options = {k: v for k, v in fields.items() if k != 'instruction'}
        reply = cmd.get_trace(fields.get('instruction', INSTRUCTION), timeout_s=10.0, **options)
        if reply.success:
            assert len(server.requests) == before + 1  # the model answered this one
            assert reply.trace.status == reply.trace.STATUS_VALID, reply.trace.quality_note
            return reply
        assert reply.error_code in (E.ERROR_NO_FRAME, E.ERROR_STALE_FRAME), reply.message
        assert time.monotonic() < deadline, f'no recovery within {timeout} s: {reply.message}'
        time.sleep(0.2)


def seconds_in(pattern: str, message: str) -> float:
    m = re.search(pattern, message)
    assert m, (pattern, message)
    return float(m.group(1))


@pytest.mark.slow
def test_stopped_streams_stamps_beyond_the_slop_and_missing_transforms(rig):
    from robotracer_msgs.srv import GetTrace

    E = GetTrace.Response
    # camera_info never published: no frame, and the message names the topic
    camera, server, cmd = rig(
        '--no-info',
        node_params={'static_transform.child_frame': 'camera_color_optical_frame'},
    )
    time.sleep(1.0)
    msg = expect_fault(
        cmd, server, E.ERROR_NO_FRAME, f'nothing received yet for camera_info on {INFO}'
    )
    assert 'colour image' in msg and 'depth image' in msg  # what did arrive is listed
    camera.fault('start info', settle_s=0.0)
    expect_recovery(cmd, server)

    # each stream stops while the others go on: stale, naming the silent topic and since when
    labels = {
        'color': ('colour image', COLOR),
        'depth': ('depth image', DEPTH),
        'info': ('camera_info', INFO),
    }
    for stream, (label, topic) in labels.items():
        camera.fault(f'stop {stream}', settle_s=MAX_AGE_S + 1.0)
        msg = expect_fault(cmd, server, E.ERROR_STALE_FRAME, f'{label} on {topic} stopped')
        ago = seconds_in(r'stopped: last message ([\d.]+) s ago', msg)
        assert MAX_AGE_S < ago < 30.0, msg
        still = re.search(r'\(([^()]*) still arriving\)', msg)
        assert still, msg
        assert set(still.group(1).split(', ')) == {
            lb for s, (lb, _) in labels.items() if s != stream
        }
        camera.fault(f'start {stream}', settle_s=0.0)
        expect_recovery(cmd, server)

    # depth stamped 3 s behind colour: never paired; the gap and the slop parameter are named
    camera.fault('offset depth -3', settle_s=MAX_AGE_S + 1.0)
    msg = expect_fault(cmd, server, E.ERROR_STALE_FRAME, 'within sync_slop_s=0.02 s')
    assert 'latest stamps relative to the colour image:' in msg
    gap = seconds_in(r'depth image ([-+][\d.]+) s[,)]', msg)
    assert -3.2 < gap < -2.8, msg
    camera.fault('reset', settle_s=0.0)
    expect_recovery(cmd, server)

    # the target frame is unreachable: ERROR_TRANSFORM naming both frames
    expect_fault(
        cmd,
        server,
        E.ERROR_TRANSFORM,
        "cannot transform 'camera_color_optical_frame' to 'map'",
        'camera_color_optical_frame->base_link',  # what is known
        target_frame='map',
    )
    # the camera's frame changes: the configured camera transform no longer applies
    camera.fault('frame_id other_camera_optical_frame')
    expect_fault(
        cmd,
        server,
        E.ERROR_TRANSFORM,
        "cannot transform 'other_camera_optical_frame' to 'base_link'",
    )
    camera.fault('reset', settle_s=0.0)
    reply = expect_recovery(cmd, server)
    assert reply.trace.header.frame_id == 'base_link'


@pytest.mark.slow
def test_bad_camera_info_and_depth_images(rig):
    from robotracer_msgs.srv import GetTrace

    E = GetTrace.Response
    R = GetTrace.Request
    camera, server, cmd = rig('--depth-encoding', '32FC1')
    expect_recovery(cmd, server)

    # camera_info with a zero, negative or NaN focal length: named with the K values
    for command, needle in (
        ('intrinsics fx=0', 'fx=0, fy=300'),
        ('intrinsics fy=-300', 'fy=-300'),
        ('intrinsics fx=nan', 'fx=nan'),
    ):
        camera.fault(command)
        expect_fault(
            cmd,
            server,
            E.ERROR_NO_FRAME,
            f'camera_info on {INFO} has unusable intrinsics K',
            needle,
        )
        camera.fault('reset', settle_s=0.0)
        expect_recovery(cmd, server)

    # depth all zeros / all NaN: sensor, fused and 2D requests fail; model depth goes on without
    for command, needle in (('depth zeros', '100.0% zero'), ('depth nan', '100.0% NaN/inf')):
        camera.fault(command)
        for fields in ({}, {'depth_source': R.DEPTH_SENSOR}, {'trace_2d': True}):
            msg = expect_fault(
                cmd,
                server,
                E.ERROR_NO_FRAME,
                f'depth image on {DEPTH}',
                '0.0% valid',
                needle,
                **fields,
            )
            assert "only depth_source 'model' works without it" in msg
        reply = expect_recovery(cmd, server, depth_source=R.DEPTH_MODEL)
        assert 'depth_mm' not in server.requests[-1]  # the model was not fed the broken depth
        assert 'sensor depth left out: depth image on' in reply.trace.quality_note
        assert list(reply.trace.depth_source) == [0, 0, 0, 0]  # every point: the model's depth
        camera.fault('reset', settle_s=0.0)
        expect_recovery(cmd, server)

    # depth at half the colour resolution (same aspect): resampled onto the colour grid
    camera.fault('depth_size 160x120')
    reply = expect_recovery(cmd, server, instruction='2D please', trace_2d=True)
    np.testing.assert_allclose(
        [p.z for p in reply.trace.points], [0.6 - BOX_M, 0.6 - WALL_M], atol=1e-3
    )
    assert server.requests[-1]['depth_mm'].shape == (H, W)  # the model sees a registered pair
    # depth of another aspect ratio: not registered to colour -> both sizes named
    camera.fault('depth_size 200x120')
    expect_fault(cmd, server, E.ERROR_NO_FRAME, 'depth is 200x120 but colour is 320x240')
    camera.fault('reset', settle_s=0.0)
    expect_recovery(cmd, server)
