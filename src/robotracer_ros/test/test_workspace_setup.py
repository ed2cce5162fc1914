"""`make setup` is idempotent: a rerun with nothing changed does no work."""

from __future__ import annotations

import os
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))


def test_setup_rerun_is_a_fast_no_op():
    t0 = time.monotonic()
    res = subprocess.run(
        ['bash', os.path.join(ROOT, 'scripts', 'setup.sh')],
        capture_output=True,
        text=True,
        timeout=600,
    )
    elapsed = time.monotonic() - t0
    assert res.returncode == 0, res.stdout + res.stderr
    # Every step reports its timing, and nothing was rebuilt or reinstalled.
    assert 'colcon build' in res.stdout and 'up to date' in res.stdout
    assert 'built (' not in res.stdout and 'installed (' not in res.stdout
    print(f'no-op make setup: {elapsed:.1f} s')


def test_setup_bash_refuses_an_unbuilt_workspace(tmp_path):
    # Sourcing setup.bash from a checkout that was never built says what to do.
    (tmp_path / 'setup.bash').write_text(open(os.path.join(ROOT, 'setup.bash')).read())
    res = subprocess.run(
        ['bash', '-c', f'source {tmp_path}/setup.bash'], capture_output=True, text=True
    )
    assert res.returncode != 0 and 'make setup' in res.stderr


def test_pins_carry_no_local_version_labels():
    # `torch==2.13.0+cpu` exists only on PyTorch's own index and this machine's wheel folder:
    # a user's machine that reaches only the public index could not resolve the pins.
    with open(os.path.join(ROOT, 'requirements', 'constraints.txt')) as f:
        local = [line.strip() for line in f if '==' in line and '+' in line.split('==', 1)[1]]
    assert not local, f'local version labels in requirements/constraints.txt: {local}'
