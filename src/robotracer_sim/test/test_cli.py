"""``robotracer sim ur5``: options, early errors, and a real start that prints the ready line."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from robotracer_sim import cli


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='robotracer')
    cli.register(parser.add_subparsers(dest='command'))
    return parser.parse_args(argv)


def test_options_become_node_parameters():
    args = parse(
        [
            'sim',
            'ur5',
            '--scene',
            's.yaml',
            '--rate',
            '10',
            '--oracle-port',
            '0',
            '--viewer',
            '--ros-args',
            '-p',
            'use_sim_time:=true',
        ]
    )
    ros = cli.ros_arguments(args)
    assert ros[:2] == ['robotracer-sim', '--ros-args']
    pairs = [ros[i + 1] for i, a in enumerate(ros) if a == '-p']
    assert {
        'rate:=10.0',
        'oracle_port:=0',
        'scene:=s.yaml',
        'viewer:=true',
        'use_sim_time:=true',
    } <= set(pairs)


@pytest.mark.parametrize(
    'argv, message',
    [
        (['sim', 'ur5', '--rate', '100'], '--rate must be in [0.5, 60]'),
        (['sim', 'ur5', '--oracle-port', '70000'], '--oracle-port must be in'),
    ],
)
def test_out_of_range_options_fail_before_anything_starts(argv, message, capsys):
    args = parse(argv)
    assert args.func(args) == 2
    assert message in capsys.readouterr().err


def test_invalid_scene_file_is_reported_with_the_field(tmp_path, capsys):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('objects: [{name: x, shape: pyramid, color: red, size: 1, position: [0, 0]}]')
    args = parse(['sim', 'ur5', '--scene', str(bad)])
    assert args.func(args) == 2
    assert "shape: unknown shape 'pyramid'" in capsys.readouterr().err


def test_sim_without_a_world_asks_for_one(capsys):
    args = parse(['sim'])
    assert args.func(args) == 2 and 'choose a world' in capsys.readouterr().err


def test_world_plugins_add_their_world_and_absent_or_broken_ones_do_not_break_ur5(
    monkeypatch, capsys
):
    import types

    plugin = types.ModuleType('fake_world_cli')

    def add_parser(worlds):
        p = worlds.add_parser('fake', help='a plugged-in world')
        p.set_defaults(func=lambda a: 7)

    plugin.add_parser = add_parser
    monkeypatch.setitem(sys.modules, 'fake_world_cli', plugin)
    monkeypatch.setattr(
        cli, 'WORLD_PLUGINS', ('fake_world_cli', 'robotracer_sim.no_such_world.cli', 'json')
    )
    args = parse(['sim', 'fake'])
    assert args.func(args) == 7  # the plugin's world runs its own function
    args = parse(['sim', 'json'])  # a module without add_parser: listed as unavailable
    assert args.func(args) == 2 and 'has no add_parser' in capsys.readouterr().err
    assert parse(['sim', 'ur5']).func is not None  # ur5 is still there


@pytest.mark.skipif(shutil.which('robotracer') is None, reason='run `make setup` first')
def test_robotracer_sim_ur5_starts_and_prints_the_ready_line(tmp_path):
    proc = subprocess.Popen(
        [
            'robotracer',
            'sim',
            'ur5',
            '--oracle-port',
            '0',
            '--rate',
            '5',
            '--save-frames',
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert re.fullmatch(
            r'ur5_world ready: oracle at http://127\.0\.0\.1:\d+, camera 640x480 @ 5 Hz\n', line
        ), (line, proc.stderr.read() if proc.poll() is not None else '')
        deadline = time.monotonic() + 10
        while not (tmp_path / 'color.png').exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (tmp_path / 'color.png').exists() and (tmp_path / 'depth.png').exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(timeout=15)
    assert rc == 0, proc.stderr.read()  # a clean shutdown on Ctrl-C
