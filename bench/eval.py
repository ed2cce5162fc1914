"""Benchmark of ``robotracer eval``; prints one JSON object.

Figures:
- ``predictions_2d``: questions per minute scored from a predictions file without the benchmark
  folder (the 100 published RoboTracer 2D answers: parsing, resampling, DFD/HD/RMSE/MAE).
- ``predictions_3d_with_bench``: questions per minute scored from the published 3D answers on
  a synthetic benchmark folder (depth, mask): adds the target's point cloud, the TSDF of the
  scene and the collision check, the costly part.
- ``world_ur5``: simulator episodes per minute (randomised scene, render, mask, oracle answer
  over HTTP through the product's backend, all metrics), with the world already built; and the
  world's build time.
- ``world_g1``: the same for ``--world g1`` (trace metrics only, no execution).
- ``world_g1_execute``: ``--world g1 --execute`` episodes per minute (the same, plus lifting,
  the G1 planner and the in-process G1 walking, reaching, grasping and placing), and its
  execution success rate (zero-noise oracle).

The world runs take their options from ``robotracer eval``'s own parser (``--model oracle
--seed 0 --quiet``, everything else at its default, the camera jitter included), so they
measure what the command runs.

Usage: ``python bench/eval.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import sys
import tempfile
import time

os.environ.setdefault('MUJOCO_GL', 'egl')

from robotracer_eval import bench_data, cli, scoring, sim_scenes, synthetic  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / 'src' / 'robotracer_eval' / 'test' / 'data'


def per_minute(n: int, seconds: float) -> float:
    return round(60.0 * n / seconds, 1)


def bench_2d(repeat: int) -> dict:
    qs = bench_data.read_predictions(DATA / 'RoboTracer_Intrinsics_Depth_2D.jsonl')
    t0 = time.perf_counter()
    for _ in range(repeat):
        scoring.summarise(scoring.score_questions(qs, '2d', 'tuples'), '2d')
    dt = time.perf_counter() - t0
    return {
        'questions': len(qs) * repeat,
        'seconds': round(dt, 2),
        'questions_per_min': per_minute(len(qs) * repeat, dt),
    }


def bench_3d(tmp: Path) -> dict:
    qs = bench_data.read_predictions(DATA / 'RoboTracer_Intrinsics_Depth_3D.jsonl')
    synthetic.write_bench_folder(tmp, qs)
    bench = bench_data.BenchFolder(tmp)
    t0 = time.perf_counter()
    scoring.summarise(scoring.score_questions(qs, '3d', 'tuples', bench), '3d')
    dt = time.perf_counter() - t0
    w, h = bench.image_size(qs[0].image_path)
    return {
        'questions': len(qs),
        'image_size': f'{w}x{h} (first)',
        'seconds': round(dt, 2),
        'questions_per_min': per_minute(len(qs), dt),
    }


def eval_parser() -> argparse.ArgumentParser:
    """``robotracer``'s parser with only the ``eval`` subcommand: its defaults."""
    ap = argparse.ArgumentParser()
    cli.register(ap.add_subparsers())
    return ap


def bench_world(episodes: int, world: str = 'ur5', execute: bool = False) -> dict:
    t0 = time.perf_counter()
    scenes = sim_scenes.WORLDS[world]()
    build = time.perf_counter() - t0
    argv = ['eval', '--world', world, '--model', 'oracle', '--episodes', str(episodes)]
    argv += ['--seed', '0', '--quiet'] + (['--execute'] if execute else [])
    args = eval_parser().parse_args(argv)
    try:
        t0 = time.perf_counter()
        _, summary, _ = sim_scenes.evaluate_world(args, scenes)
        dt = time.perf_counter() - t0
    finally:
        scenes.close()
    out = {
        'episodes': summary['n'],
        'seconds': round(dt, 2),
        'episodes_per_min': per_minute(summary['n'], dt),
        'world_build_s': round(build, 2),
        'success_rate_zero_noise': summary['success_rate'],
        'start_rate': summary['start_rate'],
        'end_rate': summary['end_rate'],
        'no_collision_rate': summary['no_collision_rate'],
        'camera_jitter_m': summary['camera_jitter_m'],
    }
    if execute:
        out['execution_success_rate'] = summary['execution_success_rate']
        out['execution_final_error_m'] = summary['execution_final_error_m']
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--quick', action='store_true', help='fewer iterations (smoke run)')
    args = ap.parse_args()
    out = {'machine': {'cpus': os.cpu_count(), 'loadavg_1min_at_start': os.getloadavg()[0]}}
    out['predictions_2d'] = bench_2d(1 if args.quick else 5)
    with tempfile.TemporaryDirectory() as tmp:
        out['predictions_3d_with_bench'] = bench_3d(Path(tmp))
    out['world_ur5'] = bench_world(5 if args.quick else 30)
    out['world_g1'] = bench_world(5 if args.quick else 30, 'g1')
    out['world_g1_execute'] = bench_world(2 if args.quick else 10, 'g1', execute=True)
    out['machine']['loadavg_1min_at_end'] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
