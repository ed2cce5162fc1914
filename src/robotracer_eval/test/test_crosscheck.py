"""``robotracer eval`` against the numbers RoboTracer's own script printed on the same files.

``data/crosscheck_expected.json`` holds the figures ``Evaluation/summarize_acc.py`` (open3d
0.19.0) printed on a synthetic benchmark folder built from the 8 questions in ``data/`` (see
``data/make_crosscheck.py``); the test rebuilds the same folder and compares.
"""

import json
from pathlib import Path

import pytest

from robotracer_eval import bench_data as b
from robotracer_eval import geometry3d, metrics, scoring, synthetic

DATA = Path(__file__).resolve().parent / 'data'
EXPECTED = json.loads((DATA / 'crosscheck_expected.json').read_text())
MODELS = ('RoboTracer_Intrinsics_Depth', 'Gemini3Pro')
PATH_KEYS = {
    'dfd': 'average_discrete_frechet_distance',
    'hd': 'average_hausdorff_distance',
    'rmse': 'average_root_mean_square_error',
    'mae': 'average_mean_absolute_error',
}


@pytest.fixture(scope='module')
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp('bench')
    qs = b.read_predictions(DATA / 'RoboTracer_Intrinsics_Depth_3D.jsonl')
    synthetic.write_bench_folder(root, qs, EXPECTED['walls'])
    return b.BenchFolder(root)


CACHE: dict = {}  # the two models share the scenes: their geometry is computed once


def _summary(bench, model, mode):
    qs = b.read_predictions(DATA / f'{model}_{mode.upper()}.jsonl')[: EXPECTED['n_questions']]
    scores = scoring.score_questions(qs, mode, b.parser_for_model(model), bench, cache=CACHE)
    return scores, scoring.summarise(scores, mode)


@pytest.mark.parametrize('model', MODELS)
def test_2d_same_numbers(bench, model):
    theirs = EXPECTED['summaries'][f'{model}_2D']['2d']
    _, ours = _summary(bench, model, '2d')
    for k, tk in PATH_KEYS.items():
        assert ours[k] == pytest.approx(theirs[tk], rel=1e-5)
    assert ours['start_rate'] == theirs['2D Start-in-Mask Rate']
    assert ours['end_rate'] == theirs['2D End-in-2D-BBox Rate']


@pytest.mark.parametrize('model', MODELS)
def test_3d_same_numbers(bench, model):
    exp = EXPECTED['summaries'][f'{model}_3D']
    scores, ours = _summary(bench, model, '3d')
    theirs = exp['3d']
    for k, tk in PATH_KEYS.items():
        assert ours[k] == pytest.approx(theirs[tk], rel=1e-5)
    assert ours['start_distance'] == pytest.approx(theirs['Start Point Distance'], abs=6e-5)
    assert ours['end_distance'] == pytest.approx(theirs['End Point Distance'], abs=6e-5)
    assert ours['start_rate'] == theirs['Start Success Rate']
    assert ours['end_rate'] == theirs['End Success Rate']
    assert ours['no_collision_rate'] == theirs['No-Collision Rate']
    assert ours['success_rate'] == theirs['Overall Success Rate']
    d2 = exp['derived_2d']
    for k, tk in PATH_KEYS.items():
        assert ours['derived_2d'][k] == pytest.approx(d2[tk], rel=1e-5)
    assert ours['derived_2d']['start_in_mask_rate'] == d2['2D Start-in-Mask Rate']
    assert ours['derived_2d']['end_in_box_rate'] == d2['2D End-in-2D-BBox Rate']


def test_some_crosscheck_traces_collide():
    cols = [r.get('collision_ratios') for r in EXPECTED['per_question'] if 'collision_ratios' in r]
    assert any(max(c) > metrics.COLLISION_RATIO for c in cols)


def test_per_question_collision_ratios(bench):
    for row in EXPECTED['per_question']:
        if 'collision_ratios' not in row:
            continue
        q = b.read_predictions(DATA / f'{row["model"]}_3D.jsonl')[row['qid']]
        depth, mask = bench.depth_mm(q.depth_path), bench.mask(q.mask_path)
        intr = metrics.Intrinsics.from_matrix(q.intrinsics)
        p = b.parse_answer(q.answer, b.parser_for_model(row['model']))
        pred = metrics.backproject(p[:, :3], depth.shape[1], depth.shape[0], intr)
        key = ('3d', q.depth_path, q.mask_path, q.image_path, repr(q.intrinsics))
        scene = CACHE[key][0] if key in CACHE else scoring.SceneData()
        cloud = scene.object_points
        if cloud is None:
            cloud = geometry3d.object_cloud(mask, depth, intr)
        assert len(cloud) == row['n_object_points']
        grid = scene.occupancy or geometry3d.scene_occupancy(depth, mask, intr)
        assert grid.size == pytest.approx(row['n_occupied_voxels'], rel=1e-3)
        ratios = geometry3d.collision_ratios(grid, cloud, pred)
        assert ratios.tolist() == pytest.approx(row['collision_ratios'], abs=0.02)
