"""``make demo``: bring the simulated robot up, run the instructions, write ``out/demo/``.

Design notes: docs/design-notes.md (robotracer_demo.run).
"""

from __future__ import annotations

from collections.abc import Sequence
import glob
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np

from robotracer_commander import PHASE_NAMES
from robotracer_demo import pictures
from robotracer_demo.process import BringupError, BringupProcess, free_port
from robotracer_demo.recording import McapRecorder, RecordingError
from robotracer_demo.report import InstructionOutcome, format_table, write_summary
from robotracer_demo.scenarios import DEMOS, DemoInstruction, DemoSpec, horizontal_distance
from robotracer_demo.timing import PhaseClock

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_BRINGUP = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130
OUTPUT_PATTERNS = ('[0-9][0-9]_*.png', 'demo.png', 'summary.json', 'demo.mcap', 'bringup.log')


def log(message: str) -> None:
    """One progress line on stdout."""
    print(f'[demo] {message}', flush=True)


def executor_missing(spec: DemoSpec) -> str | None:
    """Why the robot's executor cannot run here, or None when it is installed.

    Args:
        spec: the demo.

    Returns:
        A sentence for the user, or None.
    """
    package, executable = spec.executor
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    except ImportError:
        return 'ament_index_python is not importable: run `source setup.bash` (or make setup)'
    try:
        prefix = get_package_prefix(package)
    except PackageNotFoundError:
        return f'package {package} is not installed (run make setup)'
    path = os.path.join(prefix, 'lib', package, executable)
    if not os.access(path, os.X_OK):
        return f'{package} has no {executable} executable ({path} is missing)'
    return None


