"""The G1 head camera's own process: shared state, identical images, supervision, no orphans.

ROS-free: a small MuJoCo model stands in for the room where the G1 is not needed, and a stand-in
child (the :class:`CameraLink` side without ROS) for the node's camera process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import mujoco
import numpy as np
import pytest

from robotracer_sim.g1.camera_process import (
    EXIT_NO_RENDERER,
    CameraFeed,
    CameraLink,
    RenderSpec,
    SharedRecord,
    StateLayout,
    StateRenderer,
)

TINY = """
<mujoco>
  <visual><global offwidth="64" offheight="48"/></visual>
  <worldbody>
    <light pos="0 0 3"/>
    <geom type="plane" size="2 2 0.1" rgba="0.5 0.5 0.5 1"/>
    <body name="box" pos="0 0 0.5"><freejoint/><geom type="box" size="0.1 0.1 0.1"/></body>
    <body name="head" mocap="true" pos="0 0 1.5"><camera name="cam"/></body>
  </worldbody>
</mujoco>
"""

#: The camera process without ROS: attaches, then reports one frame per state it reads (the
#: pose's x is the state's first qpos value), until its parent closes the pipe or dies.
STAND_IN_CHILD = textwrap.dedent(
    """
    import sys, threading
    import numpy as np
    from robotracer_sim.g1.camera_process import CameraLink
    link = CameraLink(__import__('json').loads(sys.argv[1]))
    if link.node.get('exit_code') is not None:
        sys.exit(link.node['exit_code'])
    link.load_model()
    stop = threading.Event()
    link.watch_parent(stop.set)
    while not stop.is_set():
        state = link.wait_state(stop)
        if state is None:
            break
        pose = np.eye(4)
        pose[0, 3] = state[2]
        link.report_frame(state[0], state[1], pose)
        stop.wait(1.0 / link.rate)
    """
)


class TinyWorld:
    """What :class:`CameraFeed` needs of a world."""

    def __init__(self) -> None:
        self.model = mujoco.MjModel.from_xml_string(TINY)
        self.data = mujoco.MjData(self.model)
        self.lock = threading.RLock()
        mujoco.mj_forward(self.model, self.data)

    @property
    def time(self) -> float:
        return float(self.data.time)


def _feed(world: TinyWorld, node: dict | None = None, rate: float = 20.0) -> CameraFeed:
    return CameraFeed(
        world,
        RenderSpec(0, 64, 48, 5.0),
        rate,
        [sys.executable, '-c', STAND_IN_CHILD],
        node=node,
        nice=0,
        log=lambda level, msg: None,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) is not alive
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(')')[-1].split()[0] != 'Z'
    except OSError:
        return True


def _wait(cond, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_shared_record_is_consistent_and_says_when_never_written():
    rec, fd = SharedRecord.create('test_record', 5)
    try:
        assert rec.read() is None and rec.sequence == 0
        other = SharedRecord(fd, 5)  # a second mapping, as another process has
        rec.write(np.arange(5.0))
        assert other.read().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
        # A writer hammering the record never lets a reader see a mix of two writes.
        stop = threading.Event()

        def write() -> None:
            i = 0.0
            while not stop.is_set():
                rec.write(np.full(5, i))
                i += 1.0

        t = threading.Thread(target=write)
        t.start()
        try:
            for _ in range(2000):
                v = other.read()
                assert v is not None and np.all(v == v[0])
        finally:
            stop.set()
            t.join()
        other.close()
        rec.close()
    finally:
        os.close(fd)


def test_state_layout_round_trip():
    w = TinyWorld()
    w.data.qpos[:3] = [0.3, -0.2, 0.9]
    w.data.mocap_pos[0] = [1.0, 2.0, 1.5]
    layout = StateLayout(w.model.nq, w.model.nmocap)
    buf = np.zeros(layout.size)
    layout.pack(buf, 1.25, 1e9, w.data)
    d2 = mujoco.MjData(w.model)
    assert layout.unpack(buf, d2) == (1.25, 1e9)
    assert np.array_equal(d2.qpos, w.data.qpos) and np.array_equal(d2.mocap_pos, w.data.mocap_pos)
    assert d2.time == 1.25


def test_camera_process_renders_the_same_images_as_the_world():
    from robotracer_sim.common.scene_schema import scene_file_path
    from robotracer_sim.g1.scene import load_g1_scene
    from robotracer_sim.g1.world import G1World, HeadCamera

    world = G1World(load_g1_scene(scene_file_path('g1_room.yaml')))
    world.set_base_velocity(0.3, 0.0, 0.4, 1.0)
    world.step(150)
    mujoco.mj_forward(world.model, world.data)
    try:
        cam = HeadCamera(world)
    except RuntimeError as exc:
        pytest.skip(f'no OpenGL here: {exc}')
    rgb, depth, pose, _ = cam.capture()
    cam.close()
    # What the camera process does: a copy of the model (saved, loaded), the packed state.
    blob = np.zeros(mujoco.mj_sizeModel(world.model), dtype=np.uint8)
    mujoco.mj_saveModel(world.model, None, blob)
    model = mujoco.MjModel.from_binary_path('m.mjb', {'m.mjb': blob.tobytes()})
    layout = StateLayout(model.nq, model.nmocap)
    state = np.zeros(layout.size)
    layout.pack(state, world.time, 0.0, world.data)
    c = world.scene.camera
    r = StateRenderer(model, layout, RenderSpec(world.info.camera, c.width, c.height, c.depth_max))
    rgb2, depth2, pose2, sim_time, _ = r.render(state)
    r.close()
    assert sim_time == world.time
    assert np.array_equal(rgb, rgb2) and np.array_equal(depth, depth2)
    assert np.allclose(pose, pose2)


def test_feed_supervises_the_camera_process():
    w = TinyWorld()
    feed = _feed(w)
    assert feed.last_frame() is None and feed.frames == 0
    first = threading.Event()
    feed.start(on_first_frame=first.set)
    try:
        w.data.qpos[0] = 0.42
        w.data.time = 3.5
        feed.write_state()
        assert feed.wait_first_frame(30), 'the camera process reports frames'
        assert first.wait(1.0)
        n, sim_time, wall, pose = feed.last_frame()
        assert n >= 1 and sim_time == 3.5 and pose[0, 3] == 0.42
        assert abs(wall - time.time()) < 30
        # It dies: the feed restarts it, and the frame count goes on from where it was.
        pid = feed.pid
        os.kill(pid, signal.SIGKILL)
        assert _wait(lambda: feed.restarts == 1 and feed.pid != pid, 10), 'restarted'
        before = feed.frames
        assert _wait(lambda: feed.frames > before + 2, 30), 'frames after the restart'
    finally:
        pid = feed.pid
        feed.close()
    assert not _alive(pid), 'the camera process ends with the feed'


def test_a_camera_that_cannot_render_is_not_restarted():
    feed = _feed(TinyWorld(), node={'exit_code': EXIT_NO_RENDERER})
    feed.start()
    try:
        assert not feed.wait_first_frame(30)
        assert feed.failed and 'MUJOCO_GL' in feed.failed and feed.restarts == 0
    finally:
        feed.close()


def test_camera_process_exits_when_its_parent_is_killed(tmp_path):
    """kill -9 of the simulator leaves no camera process behind (its pipe closes)."""
    parent = textwrap.dedent(
        f"""
        import runpy, time
        helpers = runpy.run_path({__file__!r})
        feed = helpers['_feed'](helpers['TinyWorld']())
        feed.start()
        feed.write_state()
        assert feed.wait_first_frame(30)
        print('CHILD', feed.pid, flush=True)
        time.sleep(600)
        """
    )
    proc = subprocess.Popen([sys.executable, '-c', parent], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith('CHILD'), line
        child = int(line.split()[1])
        assert _alive(child)
        proc.kill()
        proc.wait(10)
        assert _wait(lambda: not _alive(child), 10), 'the camera process outlived its parent'
    finally:
        if proc.poll() is None:
            proc.kill()


def test_link_reads_the_spec_it_is_given():
    rec, fd = SharedRecord.create('s', StateLayout(7, 1).size)
    frames, ffd = SharedRecord.create('f', 19)
    try:
        spec = {
            'nq': 7,
            'nmocap': 1,
            'state_fd': fd,
            'frame_fd': ffd,
            'model_fd': -1,
            'model_size': 0,
            'alive_fd': -1,
            'rate': 7.5,
            'frames_before': 4,
            'nice': 3,
            'render': {'camera_id': 0, 'width': 64, 'height': 48, 'depth_max': 5.0},
            'node': {'name': 'x'},
        }
        link = CameraLink(json.loads(json.dumps(spec)))
        assert (link.rate, link.nice, link.node) == (7.5, 3, {'name': 'x'})
        assert link.render_spec == RenderSpec(0, 64, 48, 5.0)
        link.report_frame(1.0, 2.0, np.eye(4))
        assert frames.read()[0] == 5, 'frame numbers continue over restarts'
    finally:
        os.close(fd)
        os.close(ffd)
