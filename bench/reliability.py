"""Reliability benchmark: faults, fuzzing, a soak of random instructions; prints one JSON object.

Sections (each can be skipped):

- ``client_race``: back-to-back goals to the real executor action servers (scripted robot):
  goals lost or misreported by rclpy's plain ActionClient and by the project's Commander.
- ``faults``: the fault-injection test modules (model, sensors, robot, client), run with pytest:
  faults tried / handled.
- ``fuzz``: the answer parser and every backend's response handling on ``--fuzz`` generated
  inputs: valid traces, clean errors, crashes, slowest input.
- ``soak``: ``--ur5`` random instructions on the UR5 and ``--g1`` on the G1 in the simulator
  (random object positions, some targets moved mid-motion, some objects out of view, odd
  pairs): succeeded / failed with reason, misreports (success claimed but the object is not at
  its destination), crashes, hangs, false replans (replans when nothing was moved), and per
  process the resident memory growth from instruction 10 to the end, file descriptors and
  threads.

Usage: ``python bench/reliability.py [--ur5 100] [--g1 30] [--fuzz 100000] [--seed 1]
[--skip client_race,faults,fuzz,soak]``. Takes about an hour with the defaults on 2 cores.
"""

from __future__ import annotations

import argparse
from collections import Counter
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAULT_TESTS = [
    'src/robotracer_ros/test/backends/test_model_faults.py',
    'src/robotracer_ros/test/nodes/test_perception_sensor_faults.py',
    'src/robotracer_ros/test/test_security.py',
    'src/robotracer_commander/test/test_commander.py',
    'src/trace_executor/test/nodes/test_shutdown.py',
    'src/trace_executor/test/test_error_codes.py',
]


