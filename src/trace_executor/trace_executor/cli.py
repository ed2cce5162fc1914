"""``robotracer run "INSTRUCTION"``: send ExecuteInstruction, show phase and progress live.

A progress bar on a terminal, plain lines otherwise; Ctrl-C cancels the goal (the robot stops)
and the command exits non-zero; exit code 0 only on success. On a ROS install the same is
``ros2 action send_goal /robotracer/execute_instruction robotracer_msgs/action/ExecuteInstruction
"{instruction: '...'}"``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

PHASES = {0: 'perceiving', 1: 'planning', 2: 'executing', 3: 'replanning', 4: 'walking'}


class Display:
    """Progress output: a redrawn bar on a TTY, one line per change otherwise."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.last = ''

    def update(self, phase: int, progress: float, replans: int, message: str) -> None:
        """Show the latest feedback."""
        name = PHASES.get(phase, str(phase))
        if self.tty:
            width = 30
            filled = int(round(progress * width))
            bar = '#' * filled + '-' * (width - filled)
            line = (
                f'\r[{bar}] {progress * 100:5.1f}%  {name:<10} replans {replans}  '
                f'{message[:60]:<60}'
            )
            sys.stdout.write(line)
            sys.stdout.flush()
        else:
            line = f'{name} {progress * 100:.0f}% replans={replans} {message}'
            key = f'{name}{int(progress * 10)}{replans}{message}'
            if key != self.last:
                print(line, flush=True)
                self.last = key

    def end(self) -> None:
        """Finish the bar line."""
        if self.tty:
            sys.stdout.write('\n')


def run(args: argparse.Namespace) -> int:
    """Entry of ``robotracer run``."""
    import rclpy
    from rclpy.action import ActionClient

    from robotracer_msgs.action import ExecuteInstruction

    if not args.instruction.strip():
        print('robotracer run: the instruction is empty', file=sys.stderr)
        return 2
    rclpy.init()
    node = rclpy.create_node('robotracer_run')
    client = ActionClient(node, ExecuteInstruction, args.action)
    display = Display(sys.stdout.isatty() and not args.json)
    code = 1
    try:
        if not client.wait_for_server(timeout_sec=args.wait):
            print(
                f'robotracer run: no action server {args.action} after {args.wait:.0f} s — is '
                f'the executor running (robotracer launch {args.robot})?',
                file=sys.stderr,
            )
            return 3
        goal = ExecuteInstruction.Goal(
            instruction=args.instruction,
            dry_run=args.dry_run,
            speed_scale=args.speed,
            replanning=not args.no_replan,
            mode=args.mode or '',
            preempt=args.preempt,
        )
        fut = client.send_goal_async(
            goal,
            feedback_callback=lambda f: display.update(
                f.feedback.phase, f.feedback.progress, f.feedback.replans, f.feedback.message
            ),
        )
        rclpy.spin_until_future_complete(node, fut, timeout_sec=30)
        handle = fut.result()
        if handle is None or not handle.accepted:
            print(
                'robotracer run: the goal was rejected (another goal is running? use --preempt)',
                file=sys.stderr,
            )
            return 4
        res_fut = handle.get_result_async()
        t0 = time.monotonic()
        try:
            while not res_fut.done():
                rclpy.spin_once(node, timeout_sec=0.1)
                if args.timeout and time.monotonic() - t0 > args.timeout:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            display.end()
            print('canceling the goal ...', file=sys.stderr)
            cancel = handle.cancel_goal_async()
            rclpy.spin_until_future_complete(node, cancel, timeout_sec=5)
            rclpy.spin_until_future_complete(node, res_fut, timeout_sec=10)
            if not res_fut.done():
                print('robotracer run: no result after cancel', file=sys.stderr)
                return 130
        display.end()
        result = res_fut.result().result
        summary = {
            'success': bool(result.success),
            'error_code': int(result.error_code),
            'message': result.error_msg,
            'replans': int(result.replans),
            'trace_points': [[p.x, p.y, p.z] for p in result.executed_trace.points],
            'frame_id': result.executed_trace.header.frame_id,
        }
        if args.json:
            print(json.dumps(summary))
        else:
            state = 'SUCCESS' if result.success else f'FAILED (error {result.error_code})'
            print(f'{state}: {result.error_msg}  [replans: {result.replans}]')
        code = 0 if result.success else 1
        return code
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``run`` subcommand."""
    p = sub.add_parser(
        'run',
        help='execute an instruction on the robot (ExecuteInstruction)',
        description='Send an instruction to the executor and follow it: phase '
        'and progress live, Ctrl-C cancels, exit 0 only on success.',
    )
    p.add_argument('instruction', help='e.g. "put the red cube on the plate"')
    p.add_argument('--dry-run', action='store_true', help='perceive and plan only; no motion')
    p.add_argument(
        '--speed', type=float, default=0.0, help='speed scale in (0, 1]; 0 = the executor default'
    )
    p.add_argument('--no-replan', action='store_true', help='do not replan on scene changes')
    p.add_argument(
        '--mode',
        choices=['pick_place', 'push', 'follow'],
        default=None,
        help='how to execute the trace (default: the executor default)',
    )
    p.add_argument('--preempt', action='store_true', help='replace a running goal')
    p.add_argument(
        '--robot',
        choices=['ur5', 'g1'],
        default='ur5',
        help='which bringup serves the action (for messages only: both robots serve '
        'the same action)',
    )
    p.add_argument(
        '--action',
        default='/robotracer/execute_instruction',
        help='action name (default %(default)s)',
    )
    p.add_argument('--wait', type=float, default=20.0, help='seconds to wait for the server')
    p.add_argument(
        '--timeout',
        type=float,
        default=0.0,
        help='cancel the goal after this many seconds (0 = no limit)',
    )
    p.add_argument('--json', action='store_true', help='print the result as one JSON line')
    p.set_defaults(func=run)
