"""The simulated G1 answers real unitree_sdk2py clients over CycloneDDS on loopback.

One peer process (``python -m robotracer_sim.g1.run_peer``) serves the module; every client is
its own child process (the SDK's ChannelFactory is a process-wide singleton), speaking only
the robot's interfaces: ``rt/lowstate``, ``rt/arm_sdk``, ``rt/odommodestate`` and LocoClient.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip('unitree_sdk2py', reason='needs unitree-sdk2py (scripts/setup_cyclonedds.sh)')

from robotracer_sim.g1.peer_process import spawn_peer, stop_peer  # noqa: E402

pytestmark = pytest.mark.slow

DOMAIN = int(os.environ.get('ROS_DOMAIN_ID', '0') or 0)

PRELUDE = textwrap.dedent(
    """
    import json, math, sys, time
    import numpy as np
    from unitree_sdk2py.core.channel import (
        ChannelFactoryInitialize, ChannelPublisher, ChannelSubscriber)
    from unitree_sdk2py.idl.default import unitree_hg_msg_dds__LowCmd_
    from unitree_sdk2py.idl.unitree_go.msg.dds_ import SportModeState_
    from unitree_sdk2py.idl.unitree_hg.msg.dds_ import LowCmd_, LowState_
    from unitree_sdk2py.utils.crc import CRC

    ChannelFactoryInitialize(int(sys.argv[1]), 'lo')
    crc = CRC()
    S = {'n': 0, 'crc': (0, 0), 'last': None, 'odom': None}
    def on_state(m):
        S['n'] += 1
        if S['n'] % 10 == 0:  # the CRC costs 0.4 ms in Python: check a sample of them
            ok = crc.Crc(m) == m.crc
            checked, good = S['crc']
            S['crc'] = (checked + 1, good + ok)  # one store: a reader sees both or neither
        S['last'] = m
    sub = ChannelSubscriber('rt/lowstate', LowState_)
    sub.Init(on_state, 0)
    osub = ChannelSubscriber('rt/odommodestate', SportModeState_)
    osub.Init(lambda m: S.__setitem__('odom', m), 0)

    def wait_state(timeout=10.0):
        t = time.time()
        while (S['last'] is None or S['odom'] is None) and time.time() - t < timeout:
            time.sleep(0.05)
        assert S['last'] is not None, 'no rt/lowstate'

    def q():
        return [float(S['last'].motor_state[i].q) for i in range(29)]

    def pose():
        o = S['odom']
        return [float(o.position[0]), float(o.position[1]), float(o.imu_state.rpy[2])]

    def speed():
        o = S['odom']
        return float(math.hypot(o.velocity[0], o.velocity[1]))

    def out(**kw):
        print('RESULT ' + json.dumps(kw), flush=True)
    """
)


def _run_client(body: str, timeout: float = 90.0) -> dict:
    code = PRELUDE + textwrap.dedent(body)
    proc = subprocess.run(
        [sys.executable, '-c', code, str(DOMAIN)],
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )
    for line in proc.stdout.splitlines():
        if line.startswith('RESULT '):
            return json.loads(line[len('RESULT ') :])
    raise AssertionError(f'client failed (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}')


@pytest.fixture(scope='module')
def peer(tmp_path_factory):
    log = tmp_path_factory.mktemp('g1peer') / 'peer.log'
    proc = spawn_peer(DOMAIN, log, '--lowstate-rate', '250')
    try:
        yield proc, log
    finally:
        stop_peer(proc)


def test_lowstate_arrives_at_200hz_with_valid_crc(peer):
    r = _run_client(
        """
        wait_state()
        time.sleep(0.5)
        n0, t0 = S['n'], time.time()
        time.sleep(3.0)
        rate = (S['n'] - n0) / (time.time() - t0)
        m = S['last']
        checked, good = S['crc']
        out(rate=rate, crc_ok=good, n=checked, q=q(),
            acc_z=float(m.imu_state.accelerometer[2]), tick=int(m.tick))
        """
    )
    assert r['rate'] >= 200.0
    assert r['n'] > 0 and r['crc_ok'] == r['n'], 'LowState_ CRC mismatches'
    assert r['q'][18] == pytest.approx(1.1, abs=0.05), 'standing pose: left elbow'
    assert r['q'][3] == pytest.approx(0.3, abs=0.01), 'standing pose: left knee'
    assert r['acc_z'] == pytest.approx(9.81, abs=0.1)
    assert r['tick'] > 0


ARM_CLIENT = """
wait_state()
stand = q()
pub = ChannelPublisher('rt/arm_sdk', LowCmd_)
pub.Init()
target = list(stand)
target[12:15] = [0.15, 0.0, 0.05]
target[15:22] = [-0.4, 0.9, 0.2, 3.0, 0.1, 0.2, -0.1]   # left elbow 3.0: beyond its 2.09 limit
target[22:29] = [-0.3, -0.8, -0.2, 0.6, -0.1, -0.2, 0.1]
cmd = unitree_hg_msg_dds__LowCmd_()

