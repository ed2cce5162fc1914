"""The replay backend: the project's recordings and the authors' published evaluation outputs."""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import pytest

from robotracer_ros.backends import BackendError, make_backend
from robotracer_ros.parsing import parse_trace

K = np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]])
RGB = np.zeros((48, 64, 3), np.uint8)
DATA = pathlib.Path(__file__).resolve().parents[1] / 'data'
ROBOTRACER_2D = DATA / 'RoboTracer_Intrinsics_Depth_2D.jsonl'


def test_replay_answers_by_instruction_and_in_sequence(tmp_path):
    p = tmp_path / 'answers.jsonl'
    lines = [
        {
            'instruction': 'Put the cup on the plate',
            'answer': '[(1, 2, 0.5), (3, 4, 0.5)]',
            'model_id': 'robotracer_http:RoboTracer',
            'elapsed_s': 0.8,
        },
        {'instruction': 'wipe', 'answer': '[(5, 6), (7, 8)]'},
    ]
    p.write_text('\n'.join(json.dumps(x) for x in lines) + '\n\n')
    by_instr = make_backend('replay', path=str(p))
    a = by_instr(RGB, None, K, '  put the cup  on the plate')
    assert a.text == lines[0]['answer'] and a.elapsed_s == 0.8
    assert a.model_id == 'robotracer_http:RoboTracer'
    assert by_instr(RGB, None, K, 'wipe').model_id == 'replay:answers'
    with pytest.raises(BackendError, match="no answer for 'dance'"):
        by_instr(RGB, None, K, 'dance')
    seq = make_backend('replay', path=str(p), match='sequence', loop=False)
    assert [seq(RGB, None, K, 'q').text for _ in range(2)] == [x['answer'] for x in lines]
    with pytest.raises(BackendError, match='exhausted'):
        seq(RGB, None, K, 'q')


def test_replay_file_problems_name_the_line(tmp_path):
    p = tmp_path / 'bad.jsonl'
    p.write_text('{"answer": "[(1, 2)]"}\n{not json}\n')
    with pytest.raises(BackendError, match='bad.jsonl:2: not JSON'):
        make_backend('replay', path=str(p))
    p.write_text('{"answer": "[(1, 2)]"}\n{"prediction": "x"}\n')
    with pytest.raises(BackendError, match='bad.jsonl:2: needs an "answer"'):
        make_backend('replay', path=str(p))
    with pytest.raises(BackendError, match='cannot read replay file'):
        make_backend('replay', path=os.fspath(tmp_path / 'missing.jsonl'))


def test_the_published_evaluation_output_is_read_as_it_is():
    records = [json.loads(x) for x in ROBOTRACER_2D.read_text().splitlines()]
    b = make_backend('replay', path=str(ROBOTRACER_2D))
    for r in records[:10]:
        a = b(RGB, None, K, r['prompt'])  # the instruction is the record's prompt
        assert a.text == r['model_prediction']
        assert a.model_id == 'replay:RoboTracer_Intrinsics_Depth_2D'
        assert len(parse_trace(a.text)) >= 4


def test_a_question_is_answered_by_its_id():
    records = {
        r['question_id']: r for r in map(json.loads, ROBOTRACER_2D.read_text().splitlines())
    }
    b = make_backend('replay', path=str(ROBOTRACER_2D), match='question_id', question_id='17')
    assert b(RGB, None, K, 'whatever is asked').text == records[17]['model_prediction']
    with pytest.raises(BackendError, match='no question_id 1000'):
        make_backend('replay', path=str(ROBOTRACER_2D), match='question_id', question_id=1000)


def test_a_failed_recorded_request_is_a_model_error(tmp_path):
    p = tmp_path / 'Model_3D.jsonl'
    p.write_text(
        json.dumps({'question_id': 3, 'prompt': 'a', 'model_prediction': '', 'error': 'Timeout()'})
        + '\n'
        + json.dumps({'question_id': 4, 'prompt': 'b', 'model_prediction': None})
        + '\n'
    )
    b = make_backend('replay', path=str(p))
    with pytest.raises(BackendError, match=r'recorded request failed \(question_id 3\): Timeout'):
        b(RGB, None, K, 'a')
    with pytest.raises(BackendError, match='prediction is empty') as info:
        b(RGB, None, K, 'b')
    assert info.value.kind == 'model'
