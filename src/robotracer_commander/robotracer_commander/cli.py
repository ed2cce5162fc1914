"""``robotracer run "INSTRUCTION"``: send ExecuteInstruction, show phase and progress live.

A progress bar on a terminal, plain lines otherwise; Ctrl-C cancels the goal (the robot stops)
and the command exits non-zero; exit code 0 only on success. Exit codes: 0 success, 1 the goal
failed (the executor's error code and message are printed), 2 bad arguments, 3 no server,
4 rejected (busy), 5 server gone, 6 timeout, 130 interrupted. On a ROS install the same is
``ros2 action send_goal /robotracer/execute_instruction robotracer_msgs/action/ExecuteInstruction
"{instruction: '...'}"``.
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_CODES = {
    'succeeded': 0,
    'aborted': 1,
    'canceled': 1,
    'preempted': 1,
    'bad_goal': 2,
    'no_server': 3,
    'rejected': 4,
    'server_gone': 5,
    'timeout': 6,
}


class Display:
    """Progress output: a redrawn bar on a TTY, one line per change otherwise."""

    def __init__(self, tty: bool, stream=None) -> None:
        self.tty = tty
        self.stream = stream or sys.stdout
        self.last = ''

    def update(self, phase_name: str, progress: float, replans: int, message: str) -> None:
        """Show the latest feedback (repeated feedback prints nothing new)."""
        if self.tty:
            width = 30
            filled = int(round(progress * width))
            bar = '#' * filled + '-' * (width - filled)
            self.stream.write(
                f'\r[{bar}] {progress * 100:5.1f}%  {phase_name:<10} replans {replans}  '
                f'{message[:60]:<60}'
            )
            self.stream.flush()
        else:
            key = f'{phase_name}{int(progress * 10)}{replans}{message}'
            if key != self.last:
                print(
                    f'{phase_name} {progress * 100:.0f}% replans={replans} {message}',
                    file=self.stream,
                    flush=True,
                )
                self.last = key

    def end(self) -> None:
        """Finish the bar line."""
        if self.tty:
            self.stream.write('\n')


def run(args: argparse.Namespace) -> int:
    """Entry of ``robotracer run``."""
    from robotracer_commander.commander import Commander, GoalOutcome, Status

    if not args.instruction.strip():
        print('robotracer run: the instruction is empty', file=sys.stderr)
        return 2
    display = Display(sys.stdout.isatty() and not args.json)
    with Commander(execute_instruction=args.action) as cmd:
        missing = cmd.wait_for_servers(args.wait)
        if args.action in missing:
            print(
                f'robotracer run: no action server {args.action} after {args.wait:.0f} s — is '
                f'the executor running (robotracer launch {args.robot})?',
                file=sys.stderr,
            )
            return EXIT_CODES['no_server']
        goal = cmd.send_instruction(
            args.instruction,
            dry_run=args.dry_run,
            speed_scale=args.speed,
            disable_replanning=args.no_replan,
            mode=args.mode or '',
            preempt=args.preempt,
            on_feedback=lambda f: display.update(f.phase_name, f.progress, f.replans, f.message),
        )
        interrupted = False
        if isinstance(goal, GoalOutcome):
            outcome = goal
        else:
            try:
                outcome = goal.result(args.timeout or None)
            except KeyboardInterrupt:
                interrupted = True
                display.end()
                print('canceling the goal ...', file=sys.stderr)
                goal.cancel()
                outcome = goal.result(10.0)
        display.end()
        if args.json:
            print(json.dumps(outcome.summary()))
        elif outcome.success:
            print(f'SUCCESS: {outcome.message}  [replans: {outcome.replans}]')
        else:
            what = outcome.summary()['error'] if outcome.accepted else outcome.status.value
            print(
                f'FAILED ({what}, error {outcome.error_code}): {outcome.message}  '
                f'[replans: {outcome.replans}]'
            )
        if interrupted and outcome.status is not Status.SUCCEEDED:
            return 130
        return EXIT_CODES[outcome.status.value]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``run`` subcommand."""
    p = sub.add_parser(
        'run',
        help='execute an instruction on the robot (ExecuteInstruction)',
        description='Send an instruction to the executor and follow it: phase and progress '
        'live, Ctrl-C cancels, exit 0 only on success (1 failed, 3 no server, 4 busy, '
        '5 server gone, 6 timeout, 130 interrupted).',
    )
    p.add_argument('instruction', help='e.g. "put the red cube on the plate"')
    p.add_argument('--dry-run', action='store_true', help='perceive and plan only; no motion')
    p.add_argument(
        '--speed', type=float, default=0.0, help='speed scale in (0, 1]; 0 = the executor default'
    )
    p.add_argument(
        '--no-replan',
        action='store_true',
        help='do not replan on scene changes (replanning is on by default)',
    )
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
        default=600.0,
        help='cancel the goal after this many seconds (default %(default)s; 0 = no limit — the '
        'command still ends within 2 s when the executor goes away)',
    )
    p.add_argument('--json', action='store_true', help='print the result as one JSON line')
    p.set_defaults(func=run)
