import argparse
import json
from pathlib import Path

from robotracer_eval import bench_data, cli, synthetic

DATA = Path(__file__).resolve().parent / 'data'


def _run(argv, capsys):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(['eval', *argv])
    code = args.func(args)
    return code, capsys.readouterr()


def test_registered_as_a_robotracer_command():
    from robotracer_ros.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert 'eval' in sub.choices


def _head(src, n, dst):
    dst.write_text(''.join(line + '\n' for line in src.read_text().splitlines()[:n]))
    return str(dst)


def test_predictions_json_summary_without_bench(capsys, tmp_path):
    f = _head(DATA / 'RoboTracer_Intrinsics_Depth_2D.jsonl', 20, tmp_path / 'RoboTracer_2D.jsonl')
    code, out = _run(['--predictions', f, '--json', '--out', str(tmp_path / 'out')], capsys)
    assert code == 0
    s = json.loads(out.out)
    for key in (
        'n',
        'skipped',
        'dfd',
        'hd',
        'rmse',
        'mae',
        'start_rate',
        'end_rate',
        'no_collision_rate',
        'success_rate',
    ):
        assert key in s
    assert s['n'] == 20 and s['mode'] == '2d' and s['parser'] == 'tuples'
    assert 'start_rate' in s['skipped_metrics']
    o = tmp_path / 'out'
    assert (o / 'summary.json').exists() and (o / 'table.txt').exists()
    assert (o / 'dfd.png').stat().st_size > 1000
    assert len((o / 'scores.jsonl').read_text().splitlines()) == 20
    assert '20/20 questions' in out.err  # progress


def test_compare_side_by_side(capsys, tmp_path):
    files = [str(DATA / 'RoboTracer_Intrinsics_Depth_2D.jsonl'), str(DATA / 'Gemini3Pro_2D.jsonl')]
    code, out = _run(['--compare', *files, '--no-files', '--quiet'], capsys)
    assert code == 0
    lines = out.out.splitlines()
    assert lines[0].split()[:4] == ['model', 'mode', 'n', 'skipped']
    assert lines[1].startswith('RoboTracer_Intrinsics_Depth_2D')
    assert lines[2].startswith('Gemini3Pro_2D')


def test_limit(capsys):
    f = str(DATA / 'Gemini3Pro_2D.jsonl')
    code, out = _run(
        ['--predictions', f, '--limit', '5', '--json', '--no-files', '--quiet'], capsys
    )
    assert code == 0 and json.loads(out.out)['n'] == 5 and json.loads(out.out)['parser'] == 'json'


def test_bad_input_exits_2(capsys, tmp_path):
    code, out = _run(['--predictions', str(tmp_path / 'nope.jsonl'), '--no-files'], capsys)
    assert code == 2 and 'cannot read' in out.err
    code, out = _run(['--no-files'], capsys)
    assert code == 2 and 'give one of' in out.err
    code, out = _run(['--model', 'replay', '--no-files'], capsys)
    assert code == 2 and '--bench-dir' in out.err


def test_live_model_through_the_backend_matches_the_file(capsys, tmp_path):
    f = DATA / 'RoboTracer_Intrinsics_Depth_2D.jsonl'
    qs = bench_data.read_predictions(f)[:3]
    synthetic.write_bench_folder(tmp_path / 'bench', qs)
    common = ['--bench-dir', str(tmp_path / 'bench'), '--json', '--quiet', '--2d']
    head = _head(f, 3, tmp_path / 'three.jsonl')
    code, out = _run(
        [
            '--model',
            'replay',
            '--replay',
            head,
            '--questions',
            head,
            '--parser',
            'tuples',
            '--model-name',
            'RoboTracer_replay',
            '--out',
            str(tmp_path / 'live'),
            *common,
        ],
        capsys,
    )
    assert code == 0, out.err
    live = json.loads(out.out)
    rows = bench_data.read_jsonl(tmp_path / 'live' / 'RoboTracer_replay.jsonl')
    assert [r['model_prediction'] for r in rows] == [q.answer for q in qs]
    assert all(r['product_status'] in ('valid', 'degraded', 'invalid') for r in rows)
    code, out = _run(['--predictions', head, '--parser', 'tuples', '--no-files', *common], capsys)
    from_file = json.loads(out.out)
    assert live['n'] == from_file['n'] == 3 and live['start_rate'] is not None
    for k in ('dfd', 'hd', 'rmse', 'mae', 'start_rate', 'end_rate'):
        assert live[k] == from_file[k]
