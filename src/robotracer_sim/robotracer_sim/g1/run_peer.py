"""Run the G1 world and its Unitree DDS peer without ROS: ``python -m robotracer_sim.g1.run_peer``.

For tests, benchmarks and machines without ROS: the same world and DDS interface as the
``g1_world`` node, minus the ROS topics and the camera. Prints one line ``G1_PEER_READY {json}``
when the DDS interface is up, and ``G1_PEER_STATS {json}`` when it stops (SIGINT/SIGTERM or
``--duration``). SIGUSR1 pauses ``rt/lowstate`` (the world goes on, commands are still taken),
SIGUSR2 resumes it: a client's stale-state handling can be tested without ROS.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from robotracer_sim.common.scene_schema import SceneError, scene_file_path
from robotracer_sim.g1.base import BaseLimits
from robotracer_sim.g1.dds_peer import G1DdsPeer, PeerConfig
from robotracer_sim.g1.runner import RealtimeRunner
from robotracer_sim.g1.scene import load_g1_scene
from robotracer_sim.g1.world import G1World


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog='python -m robotracer_sim.g1.run_peer', description=__doc__)
    p.add_argument('--scene', default='', help='scene YAML (default: config/scenes/g1_room.yaml)')
    p.add_argument(
        '--domain',
        type=int,
        default=int(os.environ.get('ROS_DOMAIN_ID', '0') or 0),
        help='DDS domain id (default: $ROS_DOMAIN_ID or 0)',
    )
    p.add_argument('--interface', default='lo', help="network interface ('' = auto)")
    p.add_argument('--loco-service', default='sport', help='LocoClient RPC service name')
    p.add_argument('--lowstate-rate', type=float, default=250.0, help='rt/lowstate rate, Hz')
    p.add_argument('--hand-state-rate', type=float, default=50.0, help='Dex3 state rate, Hz')
    p.add_argument('--odom-rate', type=float, default=50.0, help='rt/odommodestate rate, Hz')
    p.add_argument('--no-crc-check', action='store_true', help='accept arm_sdk with a bad CRC')
    p.add_argument('--sdk-lowstate', action='store_true', help='encode lowstate with the SDK')
    p.add_argument(
        '--priority',
        type=int,
        default=10,
        help='SCHED_FIFO priority of the physics + rt/lowstate thread (0: normal scheduling)',
    )
    p.add_argument('--duration', type=float, default=0.0, help='stop after this many s (0: run)')
    return p


def main(argv: list[str] | None = None) -> int:
    """Run until interrupted; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        scene = load_g1_scene(args.scene or scene_file_path('g1_room.yaml'))
        world = G1World(scene, BaseLimits())
    except (SceneError, FileNotFoundError, ValueError) as exc:
        print(f'g1 peer: cannot build the world: {exc}', file=sys.stderr)
        return 2
    peer = G1DdsPeer(
        world,
        PeerConfig(
            domain_id=args.domain,
            interface=args.interface,
            loco_service=args.loco_service,
            check_crc=not args.no_crc_check,
            fast_lowstate=not args.sdk_lowstate,
        ),
    )
    try:
        peer.start()
    except RuntimeError as exc:
        print(f'g1 peer: {exc}', file=sys.stderr)
        return 3
    runner = RealtimeRunner(
        world,
        args.lowstate_rate,
        [
            (args.lowstate_rate, peer.publish_lowstate),
            (args.hand_state_rate, peer.publish_hand_states),
            (args.odom_rate, peer.publish_odometry),
        ],
        on_error=lambda e: print(f'g1 peer: publisher error: {e!r}', file=sys.stderr),
        priority=args.priority,
    )
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    signal.signal(signal.SIGUSR1, lambda *_: setattr(peer, 'lowstate_paused', True))
    signal.signal(signal.SIGUSR2, lambda *_: setattr(peer, 'lowstate_paused', False))
    runner.start()
    ready = {
        'domain': args.domain,
        'interface': args.interface,
        'loco': args.loco_service,
        'lowstate_rate': runner.tick_rate,
        'pid': os.getpid(),
        'scheduling': runner.scheduling,
    }
    print('G1_PEER_READY ' + json.dumps(ready), flush=True)
    done.wait(args.duration if args.duration > 0 else None)
    runner.stop()
    st, ps = runner.stats, peer.stats
    stats = {
        'sim_time': round(st.sim_time, 3),
        'wall_time': round(st.wall_time, 3),
        'real_time_factor': round(st.real_time_factor, 3),
        'physics_capacity': round(st.physics_capacity, 2),
        'overruns': st.overruns,
        'max_tick_gap_ms': round(st.max_tick_gap * 1000.0, 1),
        'lowstate_published': ps.lowstate_published,
        'arm_sdk_received': ps.arm_sdk_received,
        'arm_sdk_crc_errors': ps.arm_sdk_crc_errors,
        'arm_sdk_clamped': ps.arm_sdk_clamped,
        'rpc_calls': ps.rpc_calls,
        'grasp': world.grasp_state(),
    }
    print('G1_PEER_STATS ' + json.dumps(stats), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
