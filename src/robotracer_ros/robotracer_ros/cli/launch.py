"""``robotracer launch ur5|g1 [name:=value ...]``: the bringup without ``ros2 launch``.

Reads the same description as ``launch/ur5.launch.py`` (:mod:`robotracer_ros.bringup`), starts
the same executables with the same ``--ros-args`` as supervised child processes, prefixes their
logs, prints one ``ready`` line once every service/action is up, and shuts all children down
cleanly on Ctrl-C or when one dies (showing its exit code and last log lines).
"""

from __future__ import annotations

import argparse
from collections import deque
import os
import shlex
import signal
import subprocess
import sys
import threading
import time

from robotracer_ros.bringup import (
    BRINGUPS,
    Bringup,
    IncludeSpec,
    NodeSpec,
    dies_with_parent,
    include_command,
    namespace_params_files,
    parse_launch_args,
    ready_names,
    ros_args,
)

COLOURS = ['\033[36m', '\033[33m', '\033[35m', '\033[32m', '\033[34m', '\033[31m']
RESET = '\033[0m'


def share_dir() -> str:
    """The installed share folder of robotracer_ros (the source tree as a fallback)."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return get_package_share_directory('robotracer_ros')
    except Exception:  # not built: use the source tree
        return os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))


def find_executable(spec: NodeSpec) -> str:
    """Locate ``lib/<package>/<executable>`` through the ament index.

    Raises:
        FileNotFoundError: the package or executable is not installed, with what to do.

    """
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    except ImportError as exc:
        raise FileNotFoundError('ament_index_python missing: source setup.bash first') from exc
    try:
        prefix = get_package_prefix(spec.package)
    except PackageNotFoundError as exc:
        raise FileNotFoundError(
            f'package {spec.package} (node {spec.name}) is not installed here'
            + (
                ' — rviz2/foxglove_bridge need a full ROS install'
                if spec.package in ('rviz2', 'foxglove_bridge')
                else ' — run make setup'
            )
        ) from exc
    path = os.path.join(prefix, 'lib', spec.package, spec.executable)
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(
            f'executable {spec.executable} of {spec.package} not found at {path} — run make setup'
        )
    return path


def plan_commands(
    bringup: Bringup, given: dict[str, str]
) -> list[tuple[NodeSpec | IncludeSpec, list[str]]]:
    """Resolve arguments and return ``(node, argv)`` for every node, without starting any.

    Raises:
        ValueError: a bad launch argument.
        FileNotFoundError: an executable or the parameter file is missing.

    """
    values = bringup.resolve(given)
    params = values.get('config') or os.path.join(share_dir(), 'config', bringup.config_file)
    if not os.path.isfile(params):
        raise FileNotFoundError(f'parameter file {params} not found')
    out: list = []
    for inc in bringup.includes(values):
        out.append((inc, include_argv(inc)))
    for spec in bringup.nodes(values):
        argv = [find_executable(spec), *ros_args(spec, values, params)]
        argv = [a.replace('$(share robotracer_ros)', share_dir()) for a in argv]
        out.append((spec, namespace_params_files(argv, values['namespace'])))
    return out


def include_argv(spec: IncludeSpec) -> list[str]:
    """``ros2 launch`` of another package's launch file (e.g. move_group).

    Raises:
        FileNotFoundError: ``ros2`` or the package is not installed here, with what to do.
    """
    import shutil

    try:
        from ament_index_python.packages import get_package_share_directory

        get_package_share_directory(spec.package)
        found = shutil.which('ros2') is not None
    except Exception:  # noqa: BLE001 - PackageNotFoundError, or no ament index at all
        found = False
    if not found:
        raise FileNotFoundError(
            f'{spec.package} ({spec.launch_file}) is not installed here: robot_backend:=moveit '
            'needs MoveIt and the UR MoveIt configuration (the docker image has them), or '
            'launch_move_group:=false when move_group runs elsewhere'
        )
    return include_command(spec)


class Child:
    """A supervised node process whose output is prefixed and remembered."""

    def __init__(self, spec: NodeSpec, argv: list[str], colour: str) -> None:
        self.spec = spec
        self.tail: deque[str] = deque(maxlen=15)
        self.prefix = (
            f'{colour}[{spec.name}]{RESET} ' if sys.stdout.isatty() else f'[{spec.name}] '
        )
        self.proc = subprocess.Popen(
            dies_with_parent(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._pump, daemon=True)
        self.reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip('\n')
            self.tail.append(line)
            print(self.prefix + line, flush=True)

    def stop(self, sig: int = signal.SIGINT) -> None:
        """Send ``sig`` to the child's process group."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass


