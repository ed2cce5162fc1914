from pathlib import Path

import numpy as np
import pytest

from robotracer_eval import bench_data as b
from robotracer_eval import scoring as s
from robotracer_eval.testing import question, scene_arrays

DATA = Path(__file__).resolve().parent / 'data'


def _q(answer):
    return b.question_from_json(question(answer))


def _scene(wall=False):
    depth, mask = scene_arrays(wall)
    return s.SceneData(size=(100, 100), mask=mask, depth_mm=depth)


def test_2d_prediction_equal_to_ground_truth_scores_zero_and_passes():
    r = s.score_2d(_q('[(500, 500), (700, 500)]'), 'tuples', _scene())
    assert (r.path.dfd, r.path.hd, r.path.rmse, r.path.mae) == (0, 0, 0, 0)
    assert r.start_ok and r.end_ok


def test_2d_shifted_by_100_in_y():
    r = s.score_2d(_q('[(500, 600), (700, 600)]'), 'tuples', _scene())
    assert r.path.dfd == pytest.approx(0.1)
    assert r.path.hd == pytest.approx(0.1)
    assert r.path.rmse == pytest.approx(0.1)
    assert r.path.mae == pytest.approx(0.05)
    assert not r.start_ok  # pixel (50, 60) is below the object's mask (rows 45..55)


def test_2d_empty_and_single_point_answers():
    r = s.score_2d(_q('nothing'), 'tuples', _scene())
    assert r.path is not None and not r.start_ok and not r.end_ok
    assert 'two points at (0, 0)' in ' '.join(r.notes)
    one = s.score_2d(_q('[(500, 500)]'), 'tuples', _scene())
    assert one.start_ok and not one.end_ok


def test_3d_equal_to_ground_truth_succeeds():
    r = s.score_3d(_q('[(500, 500, 1.0), (700, 500, 1.0)]'), 'tuples', _scene())
    assert r.scored and r.path.dfd == pytest.approx(0.0, abs=1e-12)
    assert r.start_distance == pytest.approx(0.0, abs=1e-9)
    assert r.end_distance == 0.0
    assert r.collision is False and r.success


def test_3d_end_point_0_15_m_from_the_box():
    r = s.score_3d(_q('[(500, 500, 1.0), (700, 500, 1.25)]'), 'tuples', _scene())
    # (700, 500, 1.25) back-projects to (0.25, 0, 1.25): inside in x and y, 0.15 m behind
    assert r.end_distance == pytest.approx(0.15)
    r = s.score_3d(_q('[(500, 500, 1.0), (500, 500, 1.25)]'), 'tuples', _scene())
    assert r.end_distance == pytest.approx(np.hypot(0.1, 0.15))


def test_3d_through_a_wall_fails_on_collision():
    r = s.score_3d(_q('[(500, 500, 1.0), (700, 500, 1.0)]'), 'tuples', _scene(wall=True))
    assert r.start_ok and r.end_ok
    assert r.collision is True and r.max_collision_ratio > 0.8
    assert r.success is False


def test_3d_rows_without_depth_or_intrinsics_are_skipped():
    r = s.score_3d(_q('[(500, 500), (700, 500)]'), 'tuples', _scene())
    assert not r.scored and r.success is False
    q = b.question_from_json(question('[(500, 500, 1.0)]', gt_depth_intrinsics=None))
    assert not s.score_3d(q, 'tuples', _scene()).scored


def test_summary_denominators():
    good = s.score_3d(_q('[(500, 500, 1.0), (700, 500, 1.0)]'), 'tuples', _scene())
    skipped = s.score_3d(_q('no answer'), 'tuples', _scene())
    far = s.score_3d(_q('[(100, 100, 3.0), (100, 100, 3.0)]'), 'tuples', _scene())
    summary = s.summarise([good, skipped, far], '3d')
    assert summary['n'] == 3 and summary['skipped'] == 1
    assert summary['start_rate'] == 0.5  # over the scored rows
    assert summary['no_collision_rate'] == 1.0
    assert summary['success_rate'] == pytest.approx(1 / 3)  # over every question
    assert set(s.SUMMARY_KEYS) <= set(summary)


def test_without_the_benchmark_folder_says_what_was_skipped():
    qs = b.read_predictions(DATA / 'RoboTracer_Intrinsics_Depth_3D.jsonl')
    summary = s.summarise(s.score_questions(qs, '3d', 'tuples'), '3d')
    assert summary['n'] == 8 and summary['skipped'] == 0
    assert summary['dfd'] > 0 and 0 <= summary['end_rate'] <= 1
    assert summary['no_collision_rate'] is None and summary['success_rate'] is None
    assert {'no_collision_rate', 'success_rate', 'start_rate', 'image_size'} <= set(
        summary['skipped_metrics']
    )
    qs2 = b.read_predictions(DATA / 'Gemini3Pro_2D.jsonl')
    s2 = s.summarise(s.score_questions(qs2, '2d', 'json'), '2d')
    assert s2['n'] == 100 and s2['start_rate'] is None and 0 < s2['end_rate'] < 1
