"""Find the robot descriptions that the ``example-robot-data`` wheel ships.

The PyPI wheel (a cmeel package) installs them under
``<site-packages>/cmeel.prefix/share/example-robot-data/robots``; URDFs refer to their meshes as
``package://example-robot-data/robots/...``, so that folder is what those URLs resolve to.
Set ``EXAMPLE_ROBOT_DATA_ROBOTS`` to use another copy (e.g. a ROS install's
``share/example-robot-data/robots``).
"""

from __future__ import annotations

import os
from pathlib import Path
import site
import sys

ENV_VAR = 'EXAMPLE_ROBOT_DATA_ROBOTS'
PACKAGE_URL = 'package://example-robot-data/robots/'
_RELATIVE = Path('cmeel.prefix') / 'share' / 'example-robot-data' / 'robots'


def _candidates() -> list[Path]:
    roots: list[str] = []
    try:
        roots.extend(site.getsitepackages())
    except AttributeError:  # some virtualenv flavours lack it
        pass
    roots.extend(p for p in sys.path if p.endswith('site-packages'))
    out: list[Path] = []
    for r in roots:
        p = Path(r) / _RELATIVE
        if p not in out:
            out.append(p)
    return out


def robots_dir() -> Path:
    """Return the ``example-robot-data/robots`` folder.

    Returns:
        The absolute path of the folder holding ``ur_description/``, ``g1_description/``, ...

    Raises:
        FileNotFoundError: the folder is nowhere to be found (the message says where it looked
            and how to fix it).

    """
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser().resolve()
        if not p.is_dir():
            raise FileNotFoundError(f'{ENV_VAR}={env} is not a folder')
        return p
    tried = _candidates()
    for p in tried:
        if p.is_dir():
            return p.resolve()
    raise FileNotFoundError(
        'example-robot-data robots folder not found (looked in: '
        + ', '.join(str(p) for p in tried)
        + f'); install the example-robot-data wheel (make setup) or set {ENV_VAR}'
    )


def ur5_urdf_path() -> Path:
    """Return the path of ``ur_description/urdf/ur5_robot.urdf``.

    Returns:
        The URDF path.

    Raises:
        FileNotFoundError: the robots folder or the URDF is missing.

    """
    p = robots_dir() / 'ur_description' / 'urdf' / 'ur5_robot.urdf'
    if not p.is_file():
        raise FileNotFoundError(f'UR5 URDF not found at {p}')
    return p


def resolve_package_urls(urdf_text: str, robots: Path | None = None) -> str:
    """Rewrite ``package://example-robot-data/robots/`` URLs to absolute file paths.

    Args:
        urdf_text: the URDF (or any text) with package URLs.
        robots: the robots folder; :func:`robots_dir` when omitted.

    Returns:
        The text with every such URL replaced by ``<robots>/``.

    """
    base = str(robots or robots_dir())
    return urdf_text.replace(PACKAGE_URL, base.rstrip('/') + '/')