def bringup_missing(argv: Sequence[str], timeout_s: float = 60.0) -> str | None:
    """Why the bringup cannot start here (``robotracer launch ... --print``), or None.

    ``--print`` resolves the arguments, the executables and the parameter file without starting
    anything, so a missing part is reported before any process runs.

    Args:
        argv: the bringup command (from :func:`launch_command`).
        timeout_s: longest wait for the check, seconds.

    Returns:
        The launcher's complaint, or None when everything it needs is installed.
    """
    try:
        res = subprocess.run(
            [*argv, '--print'], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f'{" ".join(argv[:3])} --print failed: {exc}'
    if res.returncode == 0:
        return None
    lines = (res.stderr or res.stdout).strip().splitlines()
    return lines[-1] if lines else f'{" ".join(argv[:3])} --print exited {res.returncode}'


def launch_command(robot: str, oracle_port: int, extra: Sequence[str] = ()) -> list[str]:
    """The ``robotracer launch`` command line for the demo's bringup.

    Args:
        robot: bringup name.
        oracle_port: port of the simulator's oracle model server.
        extra: more ``name:=value`` launch arguments.

    Returns:
        The argv (the ``robotracer`` script on PATH, else this interpreter running its module).
    """
    exe = shutil.which('robotracer')
    head = [exe] if exe else [sys.executable, '-m', 'robotracer_ros.cli.main']
    return [*head, 'launch', robot, f'oracle_port:={int(oracle_port)}', *extra]


def clean_outputs(out_dir: str) -> None:
    """Remove the files a previous demo wrote into ``out_dir`` (nothing else)."""
    for pattern in OUTPUT_PATTERNS:
        for path in glob.glob(os.path.join(out_dir, pattern)):
            os.remove(path)


def _pixels(trace: Any) -> np.ndarray:
    return np.column_stack([np.asarray(trace.pixel_u, float), np.asarray(trace.pixel_v, float)])


def _xyz(v: np.ndarray) -> list[float]:
    return [round(float(x), 4) for x in v]


class DemoRun:
    """One demo run against a ready bringup (the ROS part of :func:`run_demo`).

    Args:
        spec: the demo.
        out_dir: output folder (exists).
        node: a spinning :class:`~robotracer_demo.node.DemoNode`.
        bringup: the bringup, checked before each instruction (None: not supervised here).
    """

    def __init__(
        self, spec: DemoSpec, out_dir: str, node: Any, bringup: BringupProcess | None
    ) -> None:
        self.spec = spec
        self.out_dir = out_dir
        self.node = node
        self.bringup = bringup
        self.current_goal: Any = None
        #: per instruction (trace picture, after panel) for demo.png
        self.rows: list[tuple[np.ndarray, np.ndarray]] = []

    def run_instruction(self, index: int, instr: DemoInstruction) -> InstructionOutcome:
        """Run one instruction and write its pictures.

        Raises:
            RuntimeError: a service or the action server is missing or refused the goal.
        """
        from robotracer_demo.node import GoalRecord, trace_key

        node, spec = self.node, self.spec
        out = InstructionOutcome(instr.text, instr.obj, instr.destination)
        out.tolerance_m = instr.tolerance_m
        start_poses = node.object_poses([instr.obj, instr.destination])  # checks the names
        before = node.wait_for_frame(2.0)
        record = GoalRecord()
        clock = PhaseClock()
        events: list[tuple[float, str]] = []  # printed in time order by this thread
        lock = threading.Lock()
        last_phase: list[int] = []

        def on_feedback(t: float, phase: int, message: str) -> None:
            with lock:
                clock.feedback(t, phase, message)
                if not last_phase or last_phase[-1] != phase:
                    last_phase.append(phase)
                    events.append((t, f'{PHASE_NAMES.get(phase, str(phase))}: {message}'))

        def flush_events() -> None:
            with lock:
                pending = sorted(events)
                events.clear()
            for t, text in pending:
                out.timeline.append((round(t - t_send, 2), text))
                log(f'    {t - t_send:5.1f} s  {text}')

        t_send = time.monotonic()
        goal = node.send_instruction(instr.text, record, on_feedback)
        self.current_goal = goal
        moved: dict[str, Any] | None = None
        outcome = None
        while outcome is None:
            now = time.monotonic()
            with lock:
                since = clock.executing_since
            if (
                instr.move is not None
                and moved is None
                and since is not None
                and now - since >= instr.move.after_s
            ):
                moved = self._perturb(instr, start_poses[instr.obj], now - since)
                with lock:
                    events.append((time.monotonic(), moved['message']))
            flush_events()
            if goal.done or now - t_send > spec.goal_timeout_s:
                outcome = goal.result(max(0.0, spec.goal_timeout_s - (now - t_send)))
            else:
                time.sleep(0.05)
        t_done = time.monotonic()
        flush_events()
        self.current_goal = None
        out.total_s = round(t_done - t_send, 3)
        for k, v in clock.finish(t_done).items():
            setattr(out, k, round(v, 3))
        out.moved = moved
        record.accepted = outcome.accepted
        out.success = outcome.success
        out.error_code = int(outcome.error_code)
        out.message = outcome.message
        out.error = '' if outcome.success else f'{outcome.status.value}: {outcome.message}'
        out.replans = int(outcome.replans)
        final = outcome.executed_trace
        if (
            final is not None
            and final.points
            and (not record.traces or trace_key(record.traces[-1]) != trace_key(final))
        ):
            record.traces.append(final)
            record.frames.append(None)
        out.traces = len(record.traces)
        time.sleep(spec.settle_s)
        poses = node.object_poses([instr.obj, instr.destination])
        obj_xyz, dest_xyz = poses[instr.obj][0], poses[instr.destination][0]
        out.final_position = _xyz(obj_xyz)
        out.destination_position = _xyz(dest_xyz)
        out.final_error_m = round(horizontal_distance(obj_xyz, dest_xyz), 4)
        after = node.wait_for_frame(2.0)
        self._pictures(index, instr, out, record, before, after)
        return out

    def _perturb(
        self, instr: DemoInstruction, start: tuple[np.ndarray, np.ndarray, bool], at_s: float
    ) -> dict[str, Any]:
        """Teleport the object to ``instr.move.to_xy`` (same height and orientation as at rest).

        The simulator refuses to move a held object; the returned record says so.
        """
        assert instr.move is not None
        xyz, quat, _held = start
        target = np.array([instr.move.to_xy[0], instr.move.to_xy[1], xyz[2]])
        ok, message = self.node.move_object(instr.obj, target, quat)
        return {
            'at_s': round(at_s, 2),
            'from': _xyz(xyz),
            'to': _xyz(target),
            'done': ok,
            'message': (
                f'moved {instr.obj} from ({xyz[0]:.2f}, {xyz[1]:.2f}) to '
                f'({target[0]:.2f}, {target[1]:.2f}) {at_s:.1f} s into the motion'
                if ok
                else f'could not move {instr.obj}: {message}'
            ),
        }

    def _pictures(
        self,
        index: int,
        instr: DemoInstruction,
        out: InstructionOutcome,
        record: Any,
        before: Any,
        after: Any,
    ) -> None:
        """Write NN_trace.png and NN_before_after.png; keep the overview's row."""
        from robotracer_ros.images import encode_png

        prefix = f'{index:02d}'
        quoted = f'"{instr.text}"'
        thing = instr.obj.replace('_', ' ')
        err = '-' if out.final_error_m is None else f'{out.final_error_m * 100:.1f} cm'
        verdict = 'done' if out.ok else 'FAILED'
        replans = f'{out.replans} replan' + ('' if out.replans == 1 else 's')
        detail = (
            f'{verdict}  ·  {replans}  ·  {thing} {err} from the '
            f'{instr.destination.replace("_", " ")} centre  ·  {out.total_s:.1f} s'
        )
        if out.error:
            detail = f'FAILED: {out.error}'
        trace_img = None
        if record.traces:
            final = record.traces[-1]
            frame = record.frames[-1] if record.frames[-1] is not None else before
            earlier = _pixels(record.traces[0]) if len(record.traces) > 1 else None
            sub = f'{len(final.points)} trace points from {final.model_id or "the model"}'
            if earlier is not None:
                sub = (
                    f'{len(final.points)} trace points after {replans}  ·  dashed: the trace '
                    f'before the {thing} moved'
                )
            if frame is not None and len(final.pixel_u):
                trace_img = pictures.trace_picture(
                    frame.rgb,
                    _pixels(final),
                    quoted,
                    sub,
                    earlier=earlier,
                    earlier_label='before the move',
                )
                self._save(
                    f'{prefix}_trace.png', encode_png(trace_img, compression=6), out, 'trace'
                )
        if before is not None and after is not None:
            img = pictures.before_after(before.rgb, after.rgb, quoted, out.ok, detail)
            self._save(
                f'{prefix}_before_after.png', encode_png(img, compression=6), out, 'before_after'
            )
            if trace_img is not None:
                panel = pictures.tagged(
                    after.rgb,
                    'AFTER',
                    [
                        (quoted, pictures.TEXT_RGB),
                        (detail, (pictures.OK_RGB if out.ok else pictures.FAIL_RGB)),
                    ],
                )
                self.rows.append((trace_img, panel))

    def _save(self, name: str, data: bytes, out: InstructionOutcome, key: str) -> None:
        with open(os.path.join(self.out_dir, name), 'wb') as f:
            f.write(data)
        out.files[key] = name


def run_demo(
    robot: str,
    out_dir: str,
    *,
    only: Sequence[int] | None = None,
    oracle_port: int = 0,
    record: bool = True,
    image_period_s: float = 0.5,
    ready_timeout_s: float = 120.0,
    verbose: bool = False,
) -> int:
    """Run a robot's demo end to end (see the module docstring).

    Args:
        robot: ``ur5`` or ``g1``.
        out_dir: output folder (created; earlier demo files in it are replaced).
        only: 1-based instruction numbers to run (None: all).
        oracle_port: the oracle's port; 0 picks a free one.
        record: write ``demo.mcap``.
        image_period_s: seconds between recorded colour frames.
        ready_timeout_s: longest wait for the bringup, s.
        verbose: echo the bringup's output.

    Returns:
        0 when every instruction succeeded with its object within tolerance; 1 when one did
        not; 2 bad arguments; 3 the robot's executor or bringup is not installed; 4 the bringup
        did not come up; 130 interrupted.
    """
    spec = DEMOS.get(robot)
    if spec is None:
        print(
            f'robotracer demo: unknown robot {robot!r}; choose {", ".join(DEMOS)}', file=sys.stderr
        )
        return EXIT_USAGE
    chosen = list(enumerate(spec.instructions, 1))
    if only:
        bad = [n for n in only if not 1 <= n <= len(spec.instructions)]
        if bad:
            print(
                f'robotracer demo: no instruction {bad[0]}; the {robot} demo has '
                f'{len(spec.instructions)}',
                file=sys.stderr,
            )
            return EXIT_USAGE
        chosen = [(n, spec.instructions[n - 1]) for n in only]
    port = oracle_port or free_port()
    argv = launch_command(spec.robot, port, spec.launch_args)
    missing = executor_missing(spec) or bringup_missing(argv)
    if missing:
        print(
            f'robotracer demo {robot}: the {robot.upper()} demo is not available yet — '
            f'{missing}.\nIt needs {"/".join(spec.executor)} and `robotracer launch {robot}`; '
            f'`make demo` (UR5) works now.',
            file=sys.stderr,
        )
        return EXIT_UNAVAILABLE
    os.makedirs(out_dir, exist_ok=True)
    clean_outputs(out_dir)
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    t0 = time.monotonic()
    log_path = os.path.join(out_dir, 'bringup.log')
    log(f'starting the {robot.upper()} simulator: {" ".join(argv[-3:])} (log: {log_path})')
    bringup = BringupProcess(argv, log_path, echo=verbose)
    outcomes: list[InstructionOutcome] = []
    code = EXIT_OK
    recorder: McapRecorder | None = None
    ros: dict[str, Any] = {}
    try:
        bringup.start()
        try:
            ready = bringup.wait_ready(ready_timeout_s)
        except BringupError as exc:
            log(str(exc))
            return EXIT_BRINGUP
        log(f'ready after {time.monotonic() - t0:.1f} s ({ready.split(";")[0]})')
        if record:
            recorder = McapRecorder(os.path.join(out_dir, 'demo.mcap'))
        run = _start_ros(spec, out_dir, recorder, image_period_s, bringup, ros)
        if run.node.wait_for_frame(20.0) is None:
            log(
                'no camera frame from the simulator after 20 s; last bringup lines:\n'
                + bringup.last_lines()
            )
            return EXIT_BRINGUP
        for n, instr in chosen:
            if not bringup.running:
                log('the bringup stopped; last lines:\n' + bringup.last_lines())
                outcomes.append(
                    InstructionOutcome(
                        instr.text, instr.obj, instr.destination, error='the bringup stopped'
                    )
                )
                continue
            move = (
                f' ({instr.obj} is moved {instr.move.after_s:g} s into the motion)'
                if instr.move
                else ''
            )
            log(f'{n}/{len(spec.instructions)} "{instr.text}"{move}')
            try:
                outcome = run.run_instruction(n, instr)
            except RuntimeError as exc:
                outcome = InstructionOutcome(
                    instr.text, instr.obj, instr.destination, error=str(exc)
                )
            outcomes.append(outcome)
            state = 'done' if outcome.ok else 'FAILED'
            err = ''
            if outcome.final_error_m is not None:
                cm = outcome.final_error_m * 100
                err = f', {instr.obj} {cm:.1f} cm from the {instr.destination}'
            log(f'  {state}: {outcome.error or "success"} [replans {outcome.replans}{err}]')
        code = EXIT_OK if outcomes and all(o.ok for o in outcomes) else EXIT_FAILED
    except KeyboardInterrupt:
        log('interrupted: canceling and shutting down')
        goal = ros.get('run').current_goal if ros.get('run') else None
        if goal is not None:
            goal.cancel()
            goal.result(5.0)
        code = EXIT_INTERRUPTED
    finally:
        _stop_ros(ros)
        if recorder is not None:
            recorder.close()
        bringup.stop()
    rows = ros['run'].rows if ros.get('run') else []
    _finish(spec, out_dir, outcomes, rows, recorder, time.monotonic() - t0, code)
    return code


def _start_ros(
    spec: DemoSpec,
    out_dir: str,
    recorder: McapRecorder | None,
    image_period_s: float,
    bringup: BringupProcess,
    ros: dict[str, Any],
) -> DemoRun:
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from robotracer_demo.node import DemoNode

    ctx = rclpy.Context()
    # Ctrl-C stays with the demo (rclpy's handler would swallow it) so the bringup stops.
    rclpy.init(context=ctx, signal_handler_options=SignalHandlerOptions.NO)
    ros['context'] = ctx
    node = DemoNode(recorder, image_period_s=image_period_s, context=ctx)
    ros['node'] = node
    # One thread runs every callback; after it is joined no callback can touch the node.
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    ros['executor'] = executor

    def spin() -> None:
        try:
            executor.spin()
        except ExternalShutdownException:
            pass

    thread = threading.Thread(target=spin, name='demo-ros', daemon=True)
    thread.start()
    ros['thread'] = thread
    run = DemoRun(spec, out_dir, node, bringup)
    ros['run'] = run
    return run


def _stop_ros(ros: dict[str, Any]) -> None:
    """Stop spinning first, then destroy the node and shut the context down."""
    import rclpy

    executor, node, ctx = ros.get('executor'), ros.get('node'), ros.get('context')
    if executor is not None:
        executor.shutdown(timeout_sec=5.0)
    if ros.get('thread') is not None:
        ros['thread'].join(timeout=5.0)
    if node is not None:
        node.destroy_node()
    if ctx is not None:
        rclpy.try_shutdown(context=ctx)


def _finish(
    spec: DemoSpec,
    out_dir: str,
    outcomes: list[InstructionOutcome],
    rows: list[tuple[np.ndarray, np.ndarray]],
    recorder: McapRecorder | None,
    duration_s: float,
    code: int,
) -> None:
    from robotracer_ros.images import encode_png

    if rows:
        ok = sum(o.ok for o in outcomes)
        title = (
            f'RoboTracer ROS 2 · {spec.robot.upper()} simulator demo · '
            f'{ok}/{len(outcomes)} instructions done'
        )
        with open(os.path.join(out_dir, 'demo.png'), 'wb') as f:
            f.write(encode_png(pictures.overview(rows, title, scale=0.7), compression=6))
    extra: dict[str, Any] = {'duration_s': round(duration_s, 1), 'exit_code': code}
    if recorder is not None:
        extra['recording'] = {'file': 'demo.mcap', 'messages': dict(recorder.counts)}
    extra['bringup_log'] = 'bringup.log'
    try:
        write_summary(os.path.join(out_dir, 'summary.json'), spec.robot, outcomes, extra)
    except (OSError, RecordingError) as exc:
        log(f'cannot write summary.json: {exc}')
    if outcomes:
        print()
        print(format_table(outcomes))
        print()
    files = sorted(os.listdir(out_dir))
    log(f'{len(files)} files in {out_dir}/: {", ".join(files)}')
    log(
        f'total {duration_s:.1f} s; '
        + ('all instructions done' if code == EXIT_OK else f'exit code {code}')
    )
