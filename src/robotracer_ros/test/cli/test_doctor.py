"""`robotracer` skeleton and `robotracer doctor`, run as a user would from a shell."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

ROBOTRACER = shutil.which('robotracer')
pytestmark = pytest.mark.skipif(ROBOTRACER is None, reason='`source setup.bash` first')


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ROBOTRACER, *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_help_lists_every_subcommand_and_each_has_help():
    top = run('--help')
    assert top.returncode == 0 and 'doctor' in top.stdout
    # every registered subcommand (built-in and plugins) answers --help with exit code 0
    import argparse

    from robotracer_ros.cli.main import build_parser

    sub = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)][0]
    names = sorted(sub.choices)
    assert {'doctor', 'launch', 'lift', 'query', 'ask', 'run', 'sim'} <= set(names)
    assert 'doctor' in names
    for name in names:
        res = run(name, '--help')
        assert res.returncode == 0, f'robotracer {name} --help failed: {res.stderr}'


def test_doctor_reports_a_working_core():
    res = run('doctor', '--json')
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads(res.stdout)
    assert report['python'].startswith('3.11')
    assert report['ros_distro'] == 'jazzy'
    assert report['rmw'] == 'rmw_fastrtps_cpp'
    assert report['core']['robotracer_msgs.action'] == 'ok'
    assert 'problems' not in report['core']
    # optional components are listed whether present or not
    for name in (
        'torch',
        'transformers',
        'accelerate',
        'mujoco',
        'unitree_sdk2py',
        'rtde_control',
        'moveit',
        'launch',
    ):
        assert name in report['optional']


def test_doctor_fails_and_says_why_when_interfaces_are_missing():
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in env.get('PYTHONPATH', '').split(os.pathsep) if 'robotracer_msgs' not in p
    )
    res = run('doctor', env=env)
    assert res.returncode == 1
    assert 'robotracer_msgs' in res.stdout and 'PROBLEM' in res.stdout
    assert 'make setup' in res.stdout


def test_unknown_subcommand_is_an_error():
    res = run('no-such-command')
    assert res.returncode == 2 and 'invalid choice' in res.stderr
