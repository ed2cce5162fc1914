"""`make setup` is idempotent, and its pins resolve for every supported Python from the public
package index alone.

The resolution check runs pip the way a user's fresh machine would: ``pip --isolated`` (no pip
configuration files, no PIP_* variables: this machine's local wheel folder, extra file indexes
and global constraints are all ignored) with ``--dry-run --report`` for each of Python 3.10,
3.11 and 3.12 (the interpreters themselves, so markers, wheel tags and sdist metadata are
real). It needs the package index: when the index cannot be reached it is skipped, with the
reason printed. A passed resolution is remembered under ~/.cache/robotracer, keyed by the
requirement files, the constraints and pip's version: the check runs again (2-5 min on two busy
cores) only when one of them changed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

from packaging.markers import Marker
from packaging.requirements import Requirement
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
REQ = os.path.join(ROOT, 'requirements')
PYTHONS = ('3.10', '3.11', '3.12')
HEAVY = re.compile(r'^(torch|torchvision|transformers|accelerate|nvidia-.*|triton|cuda-.*)$')
# sdists that may be built on a user's machine: pure Python, built with setuptools from the
# index alone. A compiled sdist (it may fetch sources from elsewhere at build time, as
# ur-analytic-ik's fetches Eigen) fails the check: give it a marker or pick a version with wheels.
PURE_SDISTS = {'empy'}
CACHE = os.path.join(
    os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'), 'robotracer'
)
UNREACHABLE = re.compile(
    r'Max retries exceeded|Could not fetch URL|Temporary failure in name resolution|'
    r'Network is unreachable|Connection refused|Failed to establish a new connection|'
    r'timed out|SSLError',
    re.IGNORECASE,
)


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


def test_setup_refuses_an_unsupported_python_and_names_the_supported_ones(tmp_path):
    # A copy of the script in a scratch tree with no .venv: the Python check comes first.
    (tmp_path / 'scripts').mkdir()
    shutil.copy(os.path.join(ROOT, 'scripts', 'setup.sh'), tmp_path / 'scripts')
    fake = tmp_path / 'python3.9'
    fake.write_text('#!/bin/sh\necho 3.9\n')
    fake.chmod(0o755)
    res = subprocess.run(
        ['bash', str(tmp_path / 'scripts' / 'setup.sh')],
        capture_output=True,
        text=True,
        env={**os.environ, 'PYTHON': str(fake)},
        timeout=60,
    )
    assert res.returncode != 0
    assert 'found Python 3.9' in res.stderr and '3.10, 3.11, 3.12' in res.stderr
    assert 'cp311 only' not in res.stderr


def test_setup_refuses_an_unknown_extra(tmp_path):
    (tmp_path / 'scripts').mkdir()
    shutil.copy(os.path.join(ROOT, 'scripts', 'setup.sh'), tmp_path / 'scripts')
    res = subprocess.run(
        ['bash', str(tmp_path / 'scripts' / 'setup.sh')],
        capture_output=True,
        text=True,
        env={**os.environ, 'EXTRAS': 'local-modle'},
        timeout=60,
    )
    assert res.returncode != 0 and "unknown EXTRAS entry 'local-modle'" in res.stderr
    assert 'EXTRAS=local-model' in res.stderr


def _pins() -> list[tuple[str, str, str]]:
    """(name, version, marker) of every line of constraints.txt."""
    out = []
    with open(os.path.join(REQ, 'constraints.txt')) as f:
        for raw in f:
            line = raw.split('#', 1)[0].strip()
            if line:
                req = Requirement(line)
                (spec,) = req.specifier
                out.append((req.name, spec.version, str(req.marker or '')))
    return out


def test_pins_carry_no_local_version_labels():
    # `torch==2.13.0+cpu` exists only on PyTorch's own index and this machine's wheel folder:
    # a user's machine that reaches only the public index could not resolve the pins.
    local = [f'{n}=={v}' for n, v, _ in _pins() if '+' in v]
    assert not local, f'local version labels in requirements/constraints.txt: {local}'


def test_one_pin_per_package_and_python():
    seen: dict[tuple[str, str], str] = {}
    for name, version, marker in _pins():
        for py in PYTHONS:
            if marker and not Marker(marker).evaluate({'python_version': py}):
                continue
            key = (re.sub(r'[-_.]+', '-', name).lower(), py)
            assert key not in seen, f'{name} pinned twice for Python {py}'
            seen[key] = version


def _top_level(path: str) -> list[Requirement]:
    with open(path) as f:
        lines = [ln.split('#', 1)[0].strip() for ln in f]
    return [Requirement(ln) for ln in lines if ln and not ln.startswith('-')]


def _find_python(version: str) -> str | None:
    candidates = [f'python{version}', f'/usr/bin/python{version}']
    candidates += sorted(
        glob.glob(os.path.expanduser(f'~/.pyenv/versions/{version}.*/bin/python'))
    )
    for c in candidates:
        path = shutil.which(c)
        if path is None:
            continue
        try:
            out = subprocess.run(
                [path, '-c', 'import sys; print("%d.%d" % sys.version_info[:2])'],
                capture_output=True,
                text=True,
                timeout=20,
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out == version:
            return path
    return None


def _resolve(python: str, report: str) -> subprocess.CompletedProcess:
    """pip's dry-run resolution of both requirement files, as on a fresh machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('PIP_')}
    env['PIP_CONFIG_FILE'] = os.devnull  # (ignored under --isolated anyway)
    # TLS only: keep the machine's CA bundle (a proxy's certificate) that --isolated would drop
    cert = os.environ.get('PIP_CERT') or os.environ.get('REQUESTS_CA_BUNDLE')
    if cert:
        env['REQUESTS_CA_BUNDLE'] = cert
    cmd = [sys.executable, '-m', 'pip', '--python', python, 'install', '--isolated']
    cmd += ['--dry-run', '--ignore-installed', '--disable-pip-version-check', '--quiet']
    cmd += ['--timeout', '20', '--retries', '1', '--report', report]
    cmd += ['-r', os.path.join(REQ, 'requirements.in')]
    cmd += ['-r', os.path.join(REQ, 'local-model.in')]
    cmd += ['-c', os.path.join(REQ, 'constraints.txt')]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


