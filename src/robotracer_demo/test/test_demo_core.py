"""The demo's ROS-free parts: phase times, MCAP recording, pictures, table, bringup process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from robotracer_demo import pictures
from robotracer_demo.process import BringupError, BringupProcess, descendants, start_time
from robotracer_demo.recording import (
    McapRecorder,
    RecordingError,
    field_types,
    header_stamp_ns,
    message_definition,
    split_type,
)
from robotracer_demo.report import InstructionOutcome, format_table, write_summary
from robotracer_demo.scenarios import DEMOS, DemoInstruction, DemoSpec, horizontal_distance
from robotracer_demo.timing import (
    EXECUTING,
    PERCEIVING,
    PLANNING,
    REPLANNING,
    PhaseClock,
    bucket,
)

# --------------------------------------------------------------------------- phase times


def test_phase_clock_splits_a_replanned_goal_into_model_planning_motion() -> None:
    clock = PhaseClock()
    clock.feedback(0.0, PERCEIVING, 'asking the model: "x"')
    clock.feedback(0.7, PLANNING, 'planning')
    clock.feedback(0.9, EXECUTING, 'executing')
    clock.feedback(1.5, EXECUTING, 'executing')
    clock.feedback(2.0, PERCEIVING, 'asking the model: "x"')  # the replan's re-query
    clock.feedback(2.6, REPLANNING, 'planning (replan 1: scene changed)')
    clock.feedback(2.8, EXECUTING, 'executing')
    totals = clock.finish(10.0)
    assert totals == pytest.approx({'model_s': 1.3, 'planning_s': 0.4, 'motion_s': 8.3})
    assert clock.executing_since == 0.9
    assert [p for _t, p in clock.changes] == [0, 1, 2, 0, 3, 2]


def test_unknown_phase_is_named() -> None:
    with pytest.raises(ValueError, match='phase 9'):
        bucket(9)


# --------------------------------------------------------------------------- recording


FAKE_MSGS = {
    ('demo_msgs', 'Outer'): '# a comment\nstd_msgs/Header header\nInner[] items\nstring<=8 name\n',
    ('demo_msgs', 'Inner'): 'float64 x  # metres\nuint8 KIND_A = 1\n',
    ('std_msgs', 'Header'): 'builtin_interfaces/Time stamp\nstring frame_id\n',
    ('builtin_interfaces', 'Time'): 'int32 sec\nuint32 nanosec\n',
}


def test_message_definition_appends_each_dependency_once() -> None:
    text = message_definition('demo_msgs/msg/Outer', lambda p, n: FAKE_MSGS[(p, n)])
    assert text.count('MSG: ') == 3
    for dep in ('std_msgs/Header', 'demo_msgs/Inner', 'builtin_interfaces/Time'):
        assert f'MSG: {dep}\n' in text
    assert field_types('demo_msgs', FAKE_MSGS[('demo_msgs', 'Outer')]) == [
        'std_msgs/Header',
        'demo_msgs/Inner',
    ]


def test_missing_definition_and_bad_type_names_are_reported() -> None:
    with pytest.raises(ValueError, match='not pkg/msg/Type'):
        split_type('Image')
    with pytest.raises(RecordingError, match='no_such_pkg'):
        message_definition('no_such_pkg/msg/Thing')


def test_recorded_ros_messages_decode_from_the_mcap_file(tmp_path) -> None:
    rclpy_serialization = pytest.importorskip('rclpy.serialization')
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    from sensor_msgs.msg import JointState

    from robotracer_msgs.msg import SpatialTrace

    path = str(tmp_path / 'run.mcap')
    rec = McapRecorder(path)
    rec.add_topic('/joint_states', 'sensor_msgs/msg/JointState')
    rec.add_topic('/robotracer/trace', 'robotracer_msgs/msg/SpatialTrace')
    js = JointState(name=['a', 'b'], position=[0.5, -1.25])
    js.header.stamp.sec, js.header.stamp.nanosec = 12, 345
    raw = rclpy_serialization.serialize_message(js)
    assert header_stamp_ns(raw) == 12_000_000_345
    rec.write('/joint_states', raw, 1_000, header_stamp_ns(raw))
    tr = SpatialTrace(instruction='put the red cube on the plate', pixel_u=[1.0, 2.0])
    rec.write('/robotracer/trace', rclpy_serialization.serialize_message(tr), 2_000)
    with pytest.raises(RecordingError, match='not registered'):
        rec.write('/nope', raw, 3_000)
    rec.close()
    with pytest.raises(RecordingError, match='closed'):
        rec.write('/joint_states', raw, 4_000)

    with open(path, 'rb') as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        got = {c.topic: m for _s, c, _r, m in reader.iter_decoded_messages()}
    assert list(got['/joint_states'].position) == [0.5, -1.25]
    assert got['/joint_states'].header.stamp.sec == 12
    assert got['/robotracer/trace'].instruction == 'put the red cube on the plate'


# --------------------------------------------------------------------------- pictures


def frame(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((480, 640, 3), 200, np.uint8)
    img[240:] = rng.integers(100, 140, (240, 640, 3), dtype=np.uint8)
    return img


def test_trace_picture_marks_start_green_and_end_red_inside_the_image() -> None:
    uv = np.array([[100.0, 300.0], [200.0, 150.0], [400.0, 160.0], [560.0, 420.0]])
    earlier = np.array([[120.0, 330.0], [250.0, 170.0], [400.0, 160.0]])
    img = pictures.trace_picture(frame(), uv, '"put it there"', 'four points', earlier=earlier)
    assert img.dtype == np.uint8 and img.shape[1] == 640 and img.shape[0] > 480
    body = img[img.shape[0] - 480 :]
    start, end = body[300, 100].astype(int), body[420, 560].astype(int)
    assert start[1] > 150 and start[0] < 80, start  # the first point is drawn green
    assert end[0] > 180 and end[1] < 80, end  # the last point is drawn red
    banner = img[: img.shape[0] - 480]
    assert banner.mean() < 60  # dark title band with light text
    assert (banner > 200).any()


def test_tags_avoid_the_trace_and_each_other() -> None:
    pts = np.array([[320.0, 240.0], [340.0, 220.0], [300.0, 220.0]])
    a = pictures.place_tag((480, 640, 3), (60, 24), pts[0], pts)
    b = pictures.place_tag((480, 640, 3), (60, 24), pts[0], pts, [a])
    for r in (a, b):
        assert 0 <= r[0] < r[2] <= 640 and 0 <= r[1] < r[3] <= 480
        for p in pts:
            assert not (r[0] <= p[0] <= r[2] and r[1] <= p[1] <= r[3])
    assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])
    corner = pictures.place_tag((480, 640, 3), (60, 24), np.array([639.0, 0.0]), pts)
    assert corner[2] <= 640 and corner[1] >= 0


def test_before_after_is_side_by_side_with_a_caption_and_rejects_mismatched_frames() -> None:
    img = pictures.before_after(frame(1), frame(2), '"put it there"', True, 'done')
    assert img.shape[1] == 2 * 640 + 6 and img.shape[0] > 480
    assert np.array_equal(img[300, 700], frame(2)[300, 700 - 646])
    with pytest.raises(ValueError, match='differ in size'):
        pictures.before_after(frame(), frame()[:100], 'x')
    with pytest.raises(ValueError, match='uint8 RGB'):
        pictures.trace_picture(frame()[..., 0], np.zeros((2, 2)), 'x')
    with pytest.raises(ValueError, match='no finite pixel'):
        pictures.trace_picture(frame(), np.full((2, 2), np.nan), 'x')


def test_overview_stacks_one_row_per_instruction() -> None:
    left = pictures.trace_picture(frame(), np.array([[10.0, 10.0], [50.0, 50.0]]), 'a')
    right = pictures.tagged(frame(), 'AFTER', [('a', pictures.TEXT_RGB)])
    img = pictures.overview([(left, right), (left, right)], 'title', scale=0.5)
    assert img.shape[1] == 640 + 6
    assert img.shape[0] > 2 * left.shape[0] // 2
    with pytest.raises(ValueError, match='at least one'):
        pictures.overview([], 'title')


# --------------------------------------------------------------------------- report


def test_table_and_summary_say_which_instruction_failed(tmp_path) -> None:
    good = InstructionOutcome(
        'put the red cube on the plate',
        'red_cube',
        'plate',
        success=True,
        replans=1,
        model_s=1.5,
        planning_s=0.2,
        motion_s=12.0,
        final_error_m=0.004,
        moved={'done': True},
    )
    far = InstructionOutcome(
        'put the blue cube in the bowl', 'blue_cube', 'bowl', success=True, final_error_m=0.2
    )
    failed = InstructionOutcome('x', 'a', 'b', error='perception failed')
    table = format_table([good, far, failed])
    lines = table.splitlines()
    assert lines[0].split()[:3] == ['#', 'instruction', 'success']
    assert '1 (moved)' in lines[2] and lines[2].rstrip().endswith('0.4')
    assert '20.0 (too far)' in lines[3]
    assert ' NO ' in lines[4]
    data = write_summary(str(tmp_path / 'summary.json'), 'ur5', [good, far, failed], {'d': 1})
    on_disk = json.loads((tmp_path / 'summary.json').read_text())
    assert on_disk == json.loads(json.dumps(data))
    assert [i['ok'] for i in on_disk['instructions']] == [True, False, False]
    assert on_disk['ok'] is False


def test_demo_tables_name_objects_of_their_scenes() -> None:
    import yaml

    root = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'config', 'scenes')
    scenes = {'ur5': 'ur5_tabletop.yaml', 'g1': 'g1_room.yaml'}
    for robot, spec in DEMOS.items():
        with open(os.path.join(root, scenes[robot])) as f:
            names = {o['name'] for o in yaml.safe_load(f)['objects']}
        for instr in spec.instructions:
            assert {instr.obj, instr.destination} <= names, (robot, instr)
    assert any(i.move for i in DEMOS['ur5'].instructions)
    assert len(DEMOS['ur5'].instructions) == 3
    assert horizontal_distance((0, 0, 5), (3, 4, 0)) == 5.0


# --------------------------------------------------------------------------- bringup process


FAKE_LAUNCH = textwrap.dedent(
    """
    import subprocess, sys, time
    # a "node" in its own session, like robotracer launch starts them
    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],
                             start_new_session=True)
    print('child', child.pid, flush=True)
    if sys.argv[1] == 'ready':
        print('[launch] ready: 1 nodes up in 0.1 s', flush=True)
    elif sys.argv[1] == 'die':
        print('node crashed: bad parameter', flush=True)
        child.kill()
        sys.exit(3)
    # ignore SIGINT, like a hung supervisor
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    time.sleep(600)
    """
)


def _child_pid(proc: BringupProcess) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in list(proc.tail):
            if line.startswith('child '):
                return int(line.split()[1])
        time.sleep(0.05)
    raise AssertionError('the fake launch did not report its child')


def test_bringup_waits_for_ready_and_stop_kills_the_whole_tree(tmp_path) -> None:
    script = tmp_path / 'fake_launch.py'
    script.write_text(FAKE_LAUNCH)
    proc = BringupProcess(
        [sys.executable, str(script), 'ready'], str(tmp_path / 'log.txt'), grace_s=1.0
    )
    with proc:
        assert proc.wait_ready(20).startswith('[launch] ready:')
        child = _child_pid(proc)
        assert child in descendants(os.getpid())
    # the supervisor ignored SIGINT: it was killed after the grace period, and its node too
    deadline = time.monotonic() + 10
    while start_time(child) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not proc.running
    assert start_time(child) is None or _is_zombie(child)
    assert '[launch] ready:' in (tmp_path / 'log.txt').read_text()


def _is_zombie(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except OSError:
        return True


def test_bringup_that_exits_early_reports_its_last_lines(tmp_path) -> None:
    script = tmp_path / 'fake_launch.py'
    script.write_text(FAKE_LAUNCH)
    proc = BringupProcess([sys.executable, str(script), 'die'], str(tmp_path / 'log.txt'))
    with proc, pytest.raises(BringupError, match='code 3') as info:
        proc.wait_ready(20)
    assert 'node crashed: bad parameter' in str(info.value)


def test_bringup_timeout_is_reported(tmp_path) -> None:
    script = tmp_path / 'fake_launch.py'
    script.write_text(FAKE_LAUNCH)
    proc = BringupProcess(
        [sys.executable, str(script), 'slow'], str(tmp_path / 'log.txt'), grace_s=1.0
    )
    with proc, pytest.raises(BringupError, match='not ready after 1 s'):
        proc.wait_ready(1.0)


# --------------------------------------------------------------------------- missing executor


def test_demo_for_a_robot_without_its_executor_says_so_and_fails(monkeypatch, capsys, tmp_path):
    from robotracer_demo import run

    spec = DemoSpec(
        'g1', ('trace_executor', 'no_such_executor'), (DemoInstruction('x', 'a', 'b'),)
    )
    monkeypatch.setitem(run.DEMOS, 'g1', spec)
    code = run.run_demo('g1', str(tmp_path / 'out'))
    err = capsys.readouterr().err
    assert code == run.EXIT_UNAVAILABLE
    assert 'G1 demo is not available yet' in err and 'no_such_executor' in err
    assert not (tmp_path / 'out').exists()  # nothing started, nothing written


def test_g1_script_path_exits_non_zero_with_a_clear_message() -> None:
    """``make demo-g1`` today: the G1 executor/bringup is being built; the script must say so."""
    from robotracer_demo.run import bringup_missing, executor_missing, launch_command

    if executor_missing(DEMOS['g1']) is None and bringup_missing(launch_command('g1', 1)) is None:
        pytest.skip('the G1 bringup is installed: the G1 demo runs for real (not checked here)')
    root = os.path.join(os.path.dirname(__file__), '..', '..', '..')
    res = subprocess.run(
        ['bash', 'scripts/demo.sh', 'g1'], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert res.returncode != 0
    assert 'G1 demo is not available yet' in res.stderr


def test_unknown_instruction_number_is_refused(capsys, tmp_path) -> None:
    from robotracer_demo.run import EXIT_USAGE, run_demo

    assert run_demo('ur5', str(tmp_path), only=[7]) == EXIT_USAGE
    assert 'no instruction 7' in capsys.readouterr().err


def test_bringup_preflight_returns_the_launchers_complaint() -> None:
    from robotracer_demo.run import bringup_missing

    bad = [sys.executable, '-c', 'import sys; sys.exit("parameter file g1.yaml not found")']
    assert bringup_missing(bad) == 'parameter file g1.yaml not found'
    assert bringup_missing([sys.executable, '-c', 'pass']) is None