def _graph_names() -> object:
    """Return a function listing the current service names (a small rclpy node)."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    # Keep Ctrl-C for the supervisor (rclpy's handler would swallow it).
    rclpy.init(args=None, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('robotracer_launch_monitor')

    def names() -> set[str]:
        return {n for n, _t in node.get_service_names_and_types()}

    def close() -> None:
        node.destroy_node()
        rclpy.try_shutdown()

    return names, close


def supervise(children: list[Child], wanted: list[str], ready_timeout: float) -> int:
    """Wait for readiness, then until Ctrl-C or a child exits. Returns the exit code."""
    names, close = _graph_names()
    t0 = time.monotonic()
    ready = False
    last_warn = t0
    code = 0
    try:
        while True:
            for c in children:
                rc = c.proc.poll()
                if rc is not None:
                    print(f'[launch] {c.spec.name} exited with code {rc}; last lines:', flush=True)
                    for line in c.tail:
                        print(f'[launch]   | {line}')
                    print('[launch] stopping the other nodes', flush=True)
                    return rc or 1
            if not ready:
                missing = [w for w in wanted if w not in names()]
                if not missing:
                    ready = True
                    print(
                        f'[launch] ready: {len(children)} nodes up in '
                        f'{time.monotonic() - t0:.1f} s; services/actions: '
                        f'{", ".join(sorted(wanted)) or "-"}',
                        flush=True,
                    )
                elif time.monotonic() - last_warn > 10:
                    last_warn = time.monotonic()
                    print(f'[launch] still waiting for: {", ".join(missing)}', flush=True)
                    if ready_timeout and time.monotonic() - t0 > ready_timeout:
                        print(f'[launch] not ready after {ready_timeout:.0f} s', flush=True)
                        return 1
            time.sleep(0.2)
    except KeyboardInterrupt:
        print('\n[launch] Ctrl-C: shutting down', flush=True)
        return code
    finally:
        close()


def shutdown(children: list[Child], grace: float = 10.0) -> None:
    """SIGINT every child, SIGKILL those still alive after ``grace`` seconds."""
    for c in children:
        c.stop(signal.SIGINT)
    deadline = time.monotonic() + grace
    for c in children:
        try:
            c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f'[launch] {c.spec.name} did not stop in {grace:.0f} s: killing it')
            c.stop(signal.SIGKILL)
            c.proc.wait(timeout=5)
    for c in children:
        c.reader.join(timeout=1)


def run(args: argparse.Namespace) -> int:
    """Entry of ``robotracer launch``."""
    bringup = BRINGUPS[args.robot]
    if args.show_args:
        for a in bringup.args:
            req = 'required' if a.default is None else f'default {a.default!r}'
            ch = f' choices: {"|".join(a.choices)}' if a.choices else ''
            print(f'{a.name:<18} {a.description} ({req}{ch})')
        return 0
    try:
        planned = plan_commands(bringup, parse_launch_args(args.launch_args))
    except (ValueError, FileNotFoundError) as exc:
        print(f'robotracer launch: {exc}', file=sys.stderr)
        return 2
    if args.print:
        for spec, argv in planned:
            print(f'{spec.name}: {shlex.join(argv)}')
        return 0
    values = bringup.resolve(parse_launch_args(args.launch_args))
    wanted = ready_names([spec for spec, _ in planned], values)
    children: list[Child] = []
    # Ctrl-C and SIGTERM both shut the bringup down (SIGINT explicitly: a shell starting us in
    # the background would otherwise leave it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        for i, (spec, argv) in enumerate(planned):
            print(f'[launch] starting {spec.name}: {shlex.join(argv)}', flush=True)
            children.append(Child(spec, argv, COLOURS[i % len(COLOURS)]))
        code = supervise(children, wanted, args.ready_timeout)
    except KeyboardInterrupt:
        code = 0
    finally:
        shutdown(children)
    print(f'[launch] all nodes stopped (exit code {code})', flush=True)
    return code


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``launch`` subcommand."""
    p = sub.add_parser(
        'launch',
        help='bring up a robot (same nodes as ros2 launch robotracer_ros <robot>.launch.py)',
        description='Start the nodes of ur5.launch.py / g1.launch.py as supervised processes. '
        'Arguments use the ros2 launch syntax name:=value (see --show-args).',
    )
    p.add_argument('robot', choices=sorted(BRINGUPS), help='which bringup')
    p.add_argument('launch_args', nargs='*', metavar='name:=value', help='launch arguments')
    p.add_argument('--show-args', action='store_true', help='list the launch arguments and exit')
    p.add_argument(
        '--print',
        action='store_true',
        help='print each node command line and exit without starting anything',
    )
    p.add_argument(
        '--ready-timeout',
        type=float,
        default=0.0,
        metavar='S',
        help='give up if not ready after S seconds (0 = wait forever)',
    )
    p.set_defaults(func=run)
