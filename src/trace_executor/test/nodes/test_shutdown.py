"""An executor that is shut down stops the robot first (UR5 across real processes; G1 backend).

The simulator (``ur5_world``) and the executor (``ur5_executor``) run as the bringup starts them
(same executables, same ``--ros-args`` and config/ur5.yaml). A trace goal with a long motion is
sent; mid-motion the executor process gets SIGTERM or SIGINT. On /joint_states the arm must come
to rest within ~0.5 s instead of finishing its trajectory (on a real UR the trajectory already
sent to the controller would run on), it must stay at rest after the executor is gone, the
executor must exit 0 without a traceback, and the goal's client must get a result that says
why. The G1 backend's halt is driven over DDS against the simulator's Unitree peer: the walk
stops at once and the arm_sdk weight ramps out.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip('rclpy')
pytest.importorskip('mujoco')

from rclpy.qos import QoSProfile  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from robotracer_commander.commander import Commander  # noqa: E402
from robotracer_ros.bringup import UR5  # noqa: E402
from robotracer_ros.cli.launch import plan_commands  # noqa: E402

pytestmark = pytest.mark.slow

#: a long follow-mode trace (base_link, metres): ~10 s of motion at speed 0.25
LONG_TRACE = [(0.35, -0.45, 0.25), (0.65, -0.2, 0.25), (0.65, 0.25, 0.25), (0.3, 0.45, 0.3)]
STOP_SPEED = 0.01  # rad/s: every joint slower than this counts as at rest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Proc:
    """A node process (own session) with its output kept."""

    def __init__(self, argv: list[str], ready: str) -> None:
        self.lines: list[str] = []
        self.ready = threading.Event()
        self._ready_text = ready
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if self._ready_text in line:
                self.ready.set()

    @property
    def text(self) -> str:
        return '\n'.join(self.lines)

    def wait_ready(self, timeout: float) -> None:
        if not self.ready.wait(timeout):
            self.kill()
            raise AssertionError(f'not ready in {timeout} s:\n{self.text[-3000:]}')

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)


class JointLog:
    """/joint_states as (receive time, positions, velocities)."""

    def __init__(self, node) -> None:
        self.lock = threading.Lock()
        self.samples: list[tuple[float, np.ndarray, np.ndarray]] = []
        node.create_subscription(JointState, '/joint_states', self._on, QoSProfile(depth=50))

    def _on(self, msg: JointState) -> None:
        with self.lock:
            self.samples.append((time.monotonic(), np.array(msg.position), np.array(msg.velocity)))

    def since(self, t: float) -> list[tuple[float, np.ndarray, np.ndarray]]:
        with self.lock:
            return [s for s in self.samples if s[0] >= t]

    def latest(self) -> tuple[float, np.ndarray, np.ndarray]:
        with self.lock:
            return self.samples[-1]


@pytest.fixture(scope='module')
def cell():
    argv = {spec.name: cmd for spec, cmd in plan_commands(UR5, {'oracle_port': str(_free_port())})}
    world = Proc(argv['ur5_world'], 'ur5_world ready')
    commander = None
    try:
        world.wait_ready(90)
        commander = Commander()
        joints = JointLog(commander.node)
        deadline = time.monotonic() + 20
        while not joints.since(0.0):
            assert time.monotonic() < deadline, 'no /joint_states from the simulator'
            time.sleep(0.05)
        yield argv['ur5_executor'], commander, joints
    finally:
        if commander is not None:
            commander.close()
        if world.proc.poll() is None:
            os.killpg(world.proc.pid, signal.SIGINT)
            try:
                world.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                world.kill()


def _start_long_motion(commander: Commander, joints: JointLog, executor: Proc):
    """Send the long trace (again while the executor has no joint state yet); return the goal
    once the arm has moved fast for 1 s."""
    deadline = time.monotonic() + 40
    goal = None
    moving_since = None
    while True:
        assert time.monotonic() < deadline, 'the arm never moved:\n' + executor.text[-2000:]
        if goal is None or goal.done:
            if goal is not None:
                outcome = goal.result(1)
                assert 'no joint state received yet' in outcome.message, outcome
                time.sleep(0.5)
            goal = commander.send_trace(
                LONG_TRACE, frame_id='base_link', mode='follow', speed_scale=0.25
            )
            assert not hasattr(goal, 'status'), f'goal not sent: {goal}'
        _, _, v = joints.latest()
        if np.abs(v).max() > 0.1:
            moving_since = moving_since or time.monotonic()
            if time.monotonic() - moving_since > 1.0:
                return goal
        else:
            moving_since = None
        time.sleep(0.02)


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT], ids=['SIGTERM', 'SIGINT'])
def test_shut_down_executor_stops_the_arm_first(cell, sig):
    executor_argv, commander, joints = cell
    executor = Proc(executor_argv, 'ur5_executor ready')
    try:
        executor.wait_ready(90)
        assert not commander.wait_for_servers(20), executor.text[-2000:]
        goal = _start_long_motion(commander, joints, executor)
        t_sig = time.monotonic()
        os.kill(executor.proc.pid, sig)
        code = executor.proc.wait(timeout=20)
        outcome = goal.result(10)
        time.sleep(1.5)
    finally:
        executor.kill()
    out = executor.text
    # the arm came to rest within ~0.5 s and stayed there
    after = joints.since(t_sig)
    rest = next(
        (
            t
            for i, (t, _, v) in enumerate(after)
            if all(np.abs(s[2]).max() < STOP_SPEED for s in after[i:])
        ),
        None,
    )
    assert rest is not None, 'the arm never came to rest'
    latency = rest - t_sig
    print(f'{sig.name}: arm at rest {latency:.3f} s after the signal')
    assert latency < 1.2, f'the arm came to rest only {latency:.2f} s after {sig.name}'
    q_rest = [q for t, q, _ in after if t >= rest]
    assert np.abs(q_rest[-1] - q_rest[0]).max() < 0.005, 'the arm moved on after the executor died'
    # the executor stopped the arm before shutting down, cleanly
    assert code == 0, out[-3000:]
    assert 'stopping the robot before shutting down' in out, out[-3000:]
    for bad in ('Traceback', 'InvalidHandle', 'Destroyable', 'Error'):
        assert bad not in out, f'{bad!r} in the executor output:\n{out[-3000:]}'
    # the client heard why its goal ended
    assert not outcome.success
    assert 'shutting down' in outcome.message, outcome


# --- G1: the unitree backend's halt, over DDS against the simulator's peer --------------------


@pytest.fixture
def g1(tmp_path):
    if os.environ.get('ROBOTRACER_G1_HALT_CHILD') != '1':
        pytest.skip('runs in its own process (test_g1_halt_in_its_own_process)')
    pytest.importorskip(
        'unitree_sdk2py', reason='needs unitree-sdk2py (scripts/setup_cyclonedds.sh)'
    )
    from trace_executor.backends.unitree import UnitreeBackend, UnitreeConfig
    from trace_executor.g1.planner import G1Planner

    # The Unitree SDK's channel factory is initialised once per process: every test of this
    # pytest run that talks to a G1 peer uses the same domain (backends/test_unitree.py: + 101).
    domain = (int(os.environ.get('ROS_DOMAIN_ID', '0') or 0) + 101) % 230
    from robotracer_sim.g1.peer_process import spawn_peer, stop_peer

    peer = spawn_peer(domain, tmp_path / 'peer.log')
    backend = None
    try:
        backend = UnitreeBackend(
            # a lenient stale limit: this test is about the halt, not about a loaded machine
            G1Planner().kinematics,
            UnitreeConfig(domain_id=domain, state_timeout_s=0.5),
        )
        backend.start()
        assert backend.wait_for_state(10), 'rt/lowstate and odometry arrive'
        yield backend
    finally:
        if backend is not None:
            backend.close()
        stop_peer(peer)


def _base_xy(g1) -> tuple[float, float]:
    """The base position, waiting out a short odometry gap (a loaded machine)."""
    from trace_executor.execution import BackendError

    deadline = time.monotonic() + 2.0
    while True:
        try:
            return g1.base_pose()[:2]
        except BackendError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_g1_halt_in_its_own_process():
    """The Unitree SDK's DDS channel factory is one per process: a second backend in the
    same pytest process (backends/test_unitree.py) would not see the peer's state after this test's
    backend closed. Run the halt test in a child pytest process of its own."""
    if os.environ.get('ROBOTRACER_G1_HALT_CHILD') == '1':
        pytest.skip('this is the child process')
    env = dict(os.environ, ROBOTRACER_G1_HALT_CHILD='1')
    test = f'{__file__}::test_g1_halt_ramps_the_arm_weight_out_and_stops_the_walk'
    res = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', test],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


def test_g1_halt_ramps_the_arm_weight_out_and_stops_the_walk(g1):
    from trace_executor.execution import MotionStatus
    from trace_executor.g1.plan_types import WalkSegment

    g1.streamer.engage()  # the arms under arm_sdk, as during a goal
    deadline = time.monotonic() + 5
    while not g1.streamer.engaged:
        assert time.monotonic() < deadline, 'arm_sdk weight did not ramp in'
        time.sleep(0.02)
    out: dict = {}

    def walk() -> None:
        out['res'] = g1.walk(
            WalkSegment((-1.0, 0.5, 0.0), 'odom', 5.0), lambda: None, lambda _f: None
        )
        out['t'] = time.monotonic()

    th = threading.Thread(target=walk)
    th.start()
    start = _base_xy(g1)
    deadline = time.monotonic() + 10
    while math.dist(_base_xy(g1), start) < 0.1:
        assert time.monotonic() < deadline and th.is_alive(), out
        time.sleep(0.02)
    t_halt = time.monotonic()
    g1.halt('executor shutting down (SIGTERM)')
    th.join(timeout=3)
    assert out['res'].status is MotionStatus.STOPPED, out['res']
    assert out['res'].reason == 'executor shutting down (SIGTERM)'
    assert out['t'] - t_halt < 0.3, 'the walk loop ended at once'
    while g1.streamer.weight > 0.0:
        assert time.monotonic() - t_halt < g1.config.ramp_out_s + 0.5, 'weight still in'
        time.sleep(0.02)
    ramp_s = time.monotonic() - t_halt
    assert ramp_s >= 0.9 * g1.config.ramp_out_s, f'weight dropped in {ramp_s:.2f} s: not a ramp'
    time.sleep(1.0)  # the base decelerates
    settled = _base_xy(g1)
    time.sleep(0.5)
    assert math.dist(_base_xy(g1), settled) < 0.01, 'the base walks on'
    later = g1.walk(WalkSegment((0.0, 0.0, 0.0), 'odom', 1.0), lambda: None, lambda _f: None)
    assert later.status is MotionStatus.STOPPED, 'motions after the halt are refused'
