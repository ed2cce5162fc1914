"""Benchmark of the execution side; prints one JSON object.

Figures:
- ``ur5_plan``: trace → time-parameterised joint trajectory for a 10-point pick-and-place trace
  with the ROS-free :class:`~trace_executor.ur5.Ur5Planner` (validation + tool path, pink IK at
  every tool path sample, self/table collision check, TOPP-RA timing, sampling): p50/p95 over
  ``--runs`` plans (goal: p95 ≤ 20 ms), the same split by stage as measured inside those plans
  (IK alone, timing alone, ...), re-timing an existing plan to another speed, and the other
  modes.
- ``scene_change_check``, ``replan_reaction``, ``end_to_end``: filled in by their own
  benchmarks (``null`` until then).

Timings are wall-clock on whatever else this machine is running: ``machine`` records the
load average at the start, to read them against, and ``trace_to_trajectory.cpu_time`` gives the
planner's CPU time per plan (``time.process_time``), which other processes disturb far less.

Usage: ``python bench/executor.py [--runs N]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import json
import math
import os
import time

import numpy as np

from trace_executor.ur5 import UR5_HOME, Ur5Planner, Ur5PlannerConfig

GOAL_PLAN_P95_MS = 20.0

# A cup at (0.45, -0.15) on the table (centre 3 cm up) carried in an arc to (0.50, 0.20).
TRACE_10 = np.array(
    [
        [0.45 + 0.05 * t, -0.15 + 0.35 * t, 0.03 + 0.10 * math.sin(math.pi * t)]
        for t in np.linspace(0.0, 1.0, 10)
    ]
)
PUSH_10 = np.array([[0.50, -0.10 + 0.03 * i, 0.025] for i in range(10)])
FOLLOW_10 = np.array(
    [[0.40 + 0.15 * math.cos(a), 0.15 * math.sin(a), 0.12] for a in np.linspace(0, math.pi, 10)]
)


def stats_ms(samples_ms: list[float]) -> dict:
    a = np.asarray(samples_ms, dtype=float)
    return {
        'p50_ms': round(float(np.percentile(a, 50)), 2),
        'p95_ms': round(float(np.percentile(a, 95)), 2),
        'mean_ms': round(float(a.mean()), 2),
        'min_ms': round(float(a.min()), 2),
        'max_ms': round(float(a.max()), 2),
    }


def timed_ms(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def bench_ur5_plan(runs: int) -> dict:
    t0 = time.perf_counter()
    planner = Ur5Planner(Ur5PlannerConfig())
    init_ms = (time.perf_counter() - t0) * 1e3
    q0 = np.array(UR5_HOME)
    for _ in range(3):  # warm up caches and lazy imports
        planner.plan(TRACE_10, q0)
    totals, cpu, stages = [], [], {'validate': [], 'ik': [], 'collision': [], 'timing': []}
    plan = None
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        plan = planner.plan(TRACE_10, q0)
        totals.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
        for k in stages:
            stages[k].append(plan.timings_ms[k])
    assert plan is not None
    total = stats_ms(totals)
    modes = {}
    for mode, trace in (('push', PUSH_10), ('follow', FOLLOW_10)):
        modes[mode] = stats_ms(timed_ms(lambda m=mode, tr=trace: planner.plan(tr, q0, mode=m), 20))
    return {
        'trace_points': len(TRACE_10),
        'mode': 'pick_place',
        'runs': runs,
        'planner_init_ms': round(init_ms, 1),
        'tool_path_samples': len(plan.tool_path),
        'cartesian_step_m': planner.config.cartesian_step_m,
        'motion_duration_s': round(plan.duration_s, 3),
        'trajectory_samples': int(sum(len(m.times_s) for m in plan.motions)),
        'trace_to_trajectory': {
            **total,
            'goal_p95_ms': GOAL_PLAN_P95_MS,
            'meets_goal': total['p95_ms'] <= GOAL_PLAN_P95_MS,
            'cpu_time': stats_ms(cpu),
        },
        'stages': {
            'validate_and_tool_path': stats_ms(stages['validate']),
            'ik_alone': stats_ms(stages['ik']),
            'collision_alone': stats_ms(stages['collision']),
            'timing_alone': stats_ms(stages['timing']),
        },
        'retime_to_half_speed': stats_ms(timed_ms(lambda: planner.retime(plan, 0.5), 20)),
        'other_modes': modes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=60, help='plans to time (>= 50)')
    args = parser.parse_args()
    result = {
        'benchmark': 'executor',
        'machine': {
            'cpus': os.cpu_count(),
            'loadavg_1min_at_start': round(os.getloadavg()[0], 2),
        },
        'ur5_plan': bench_ur5_plan(max(args.runs, 1)),
        'scene_change_check': None,
        'replan_reaction': None,
        'end_to_end': None,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
