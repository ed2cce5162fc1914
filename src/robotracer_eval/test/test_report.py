import io

from robotracer_eval import report

S2 = {
    'mode': '2d',
    'n': 3,
    'skipped': 0,
    'dfd': 0.1,
    'hd': 0.2,
    'rmse': 0.3,
    'mae': 0.05,
    'start_rate': 0.5,
    'end_rate': 1.0,
    'no_collision_rate': None,
    'success_rate': None,
    'skipped_metrics': {'success_rate': 'a 3D metric'},
}


def test_table_has_the_paper_columns_and_notes():
    t = report.format_table([('a', S2), ('b', S2)])
    head = t.splitlines()[0].split()
    assert head == [
        'model',
        'mode',
        'n',
        'skipped',
        'DFD',
        'HD',
        'RMSE',
        'MAE',
        'start',
        'end',
        'no-coll.',
        'success',
    ]
    assert '50.0%' in t and '0.1000' in t
    assert 'a: success_rate: a 3D metric' in t


def test_one_chart_per_computed_metric(tmp_path):
    files = report.write_charts(tmp_path, [('a', S2)])
    assert sorted(p.stem for p in files) == ['dfd', 'end_rate', 'hd', 'mae', 'rmse', 'start_rate']
    assert all(p.read_bytes()[:4] == b'\x89PNG' for p in files)


def test_progress_without_a_terminal_reports_each_tenth():
    buf = io.StringIO()
    p = report.Progress('questions', stream=buf)
    for i in range(1, 101):
        p(i, 100)
    lines = buf.getvalue().splitlines()
    assert lines[-1] == '  100/100 questions' and len(lines) == 11
