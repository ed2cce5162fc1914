from pathlib import Path

import numpy as np
import pytest

from robotracer_eval import bench_data as b
from robotracer_eval.testing import question

DATA = Path(__file__).resolve().parent / 'data'


def test_parse_tuples_like_the_benchmark():
    p = b.parse_tuples('[(726, 624, 1.533), (738, 574, 1.499)]')
    np.testing.assert_allclose(p, [[0.726, 0.624, 1.533], [0.738, 0.574, 1.499]])
    assert b.parse_tuples('[(1, 2), (3, 4)]').shape == (2, 2)
    mixed = b.parse_tuples('[(100, 200, 1.0), (300, 400)]')
    assert mixed.shape == (2, 3) and np.isnan(mixed[1, 2])
    assert b.parse_tuples('no trace').shape == (0, 2)
    assert b.parse_tuples('').shape == (0, 2)


def test_parse_json_block_needs_a_fence():
    text = 'Analysis (372, 238) ...\n```json\n[[372, 238, 1.82], [68, 162, 0.85]]\n```'
    np.testing.assert_allclose(
        b.parse_json_block(text), [[0.372, 0.238, 1.82], [0.068, 0.162, 0.85]]
    )
    assert b.parse_json_block('[[372, 238, 1.82]]').shape == (0, 3)
    objs = '```json\n[{"point": [100, 200]}, {"point": [300, 400]}]\n```'
    np.testing.assert_allclose(b.parse_json_block(objs), [[0.1, 0.2], [0.3, 0.4]])
    with pytest.raises(ValueError, match='mixes'):
        b.parse_json_block('```\n[[1, 2], [3, 4, 5]]\n```')


def test_parser_by_model_name():
    assert b.parser_for_model('RoboTracer_Intrinsics_Depth') == 'tuples'
    assert b.parser_for_model('Gemini3Pro') == 'json'
    assert b.parser_for_model('Qwen3VL') == 'json'


def test_product_parser_reads_unfenced_json():
    p = b.parse_answer('[[500, 500, 1.0], [700, 500, 1.0]]', 'product')
    np.testing.assert_allclose(p, [[0.5, 0.5, 1.0], [0.7, 0.5, 1.0]])
    assert b.parse_answer('I cannot find that object in the image.', 'product').shape == (0, 2)


def test_published_files_read_as_they_are():
    for name in ('RoboTracer_Intrinsics_Depth_2D', 'Gemini3Pro_2D'):
        qs = b.read_predictions(DATA / f'{name}.jsonl')
        assert len(qs) == 100
        assert b.guess_mode(name, qs) == '2d'
        assert all(q.has_box and q.trajectory.shape[1] == 3 for q in qs)
    qs = b.read_predictions(DATA / 'RoboTracer_Intrinsics_Depth_3D.jsonl')
    assert b.guess_mode('x.jsonl', qs) == '3d'


def test_bad_files_name_the_line(tmp_path):
    p = tmp_path / 'bad.jsonl'
    p.write_text('{"question_id": 1}\n')
    with pytest.raises(b.BenchDataError, match='trajectory'):
        b.read_predictions(p)
    p.write_text('not json\n')
    with pytest.raises(b.BenchDataError, match=':1: not JSON'):
        b.read_predictions(p)
    with pytest.raises(b.BenchDataError, match='cannot read'):
        b.read_predictions(tmp_path / 'missing.jsonl')
    with pytest.raises(b.BenchDataError, match='raw_data'):
        b.BenchFolder(tmp_path)


def test_question_fields():
    q = b.question_from_json(question('[(500, 500)]'))
    assert q.qid == 0 and q.has_box and q.trajectory.shape == (2, 3)


def test_the_benchmark_question_list(tmp_path):
    import json

    rows = b.read_jsonl(DATA / 'RoboTracer_Intrinsics_Depth_3D.jsonl')[:2]
    for r in rows:
        r['id'] = r.pop('question_id')
        r.pop('model_prediction')
    (tmp_path / 'trajectory_dataset.json').write_text(json.dumps(rows))
    qs = b.read_questions(tmp_path / 'trajectory_dataset.json')
    assert [q.qid for q in qs] == [0, 1] and qs[0].answer == ''
