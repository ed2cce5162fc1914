"""Make ``crosscheck_expected.json``: RoboTracer's own ``summarize_acc.py`` on a synthetic bench.

Not a test: run by hand, with a Python that has Open3D 0.19 (0.20 extracts no TSDF points),
Pillow, OpenCV, SciPy and tqdm, e.g.::

    python3.11 -m venv /tmp/rtvenv
    /tmp/rtvenv/bin/pip install open3d==0.19.0 pillow scipy tqdm opencv-python-headless
    git show HEAD:Evaluation/summarize_acc.py > /tmp/summarize_acc.py   # in RoboTracer's repo
    python make_crosscheck.py --script /tmp/summarize_acc.py --python /tmp/rtvenv/bin/python

It builds the synthetic benchmark folder (``robotracer_eval.synthetic``) for the first 8
questions of the two published 3D prediction files here, with a wall across RoboTracer's
predicted trace in every second scene (so that some traces collide), runs the script for both
models in 2D and 3D, also calls its functions per question (object cloud, TSDF occupancy,
collision ratios), and stores the printed figures with the walls. ``test_crosscheck.py``
rebuilds the same folder and checks that ``robotracer eval`` gives the same figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import re
import subprocess
import tempfile

from robotracer_eval import bench_data, metrics, synthetic

HERE = Path(__file__).resolve().parent
MODELS = ('RoboTracer_Intrinsics_Depth', 'Gemini3Pro')
N = 8

PER_QUESTION = r"""
import json, sys
import numpy as np
from PIL import Image
sys.path.insert(0, sys.argv[1])
import summarize_acc as S
rows = []
for m in ['RoboTracer_Intrinsics_Depth', 'Gemini3Pro']:
    for line in open(f'outputs/{m}_3D.jsonl'):
        ans = json.loads(line)
        B = 'TraceSpatial-Bench/raw_data/'
        dp, mp = B + ans['gt_depth_path'], B + ans['mask_path']
        depth = np.array(Image.open(dp)); H, W = depth.shape[:2]
        intr = S.extract_intrinsics_from_matrix(ans['gt_depth_intrinsics'])
        parse = S.text2pts_normalize if 'RoboTracer' in m else S.json2pts_normalize
        row = {'model': m, 'qid': ans['question_id']}
        rows.append(row)
        try:
            p = parse(ans['model_prediction'], width=W, height=H, is_normalized_1000=True)
        except Exception as e:
            row['skip'] = str(e); continue
        if p.ndim != 2 or p.shape[1] < 3:
            row['skip'] = 'no depth'; continue
        pred = S.backproject_to_3d(p[:, :3], W, H, intr)
        obj = S.create_object_pcd_from_mask(mp, dp, ans['gt_depth_intrinsics'])
        if not isinstance(obj, np.ndarray) or len(obj) == 0:
            row['n_object_points'] = 0; continue
        mask = np.array(Image.open(mp)).astype(np.uint8)
        grid = S.create_occupancy_grid_from_tsdf(depth.astype(np.float32), mask,
                                                 ans['gt_depth_intrinsics'])
        ratios = S.calculate_trajectory_collisions(grid, obj, pred)
        row.update(n_object_points=int(len(obj)), n_occupied_voxels=len(grid[0]),
                   collision_ratios=[float(r) for r in ratios])
print(json.dumps(rows))
"""


def walls(questions: list[bench_data.Question]) -> dict[str, list]:
    """A 0.3 m wide wall where the target's front face would be at RoboTracer's middle point."""
    out: dict[str, list] = {}
    for i, q in enumerate(questions):
        if i % 2:
            continue
        intr = metrics.Intrinsics.from_matrix(q.intrinsics)
        w, h = round(2 * intr.cx), round(2 * intr.cy)
        p = bench_data.parse_tuples(q.answer)
        pred = metrics.backproject(p[:, :3], w, h, intr)
        k = len(pred) // 2
        c = q.trajectory[0] + (pred[k] - pred[0])
        fz = c[2] - synthetic.TARGET_SIZE / 2
        out[q.depth_path] = [
            [[c[0] - 0.15, c[1] - 0.15, fz], [c[0] + 0.15, c[1] + 0.15, fz + 0.04]]
        ]
    return out


def parse_printed(text: str) -> dict:
    """The figures summarize_acc.py prints, by section."""
    out: dict = {}
    section = '2d'
    for line in text.splitlines():
        if 'Derived from 3D' in line:
            section = 'derived_2d'
        elif '3D Evaluation Results' in line:
            section = '3d'
        m = re.match(r'(2D|3D) Path Metrics[^:]*: (\{.*\})', line)
        if m:
            out.setdefault(section, {}).update(eval(m.group(2)))  # noqa: S307 (its own output)
            continue
        m = re.match(r'(.*?)(?: \(mean\))?(?: \(<0\.20m\))?: ([0-9.]+)( m)?$', line.strip())
        if m:
            out.setdefault(section, {})[m.group(1)] = float(m.group(2))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--script', required=True, help="RoboTracer's summarize_acc.py")
    ap.add_argument('--python', required=True, help='a Python with open3d==0.19.0 etc.')
    args = ap.parse_args()
    qs = bench_data.read_predictions(HERE / f'{MODELS[0]}_3D.jsonl')[:N]
    obstacles = walls(qs)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / 'outputs').mkdir()
        for m in MODELS:
            for t in ('2D', '3D'):
                lines = (HERE / f'{m}_{t}.jsonl').read_text().splitlines()[:N]
                (root / 'outputs' / f'{m}_{t}.jsonl').write_text('\n'.join(lines) + '\n')
        synthetic.write_bench_folder(root / 'TraceSpatial-Bench', qs, obstacles)
        script = Path(args.script).resolve()
        summaries = {}
        for m in MODELS:
            for t in ('2D', '3D'):
                r = subprocess.run(
                    [args.python, str(script), '--model_name', m, '--task_name', t],
                    cwd=root,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                summaries[f'{m}_{t}'] = parse_printed(r.stdout)
        r = subprocess.run(
            [args.python, '-c', PER_QUESTION, str(script.parent)],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
        per_question = json.loads(r.stdout.strip().splitlines()[-1])
    expected = {
        'comment': "figures printed by RoboTracer's Evaluation/summarize_acc.py (commit 11f09e1) "
        'with open3d 0.19.0 on the synthetic benchmark folder built from these questions and '
        'walls; regenerate with make_crosscheck.py',
        'n_questions': N,
        'walls': obstacles,
        'summaries': summaries,
        'per_question': per_question,
    }
    (HERE / 'crosscheck_expected.json').write_text(json.dumps(expected, indent=1) + '\n')
    print(json.dumps(summaries, indent=1))


if __name__ == '__main__':
    main()