# --- process figures -----------------------------------------------------------------------------
def proc_stats(pid: int) -> dict | None:
    """RSS (MiB), open file descriptors and threads of a live process, from /proc."""
    try:
        with open(f'/proc/{pid}/status') as f:
            status = dict(line.split(':', 1) for line in f if ':' in line)
        return {
            'rss_mib': int(status['VmRSS'].split()[0]) / 1024.0,
            'threads': int(status['Threads']),
            'fds': len(os.listdir(f'/proc/{pid}/fd')),
            'name': status['Name'].strip(),
        }
    except (FileNotFoundError, ProcessLookupError, KeyError, PermissionError):
        return None


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
        except (FileNotFoundError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cmdline_name(pid: int) -> str:
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            words = [w.decode(errors='replace') for w in f.read().split(b'\0') if w]
    except FileNotFoundError:
        return str(pid)
    for w in words:
        base = os.path.basename(w)
        if base.endswith(('_world', '_executor', 'perception_node')) or base in ('robotracer',):
            return base
        if w.startswith(('robotracer_sim.', 'trace_executor.', 'robotracer_ros.')):
            return w.rsplit('.', 1)[-1]
    return os.path.basename(words[0]) if words else str(pid)


class ProcessWatch:
    """Samples RSS / fds / threads of a set of processes; growth from a baseline to the end."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.baseline: dict[int, dict] = {}
        self.last: dict[int, dict] = {}

    def sample(self) -> dict[int, dict]:
        return {p: s for p in self.pids if (s := proc_stats(p)) is not None}

    def set_baseline(self) -> None:
        self.baseline = self.sample()

    def report(self) -> dict:
        self.last = self.sample()
        out = {}
        for pid, base in self.baseline.items():
            end = self.last.get(pid)
            name = f'{cmdline_name(pid)}[{pid}]'
            if end is None:
                out[name] = {'alive': False}
                continue
            out[name] = {
                'alive': True,
                'rss_mib_start': round(base['rss_mib'], 1),
                'rss_mib_end': round(end['rss_mib'], 1),
                'rss_growth_pct': round(100.0 * (end['rss_mib'] / base['rss_mib'] - 1.0), 1),
                'fds_start': base['fds'],
                'fds_end': end['fds'],
                'threads_start': base['threads'],
                'threads_end': end['threads'],
            }
        return out


# --- client race ---------------------------------------------------------------------------------
def bench_client_race(goals: int) -> dict:
    import rclpy
    from rclpy.action import ActionClient
    from rclpy.executors import MultiThreadedExecutor

    from robotracer_commander import Commander
    from robotracer_msgs.action import ExecuteInstruction

    proc = subprocess.Popen(
        [sys.executable, '-m', 'trace_executor.testing.scripted_executor', '--duration', '0'],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert 'ready' in proc.stdout.readline()
        rclpy.init()
        node = rclpy.create_node('race_bench')
        ex = MultiThreadedExecutor(num_threads=2)
        ex.add_node(node)
        threading.Thread(target=ex.spin, daemon=True).start()
        # deliberately rclpy's plain client: this section measures the race it has
        plain = ActionClient(node, ExecuteInstruction, '/robotracer/execute_instruction')
        assert plain.wait_for_server(timeout_sec=20)
        lost_plain = 0
        n_plain = min(goals, 100)
        for i in range(n_plain):
            fut = plain.send_goal_async(ExecuteInstruction.Goal(instruction=f'g{i}'))
            deadline = time.monotonic() + 2.0
            while not fut.done() and time.monotonic() < deadline:
                time.sleep(0.001)
            if not fut.done():
                lost_plain += 1
                continue
            res = fut.result().get_result_async()
            deadline = time.monotonic() + 2.0
            while not res.done() and time.monotonic() < deadline:
                time.sleep(0.001)
            lost_plain += not res.done()
        ex.shutdown()
        node.destroy_node()
        cmd = Commander()
        assert cmd.wait_for_servers(20) == []
        bad = 0
        t0 = time.monotonic()
        for i in range(goals):
            out = cmd.execute_instruction(f'goal {i}', timeout_s=10)
            bad += not (out.success and out.message.endswith(f'goal {i}'))
        per_goal_ms = 1000 * (time.monotonic() - t0) / goals
        cmd.close()
        return {
            'plain_actionclient': {'goals': n_plain, 'lost': lost_plain},
            'commander': {
                'goals': goals,
                'lost_or_misreported': bad,
                'round_trip_ms': round(per_goal_ms, 1),
            },
        }
    finally:
        rclpy.try_shutdown()
        proc.terminate()
        proc.wait(10)


# --- faults --------------------------------------------------------------------------------------
def bench_faults() -> dict:
    files = [f for f in FAULT_TESTS if os.path.exists(os.path.join(ROOT, f))]
    with tempfile.TemporaryDirectory() as tmp:
        xml = os.path.join(tmp, 'faults.xml')
        t0 = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                '-m',
                'pytest',
                '-q',
                '-p',
                'no:randomly',
                f'--junitxml={xml}',
                *files,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        took = time.monotonic() - t0
        tree = ET.parse(xml)
    cases = list(tree.iter('testcase'))
    failed = [
        f'{c.get("classname")}::{c.get("name")}'
        for c in cases
        if c.find('failure') is not None or c.find('error') is not None
    ]
    skipped = sum(c.find('skipped') is not None for c in cases)
    return {
        'modules': files,
        'faults_tried': len(cases) - skipped,
        'faults_handled': len(cases) - skipped - len(failed),
        'not_handled': failed,
        'skipped': skipped,
        'seconds': round(took, 1),
    }


# --- fuzz ----------------------------------------------------------------------------------------
def bench_fuzz(inputs: int) -> dict:
    try:
        from robotracer_ros.testing.fuzz import run_fuzz_campaign
    except ImportError as exc:
        return {'error': f'no fuzz campaign: {exc}'}
    t0 = time.monotonic()
    out = run_fuzz_campaign(inputs)
    out['seconds'] = round(time.monotonic() - t0, 1)
    return out


# --- soak ----------------------------------------------------------------------------------------
UR5_OBJECTS = ['red_cube', 'blue_cube', 'green_cube', 'cup']
UR5_PLACES = {'plate': 'on the plate', 'bowl': 'in the bowl'}
UR5_WORDS = {
    'red_cube': 'red cube',
    'blue_cube': 'blue cube',
    'green_cube': 'green cube',
    'cup': 'yellow cup',
    'plate': 'plate',
    'bowl': 'bowl',
}
UR5_HEIGHT = {
    'red_cube': 0.0225,
    'blue_cube': 0.0225,
    'green_cube': 0.0225,
    'cup': 0.045,
    'plate': 0.006,
    'bowl': 0.0,
}


def _ur5_layout(rng: random.Random) -> dict[str, tuple[float, float, float]]:
    """Random non-overlapping positions on the reachable part of the table."""
    placed: dict[str, tuple[float, float, float]] = {}
    for name in ['plate', 'bowl', *UR5_OBJECTS]:
        for _ in range(200):
            x, y = rng.uniform(0.32, 0.66), rng.uniform(-0.34, 0.34)
            gap = 0.17 if name in ('plate', 'bowl') else 0.10
            if all(math.hypot(x - p[0], y - p[1]) > gap for p in placed.values()):
                placed[name] = (x, y, UR5_HEIGHT[name])
                break
    return placed


def _classify(outcome, expect_ok: bool, at_target: bool | None) -> str:
    """One word for how an instruction ended (see the module docstring)."""
    from robotracer_commander import Status

    if outcome is None:
        return 'crash'
    if outcome.status in (Status.TIMEOUT, Status.SERVER_GONE, Status.NO_SERVER):
        return 'hang'
    if outcome.success:
        if at_target is False:
            return 'misreport'
        return 'succeeded'
    if 'internal error' in outcome.message:
        return 'crash'
    return 'failed_expected' if not expect_ok else 'failed'


SOAK_KINDS = {'plain': 6, 'moved': 2, 'out_of_view': 1, 'odd': 1}


def soak_ur5(n: int, rng: random.Random, kinds: dict[str, int] = SOAK_KINDS) -> dict:
    from std_srvs.srv import SetBool

    from trace_executor.testing.ur5_sim import Ur5Sim

    sim = Ur5Sim()
    watch = ProcessWatch(descendants(sim.proc.pid))
    rows = []
    log_start = len(sim.log)
    try:
        for i in range(n):
            if i == 10:
                watch.set_baseline()
            layout = _ur5_layout(rng)
            sim._wait(sim.gripper.call_async(SetBool.Request(data=False)))
            for name, xyz in layout.items():
                if name in sim.poses():
                    sim.move(name, xyz)
            time.sleep(0.5)
            obj = rng.choice(UR5_OBJECTS)
            kind = rng.choices(list(kinds), list(kinds.values()))[0]
            if kind == 'odd':
                dest = rng.choice([o for o in UR5_OBJECTS if o != obj])
                text = f'put the {UR5_WORDS[obj]} on the {UR5_WORDS[dest]}'
            else:
                dest = rng.choice(list(UR5_PLACES))
                text = f'put the {UR5_WORDS[obj]} {UR5_PLACES[dest]}'
            expect_ok = kind in ('plain', 'moved')
            if kind == 'out_of_view':
                sim.move(obj, (rng.uniform(1.2, 1.5), rng.uniform(-0.3, 0.3), 0.0225 - 0.75))
                time.sleep(0.3)
            moved = {}

            def on_feedback(f, obj=obj, kind=kind, moved=moved) -> None:
                if kind == 'moved' and not moved and f.phase == 2 and f.progress > 0.05:
                    moved['t'] = time.monotonic()
                    threading.Thread(target=_nudge, args=(sim, obj, rng), daemon=True).start()

            t0 = time.monotonic()
            try:
                ok, outcome, _fb = sim.run(
                    sim.instruct(text), on_feedback=on_feedback, timeout=150
                )
            except Exception as exc:  # noqa: BLE001 - a crash of the harness is a finding
                outcome = None
                print(f'  {i}: harness error {exc!r}', file=sys.stderr)
            at_target = None
            log_from = len(sim.log)
            if outcome is not None and outcome.success and kind in ('plain', 'moved'):
                p = sim.poses()
                off = float(np.linalg.norm(p[obj][0][:2] - p[dest][0][:2]))
                at_target = off < 0.06
            rows.append(_row('ur5', i, text, kind, outcome, expect_ok, at_target, t0))
            if at_target is False:  # what the executor did, for the report
                rows[-1]['ended_m_from_destination'] = round(off, 3)
                rows[-1]['log'] = [ln.rstrip() for ln in sim.log[log_start:log_from]][-40:]
            if kind == 'plain' and rows[-1]['replans']:  # a false replan: what it saw
                lines = sim.log[log_start:log_from]
                rows[-1]['replan_log'] = [ln.rstrip() for ln in lines if 'replan' in ln][-10:]
            log_start = len(sim.log)
            if sim.proc.poll() is not None:
                rows[-1]['verdict'] = 'crash'
                break
        if not watch.baseline:
            watch.set_baseline()
        return {'rows': rows, 'processes': watch.report()}
    finally:
        sim.close()


def _nudge(sim, obj: str, rng: random.Random) -> None:
    """Move the target 5-8 cm while the arm reaches for it (refused once it is held)."""
    p = sim.position(obj)
    a = rng.uniform(0, 2 * math.pi)
    d = rng.uniform(0.05, 0.08)
    sim.move(obj, (p[0] + d * math.cos(a), p[1] + d * math.sin(a), p[2]))


G1_OBJECTS = {'red_cup': 'red cup', 'blue_block': 'blue block', 'yellow_bottle': 'yellow bottle'}
G1_PLACES = {'plate': 'on the plate', 'green_bowl': 'in the green bowl'}


def soak_g1(n: int, rng: random.Random, logs: str = '') -> dict:
    from trace_executor.testing.g1_sim import G1Sim

    sim = G1Sim()
    watch = ProcessWatch([p.proc.pid for p in sim.procs])
    rows = []
    try:
        for i in range(n):
            if i == min(10, n - 1):
                watch.set_baseline()
            held = sim.reset_objects(allow_held=True)
            if held:
                print(
                    f'  g1 {i}: still holding {", ".join(held)} (left in the hand)',
                    file=sys.stderr,
                )
            obj = rng.choice(list(G1_OBJECTS))
            kind = rng.choices(['plain', 'odd'], [4, 1])[0]
            if kind == 'odd':
                dest = rng.choice([o for o in G1_OBJECTS if o != obj])
                text = f'put the {G1_OBJECTS[obj]} next to the {G1_OBJECTS[dest]}'
            else:
                dest = rng.choice(list(G1_PLACES))
                text = f'put the {G1_OBJECTS[obj]} {G1_PLACES[dest]}'
            t0 = time.monotonic()
            try:
                _ok, outcome, _fb = sim.run(sim.instruct(text), timeout=300)
            except Exception as exc:  # noqa: BLE001
                outcome = None
                print(f'  {i}: harness error {exc!r}', file=sys.stderr)
            at_target = None
            if outcome is not None and outcome.success and kind == 'plain':
                p = sim.poses()
                at_target = bool(np.linalg.norm(p[obj][0][:2] - p[dest][0][:2]) < 0.10)
            rows.append(_row('g1', i, text, kind, outcome, kind == 'plain', at_target, t0))
            try:
                sim.wait_idle(30)
            except AssertionError as exc:
                rows[-1]['verdict'] = 'hang'
                rows[-1]['message'] += f' | not idle after: {exc}'[:200]
            if any(p.proc.poll() is not None for p in sim.procs):
                rows[-1]['verdict'] = 'crash'
                break
        if not watch.baseline:
            watch.set_baseline()
        return {'rows': rows, 'processes': watch.report()}
    finally:
        if logs:  # every process's output, to read a failure's details afterwards
            sim.save_logs(os.path.join(logs, 'g1'))
        sim.close()


def _row(robot, i, text, kind, outcome, expect_ok, at_target, t0) -> dict:
    """One soak instruction's record (and a progress line on stderr)."""
    verdict = _classify(outcome, expect_ok, at_target)
    row = {
        'robot': robot,
        'i': i,
        'text': text,
        'kind': kind,
        'verdict': verdict,
        'status': outcome.status.value if outcome else 'none',
        'error_code': outcome.error_code if outcome else -1,
        'replans': outcome.replans if outcome else 0,
        'message': (outcome.message if outcome else '')[:200],
        'seconds': round(time.monotonic() - t0, 1),
    }
    print(f'  {robot} {i}: {verdict:<15} {text!r} ({row["message"][:80]})', file=sys.stderr)
    return row


def summarise(rows: list[dict]) -> dict:
    verdicts = Counter(r['verdict'] for r in rows)
    reasons = Counter(
        f'{r["status"]}/{r["error_code"]}' for r in rows if r['verdict'] != 'succeeded'
    )
    return {
        'instructions_run': len(rows),
        'succeeded': verdicts['succeeded'],
        'failed_as_expected': verdicts['failed_expected'],
        'failed': verdicts['failed'],
        'misreported': verdicts['misreport'],
        'crashes': verdicts['crash'],
        'hangs': verdicts['hang'],
        'false_replans': sum(r['replans'] for r in rows if r['kind'] == 'plain'),
        'failure_reasons': dict(reasons),
        'failures': [
            {
                k: r[k]
                for k in ('text', 'kind', 'verdict', 'message', 'ended_m_from_destination', 'log')
                if k in r
            }
            for r in rows
            if r['verdict'] not in ('succeeded', 'failed_expected')
        ],
        'false_replan_logs': [
            {'text': r['text'], 'log': r['replan_log']} for r in rows if r.get('replan_log')
        ],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--ur5', type=int, default=100, help='UR5 soak instructions')
    ap.add_argument('--g1', type=int, default=30, help='G1 soak instructions')
    ap.add_argument('--fuzz', type=int, default=100_000, help='fuzz inputs')
    ap.add_argument('--race-goals', type=int, default=300, help='client race goals')
    ap.add_argument(
        '--ur5-kinds',
        default=','.join(f'{k}:{w}' for k, w in SOAK_KINDS.items()),
        help='UR5 soak instruction kinds and weights, e.g. moved:1 for moved targets only',
    )
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--skip', default='', help='comma-separated sections to skip')
    ap.add_argument('--out', default='', help='also write the JSON to this file')
    ap.add_argument(
        '--logs', default='', help="write the G1 soak's process logs under this folder"
    )
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(',')))
    rng = random.Random(args.seed)
    # A DDS domain of its own: another ROS graph on this machine (a robot, a test run) on the
    # same domain would mix its joint states and commands into the soak's.
    os.environ.setdefault('ROS_DOMAIN_ID', str(random.Random().randrange(120, 200)))
    print(f'ROS_DOMAIN_ID={os.environ["ROS_DOMAIN_ID"]}', file=sys.stderr, flush=True)
    out: dict = {
        'machine': {'cpus': os.cpu_count(), 'load_avg_start': os.getloadavg()[0]},
        'seed': args.seed,
    }
    if 'client_race' not in skip:
        out['client_race'] = bench_client_race(args.race_goals)
    if 'faults' not in skip:
        out['faults'] = bench_faults()
    if 'fuzz' not in skip:
        out['fuzz'] = bench_fuzz(args.fuzz)
    if 'soak' not in skip:
        soak = {}
        if args.ur5:
            kinds = {k: int(w) for k, w in (kw.split(':') for kw in args.ur5_kinds.split(','))}
            unknown = set(kinds) - set(SOAK_KINDS)
            if unknown:
                ap.error(f'--ur5-kinds: unknown {sorted(unknown)}; known: {sorted(SOAK_KINDS)}')
            ur5 = soak_ur5(args.ur5, rng, kinds)
            soak['ur5'] = {**summarise(ur5['rows']), 'processes': ur5['processes']}
        if args.g1:
            g1 = soak_g1(args.g1, rng, args.logs)
            soak['g1'] = {**summarise(g1['rows']), 'processes': g1['processes']}
        out['soak'] = soak
    out['machine']['load_avg_end'] = os.getloadavg()[0]
    text = json.dumps(out, indent=1)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    print(text)


if __name__ == '__main__':
    main()
