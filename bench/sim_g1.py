"""Benchmark of the simulated G1 (prints one JSON object).

- in-process: physics cost per 2 ms step, head-camera RGB-D render time (640×480),
  rt/lowstate encoding cost (fast codec vs the SDK's objects);
- across processes on loopback (``run_peer`` + a real unitree_sdk2py client): rt/lowstate
  rate received, the peer's real-time factor, LocoClient RPC round trip, and the command →
  state round trip (an rt/arm_sdk target change until rt/lowstate shows the joint moving).

Run: ``source setup.bash && python bench/sim_g1.py`` (~40 s).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

CLIENT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from unitree_sdk2py.core.channel import (
        ChannelFactoryInitialize, ChannelPublisher, ChannelSubscriber)
    from unitree_sdk2py.g1.loco.g1_loco_client import LocoClient
    from unitree_sdk2py.idl.default import unitree_hg_msg_dds__LowCmd_
    from unitree_sdk2py.idl.unitree_hg.msg.dds_ import LowCmd_, LowState_
    from unitree_sdk2py.utils.crc import CRC

    ChannelFactoryInitialize(int(sys.argv[1]), 'lo')
    S = {'n': 0, 'q': None, 't': 0.0}
    def on_state(m):
        S['n'] += 1
        S['q'] = m.motor_state[16].q
        S['t'] = time.perf_counter()
    sub = ChannelSubscriber('rt/lowstate', LowState_)
    sub.Init(on_state, 0)
    while S['q'] is None:
        time.sleep(0.01)
    time.sleep(0.5)
    n0, t0 = S['n'], time.perf_counter()
    time.sleep(3.0)
    rate = (S['n'] - n0) / (time.perf_counter() - t0)
    lc = LocoClient()
    lc.SetTimeout(2.0)
    lc.Init()
    rpc = []
    for _ in range(50):
        t = time.perf_counter()
        code, _ = lc._Call(7001, '{}')
        rpc.append(time.perf_counter() - t)
    pub = ChannelPublisher('rt/arm_sdk', LowCmd_)
    pub.Init()
    crc = CRC()
    cmd = unitree_hg_msg_dds__LowCmd_()
    cmd.motor_cmd[29].q = 1.0
    for j in range(12, 29):
        cmd.motor_cmd[j].kp, cmd.motor_cmd[j].kd = 60.0, 1.5
    target = 0.15
    rtt = []
    for i in range(20):
        target = -target
        cmd.motor_cmd[16].q = 0.15 + target
        cmd.crc = crc.Crc(cmd)
        before = S['q']
        t = time.perf_counter()
        pub.Write(cmd)
        while abs(S['q'] - before) < 1e-4 and time.perf_counter() - t < 1.0:
            time.sleep(0.0002)
        rtt.append(S['t'] - t)
        time.sleep(0.3)
    print('RESULT ' + json.dumps({'rate': rate, 'rpc': rpc, 'rtt': rtt}), flush=True)
    """
)


def _pct(values: list[float], p: float) -> float:
    return round(float(np.percentile(np.asarray(values) * 1000.0, p)), 3)


def in_process() -> dict:
    """Physics, render and codec costs in this process."""
    from unitree_sdk2py.idl.default import unitree_hg_msg_dds__LowState_
    from unitree_sdk2py.utils.crc import CRC

    from robotracer_sim.g1.lowstate_codec import LowStateEncoder
    from robotracer_sim.g1.scene import load_g1_scene
    from robotracer_sim.g1.world import G1World, HeadCamera
    from robotracer_sim.ur5.scene import default_scene_path

    t = time.perf_counter()
    world = G1World(load_g1_scene(default_scene_path('g1_room.yaml')))
    build_s = time.perf_counter() - t
    world.step(100)
    t = time.perf_counter()
    world.step(2000)
    step_us = (time.perf_counter() - t) / 2000 * 1e6
    cam = HeadCamera(world)
    cam.capture()
    times = []
    for _ in range(10):
        t = time.perf_counter()
        cam.capture()
        times.append(time.perf_counter() - t)
    cam.close()
    enc = LowStateEncoder()
    s = world.body_state()
    t = time.perf_counter()
    for _ in range(500):
        enc.encode(s.tick_ms, s.q, s.dq, s.ddq, s.tau, s.quat_wxyz, s.gyro, s.accel, s.rpy)
    fast_us = (time.perf_counter() - t) / 500 * 1e6
    crc = CRC()
    msg = unitree_hg_msg_dds__LowState_()
    t = time.perf_counter()
    for _ in range(100):
        for i in range(29):
            msg.motor_state[i].q = float(s.q[i])
        msg.crc = crc.Crc(msg)
        msg.serialize()
    sdk_us = (time.perf_counter() - t) / 100 * 1e6
    return {
        'world_build_s': round(build_s, 3),
        'physics_step_us': round(step_us, 1),
        'physics_capacity_x_realtime': round(2000.0 / step_us, 2),
        'render_rgbd_640x480_ms_p50': _pct(times, 50),
        'render_rgbd_640x480_ms_p95': _pct(times, 95),
        'lowstate_encode_fast_us': round(fast_us, 1),
        'lowstate_encode_sdk_us': round(sdk_us, 1),
    }


def across_processes(domain: int) -> dict:
    """Lowstate rate, RPC and command→state round trips against a run_peer process."""
    log = tempfile.NamedTemporaryFile('w+', suffix='.log', delete=False)
    peer = subprocess.Popen(
        [sys.executable, '-m', 'robotracer_sim.g1.run_peer', '--domain', str(domain),
         '--interface', 'lo', '--lowstate-rate', '250'],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 90
        while 'G1_PEER_READY' not in open(log.name).read():
            if peer.poll() is not None or time.time() > deadline:
                raise RuntimeError('peer did not start: ' + open(log.name).read())
            time.sleep(0.2)
        out = subprocess.run(
            [sys.executable, '-c', CLIENT, str(domain)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith('RESULT ')), None)
        if line is None:
            raise RuntimeError('client failed: ' + out.stdout + out.stderr)
        r = json.loads(line[7:])
    finally:
        if peer.poll() is None:
            os.killpg(peer.pid, signal.SIGINT)
            peer.wait(timeout=15)
    text = open(log.name).read()
    os.unlink(log.name)
    stats = json.loads(text.split('G1_PEER_STATS ', 1)[1].splitlines()[0])
    return {
        'lowstate_rate_hz_nominal': 250.0,
        'lowstate_rate_hz_received': round(r['rate'], 1),
        'peer_real_time_factor': stats['real_time_factor'],
        'peer_physics_capacity_x_realtime': stats['physics_capacity'],
        'peer_overruns': stats['overruns'],
        'rpc_round_trip_ms_p50': _pct(r['rpc'], 50),
        'rpc_round_trip_ms_p95': _pct(r['rpc'], 95),
        'arm_sdk_to_lowstate_ms_p50': _pct(r['rtt'], 50),
        'arm_sdk_to_lowstate_ms_p95': _pct(r['rtt'], 95),
    }


def main() -> None:
    """Run both parts and print the JSON."""
    domain = int(os.environ.get('ROBOTRACER_BENCH_DOMAIN', str(100 + os.getpid() % 100)))
    result = {'benchmark': 'sim_g1', 'machine_load_1min': round(os.getloadavg()[0], 2)}
    result.update(in_process())
    result.update(across_processes(domain))
    print(json.dumps(result))


if __name__ == '__main__':
    main()