def send(weight, good_crc=True):
    cmd.motor_cmd[29].q = weight
    for j in range(12, 29):
        c = cmd.motor_cmd[j]
        c.q, c.dq, c.tau, c.kp, c.kd = target[j], 0.0, 0.0, 60.0, 1.5
    cmd.crc = crc.Crc(cmd) if good_crc else 12345
    pub.Write(cmd)

for _ in range(25):          # a command with a wrong CRC must be dropped
    send(1.0, good_crc=False)
    time.sleep(0.02)
time.sleep(0.5)
after_bad = q()
for i in range(51):          # ramp the weight in over 1 s at 50 Hz
    send(i / 50)
    time.sleep(0.02)
for _ in range(100):         # hold 2 s
    send(1.0)
    time.sleep(0.02)
held = q()
for i in range(51):          # ramp out
    send(1.0 - i / 50)
    time.sleep(0.02)
time.sleep(2.0)
out(stand=stand, after_bad=after_bad, held=held, released=q(), target=target)
"""


def test_arm_sdk_weight_ramp_follows_targets_clamps_limits_and_releases(peer):
    r = _run_client(ARM_CLIENT)
    stand, target = r['stand'], r['target']
    assert max(abs(a - b) for a, b in zip(r['after_bad'], stand, strict=True)) < 0.01, (
        'bad CRC ignored'
    )
    for j in range(12, 29):
        want = 2.0944 if j == 18 else target[j]  # the elbow target is clamped to its limit
        assert r['held'][j] == pytest.approx(want, abs=0.05), f'motor {j}'
    assert r['held'][18] <= 2.0944 + 0.01
    assert max(abs(r['released'][j] - stand[j]) for j in range(12, 29)) < 0.05
    _, log = peer
    text = log.read_text()
    assert 'left_elbow_joint (motor 18) target 3.0000 rad clamped to 2.0944' in text
    assert 'CRC 12345' in text


def test_loco_client_moves_within_limits_and_stops(peer):
    r = _run_client(
        """
        from unitree_sdk2py.g1.loco.g1_loco_client import LocoClient
        wait_state()
        lc = LocoClient()
        lc.SetTimeout(5.0)
        lc.Init()
        p0 = pose()
        lc.Move(-2.0, 0.0, 0.0, True)          # 2 m/s backwards: limited to 0.5 m/s
        time.sleep(1.5)
        v_fast = speed()
        p1 = pose()
        lc.StopMove()
        time.sleep(1.5)
        p2 = pose()
        time.sleep(0.5)
        p3 = pose()
        code_turn = lc._Call(7105, json.dumps({'velocity': [0.0, 0.0, 0.5], 'duration': 1.0}))[0]
        time.sleep(2.0)
        p4 = pose()
        bad_code = lc._Call(7105, 'not json')[0]
        bad_nan = lc._Call(7105, '{"velocity": [NaN, 0, 0], "duration": 1}')[0]
        lc.Damp()
        time.sleep(0.2)
        p5 = pose()
        lc.Move(0.3, 0.0, 0.0)
        time.sleep(1.0)
        p6 = pose()
        lc.Start()
        out(p0=p0, p1=p1, p2=p2, p3=p3, p4=p4, p5=p5, p6=p6, v_fast=v_fast,
            code_turn=code_turn, bad_code=bad_code, bad_nan=bad_nan)
        """
    )
    p0, p1, p2, p3 = r['p0'], r['p1'], r['p2'], r['p3']
    assert p1[0] < p0[0] - 0.3, 'moved backwards'
    assert abs(p1[1] - p0[1]) < 0.01
    assert r['v_fast'] <= 0.5 + 1e-3 and r['v_fast'] > 0.45
    assert p0[0] - p1[0] <= 0.5 * 1.5 + 0.05, 'never faster than 0.5 m/s'
    assert abs(p3[0] - p2[0]) < 1e-4 and abs(p3[1] - p2[1]) < 1e-4, 'stopped'
    assert r['code_turn'] == 0
    assert r['p4'][2] - p3[2] == pytest.approx(0.5, abs=0.1), 'turned left 0.5 rad'
    assert r['bad_code'] == 3204 and r['bad_nan'] == 3204, 'malformed parameters refused'
    assert abs(r['p6'][0] - r['p5'][0]) < 1e-4, 'Damp: velocity commands ignored'
