"""``robotracer lift`` / ``query`` / ``ask`` as a user runs them."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from robotracer_ros import images
from robotracer_ros.cli.main import main
from robotracer_ros.testing.model_server import ModelServer, Reply, free_port

CAM = ['--width', '640', '--height', '480', '--intrinsics', '600', '500', '320', '240']


def robotracer(*args: str, stdin: str = '') -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, '-m', 'robotracer_ros.cli.main', *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_lift_prints_metric_points_in_answer_order(capsys):
    assert main(['lift', '--answer', '[(500, 500, 1.0), (750, 250, 2.0)]', *CAM]) == 0
    out = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(
        out['points'], [[0, 0, 1.0], [160 * 2 / 600, -0.48, 2.0]], atol=1e-6
    )
    assert out['pixels'] == [[320.0, 240.0], [480.0, 120.0]]
    assert out['depth_source'] == ['model', 'model']


def test_lift_reads_stdin_and_fails_with_one_line_for_a_bad_answer():
    ok = robotracer('lift', '--answer', '-', *CAM, stdin='```json\n[[500, 500, 1.5]]\n```')
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)['points'] == [[0.0, 0.0, 1.5]]
    bad = robotracer('lift', '--answer', '-', *CAM, stdin='[(500, 500, 1.5), (600, 5')
    assert bad.returncode == 1 and bad.stdout == ''
    assert bad.stderr.count('\n') == 1 and bad.stderr.startswith('robotracer lift: bad answer:')
    assert 'truncated' in bad.stderr


def test_lift_with_a_depth_image_and_filter(tmp_path, capsys):
    depth = np.full((240, 320), 1500, np.uint16)  # half-resolution depth, wall at 1.5 m
    depth[:, 160:] = 0  # right half: no measurement
    p = tmp_path / 'depth.png'
    p.write_bytes(images.encode_png(depth))
    answer = '[(100, 500), (300, 500), (800, 500)]'
    assert (
        main(['lift', '--answer', answer, *CAM, '--depth', str(p), '--depth-source', 'sensor'])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert [pt[2] for pt in out['points']] == [1.5, 1.5, None]  # one point per answer point
    assert out['status'] == 'degraded'
    assert (
        main(
            [
                'lift',
                '--answer',
                answer,
                *CAM,
                '--depth',
                str(p),
                '--depth-source',
                'sensor',
                '--filter',
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert len(out['points']) == 2 and 'points 3' in out['note']


def test_lift_batch_one_line_out_per_line_in(tmp_path):
    K = [[600, 0, 320], [0, 500, 240], [0, 0, 1]]
    lines = [
        json.dumps({'answer': '[(500, 500, 1.0)]', 'width': 640, 'height': 480, 'intrinsics': K}),
        json.dumps({'answer': 'no idea', 'width': 640, 'height': 480, 'intrinsics': K}),
        '{broken json',
        json.dumps({'answer': '[(1, 2, 3)]', 'width': 640}),
        '',
        json.dumps(
            {
                'answer': '[(500, 500, 1.0)]',
                'width': 640,
                'height': 480,
                'intrinsics': [[0, 0, 0], [0, 0, 0], [0, 0, 1]],
            }
        ),
        json.dumps({'answer': '[(1000, 1000, 2.0)]', 'width': 100, 'height': 50, 'intrinsics': K}),
    ]
    f = tmp_path / 'batch.jsonl'
    f.write_text('\n'.join(lines) + '\n')
    for res in (
        robotracer('lift', '--batch', str(f)),
        robotracer('lift', '--batch', '-', stdin=f.read_text()),
    ):
        assert res.returncode == 0, res.stderr
        out = [json.loads(x) for x in res.stdout.splitlines()]
        assert len(out) == len(lines)
        assert out[0] == {
            'points': [[0.0, 0.0, 1.0]],
            'pixels': [[320.0, 240.0]],
            'status': 'invalid',  # one point is no trace
            'note': 'only 1 usable point(s) of 1; at least 2 needed',
        }
        assert 'no trace found' in out[1]['error']
        assert 'not JSON' in out[2]['error']
        assert out[3] == {'error': 'missing key(s): height, intrinsics'}
        assert out[4] == {'error': 'empty line'}
        assert 'focal lengths' in out[5]['error']
        np.testing.assert_allclose(
            out[6]['points'], [[(100 - 320) * 2 / 600, (50 - 240) * 2 / 500, 2.0]], atol=1e-6
        )
    missing = robotracer('lift', '--batch', str(tmp_path / 'nope.jsonl'))
    assert missing.returncode == 2 and 'cannot read' in missing.stderr


def test_lift_filter_is_the_nodes_default_filter_with_status_and_note(tmp_path, capsys):
    # a real RoboTracer answer (TraceSpatial-Bench question 0), legs up to 0.6 m, and the same
    # with one point 3 m behind its neighbours: kept whole / the spike dropped and named
    real = (
        '[(726, 624, 1.533), (738, 574, 1.499), (690, 540, 1.511), (600, 509, 1.54), '
        '(472, 472, 1.598), (280, 413, 1.72), (107, 344, 1.884), (39, 301, 2.023), '
        '(47, 390, 2.106)]'
    )
    spike = real.replace('(472, 472, 1.598)', '(472, 472, 4.598)')
    K = [[421.66, 0.0, 253.93], [0.0, 421.66, 192.12], [0.0, 0.0, 1.0]]
    f = tmp_path / 'answers.jsonl'
    f.write_text(
        ''.join(
            json.dumps({'answer': a, 'width': 512, 'height': 384, 'intrinsics': K}) + '\n'
            for a in (real, spike)
        )
    )
    assert main(['lift', '--batch', str(f), '--filter']) == 0
    whole, spiked = (json.loads(x) for x in capsys.readouterr().out.splitlines())
    assert whole['status'] == 'valid' and whole['note'] == '' and len(whole['points']) == 9
    assert spiked['status'] == 'degraded' and len(spiked['points']) == 8
    assert 'spike' in spiked['note'] and 'points 5' in spiked['note']
    single = ['lift', '--answer', spike, '--width', '512', '--height', '384']
    single += ['--intrinsics', '421.66', '421.66', '253.93', '192.12', '--filter']
    assert main(single) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out['status'], out['note']) == (spiked['status'], spiked['note'])


def test_lift_reads_0_1_answers_when_told(capsys):
    answer = '[(0.5, 0.5, 1.0), (0.75, 0.25, 2.0)]'
    assert main(['lift', '--answer', answer, *CAM]) == 1
    assert 'coordinates: normalized_1' in capsys.readouterr().err
    assert main(['lift', '--answer', answer, *CAM, '--coordinates', 'normalized_1']) == 0
    assert json.loads(capsys.readouterr().out)['pixels'] == [[320.0, 240.0], [480.0, 120.0]]


@pytest.fixture
def scene_files(tmp_path):
    rgb = np.full((480, 640, 3), 90, np.uint8)
    depth = np.full((480, 640), 1000, np.uint16)
    (tmp_path / 'rgb.png').write_bytes(images.encode_png(rgb))
    (tmp_path / 'depth.png').write_bytes(images.encode_png(depth))
    return tmp_path


def test_query_asks_the_server_prints_the_trace_and_draws_it(scene_files, capsys):
    answer = '[(500, 500, 1.0), (600, 400, 0.8), (700, 300, 0.8)]'
    with ModelServer(lambda req: Reply(answer)) as s:
        code = main(
            [
                'query',
                '--backend',
                'robotracer_http',
                '--url',
                s.url,
                '--image',
                str(scene_files / 'rgb.png'),
                '--depth',
                str(scene_files / 'depth.png'),
                '--intrinsics',
                '600',
                '600',
                '320',
                '240',
                '--instruction',
                'move the cup up',
                '--out',
                str(scene_files / 'overlay.png'),
            ]
        )
    assert code == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out)
    assert out['raw_answer'] == answer and out['model_id'] == 'robotracer_http:RoboTracer'
    np.testing.assert_allclose(out['points'][0], [0, 0, 1.0])  # on the 1 m wall: sensor
    assert out['depth_source'] == ['sensor', 'model', 'model']
    assert out['timings']['inference_s'] > 0 and 'processing_s' in out['timings']
    assert s.requests[0]['depth_mm'][0, 0] == 1000
    overlay = images.read_image(str(scene_files / 'overlay.png'))
    assert overlay.shape == (480, 640, 3)
    assert overlay[240, 320, 1] > 150 and overlay[240, 320, 0] < 60  # green start at (320, 240)
    r, g, _ = overlay[144, 448]
    assert r > 180 and g < 60  # red end at (448, 144)


def test_query_reports_a_dead_server_and_a_bad_answer(scene_files, capsys):
    args = [
        'query',
        '--image',
        str(scene_files / 'rgb.png'),
        '--intrinsics',
        '600',
        '600',
        '320',
        '240',
        '--instruction',
        'x',
    ]
    code = main(
        [
            *args,
            '--backend',
            'openai',
            '--url',
            f'http://127.0.0.1:{free_port()}/v1',
            '--retries',
            '0',
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and 'model backend openai failed (server_down)' in err
    with ModelServer(lambda req: Reply('I see a grey wall.')) as s:
        code = main([*args, '--backend', 'openai', '--url', s.url + '/v1'])
    captured = capsys.readouterr()
    assert code == 1 and 'bad answer: no trace found' in captured.err
    assert json.loads(captured.out)['raw_answer'] == 'I see a grey wall.'
    code = main([*args, '--backend', 'openai', '--transport', 'paths'])
    assert code == 2 and 'does not take option(s) transport' in capsys.readouterr().err


def test_query_with_replay(scene_files, tmp_path, capsys):
    rec = tmp_path / 'rec.jsonl'
    rec.write_text(json.dumps({'instruction': 'x', 'answer': '[(500, 500, 2.0)]'}) + '\n')
    assert (
        main(
            [
                'query',
                '--backend',
                'replay',
                '--replay',
                str(rec),
                '--image',
                str(scene_files / 'rgb.png'),
                '--intrinsics',
                '600',
                '600',
                '320',
                '240',
                '--instruction',
                'x',
                '--no-filter',
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)['points'] == [[0.0, 0.0, 2.0]]


def test_query_replays_a_published_evaluation_output_as_it_is(scene_files, capsys):
    data = pathlib.Path(__file__).resolve().parents[1] / 'data'
    path = data / 'RoboTracer_Intrinsics_Depth_2D.jsonl'
    rec = json.loads(path.read_text().splitlines()[5])
    base = ['query', '--backend', 'replay', '--replay', str(path)]
    base += ['--image', str(scene_files / 'rgb.png'), '--depth', str(scene_files / 'depth.png')]
    base += ['--intrinsics', '600', '600', '320', '240', '--2d']
    assert main([*base, '--instruction', rec['prompt']]) == 0  # matched by its prompt
    out = json.loads(capsys.readouterr().out)
    assert out['raw_answer'] == rec['model_prediction']
    assert out['model_id'] == 'replay:RoboTracer_Intrinsics_Depth_2D'
    assert out['status'] == 'valid' and len(out['points']) == rec['model_prediction'].count('(')
    assert main([*base, '--instruction', 'anything', '--question-id', '5']) == 0
    assert json.loads(capsys.readouterr().out)['raw_answer'] == rec['model_prediction']


def test_ask_without_a_node_says_so():
    res = robotracer('ask', 'put the cup on the plate', '--wait', '1')
    assert res.returncode == 2
    assert 'service /robotracer/get_trace not available after 1 s' in res.stderr