def _closure(report: dict, roots: list[Requirement]) -> set[str]:
    """Names of the packages that ``roots`` pull in, within the resolved set of ``report``."""
    canon = lambda n: re.sub(r'[-_.]+', '-', n).lower()  # noqa: E731
    meta = {canon(i['metadata']['name']): i['metadata'] for i in report['install']}
    env = report['environment']
    todo = [(canon(r.name), frozenset(r.extras)) for r in roots]
    done: set[tuple[str, frozenset]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in done or name not in meta:
            continue
        done.add((name, extras))
        for line in meta[name].get('requires_dist') or []:
            req = Requirement(line)
            ok = req.marker is None or any(
                req.marker.evaluate({**env, 'extra': e}) for e in (extras or {''})
            )
            if ok:
                todo.append((canon(req.name), frozenset(req.extras)))
    return {n for n, _ in done}


def _key(pythons: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name in ('requirements.in', 'local-model.in', 'constraints.txt'):
        with open(os.path.join(REQ, name)) as f:  # the requirements, not the comments
            lines = [ln.split('#', 1)[0].strip() for ln in f]
        h.update(f'{name}:{[ln for ln in lines if ln]}'.encode())
    pip = subprocess.run(
        [sys.executable, '-m', 'pip', '--version'], capture_output=True, text=True
    ).stdout.split()[1]
    h.update(f'{pip} {sorted(pythons.items())}'.encode())
    return h.hexdigest()[:16]


@pytest.mark.timeout(1800)
def test_every_requirement_resolves_for_each_python_from_the_public_index(tmp_path):
    found = {v: _find_python(v) for v in PYTHONS}
    missing = [v for v, p in found.items() if p is None]
    if len(missing) == len(PYTHONS):
        pytest.skip(f'none of Python {", ".join(PYTHONS)} found (pyenv or PATH)')
    jobs = {v: str(tmp_path / f'{v}.json') for v, p in found.items() if p}
    stamp = os.path.join(CACHE, f'resolution-{_key({v: found[v] for v in jobs})}.ok')
    if os.path.exists(stamp):
        print(f'resolution for {", ".join(jobs)} already passed with these files ({stamp})')
        return
    t0 = time.monotonic()
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = dict(
            zip(jobs, pool.map(lambda v: _resolve(found[v], jobs[v]), jobs), strict=True)
        )
    elapsed = time.monotonic() - t0
    failed = {v: r for v, r in results.items() if r.returncode != 0}
    if failed and all(UNREACHABLE.search(r.stderr + r.stdout) for r in failed.values()):
        first = next(iter(failed.values()))
        reason = next(ln for ln in (first.stderr + first.stdout).splitlines() if ln.strip())
        pytest.skip(f'the package index is unreachable from here: {reason[:200]}')
    for v, r in failed.items():
        tail = '\n'.join((r.stderr + r.stdout).strip().splitlines()[-15:])
        pytest.fail(f'Python {v}: the pins do not resolve from the public index:\n{tail}')
    robot_roots = _top_level(os.path.join(REQ, 'requirements.in'))
    for v, path in jobs.items():
        with open(path) as f:
            report = json.load(f)
        assert report['environment']['python_version'] == v
        urls = [i['download_info']['url'] for i in report['install']]
        # nothing from a local folder or file index: every file comes from the public index
        assert urls and all(u.startswith('https://') for u in urls), [
            u for u in urls if not u.startswith('https://')
        ][:5]
        built = {
            i['metadata']['name'].lower()
            for i in report['install']
            if not i['download_info']['url'].endswith('.whl')
        }
        assert built <= PURE_SDISTS, f'Python {v}: built from sdist: {sorted(built)}'
        # the robot side never pulls torch, CUDA or transformers; the local-model extra does
        robot = _closure(report, robot_roots)
        assert not {n for n in robot if HEAVY.match(n)}, sorted(n for n in robot if HEAVY.match(n))
        assert {'torch', 'transformers', 'accelerate'} <= {
            re.sub(r'[-_.]+', '-', i['metadata']['name']).lower() for i in report['install']
        }
    print(f'resolved {", ".join(jobs)} in {elapsed:.0f} s; not found here: {missing or "none"}')
    os.makedirs(CACHE, exist_ok=True)
    with open(stamp, 'w') as f:
        f.write(f'{time.strftime("%Y-%m-%dT%H:%M:%S")} resolved in {elapsed:.0f} s\n')
    if missing:
        pytest.skip(f'resolved for {", ".join(jobs)}; Python {", ".join(missing)} not found here')
