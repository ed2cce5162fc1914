"""Where the robot descriptions come from: the ``example-robot-data`` wheel (URDF/SRDF/meshes)."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

_ROBOTS = 'cmeel.prefix/share/example-robot-data/robots'


def example_robot_data_dir() -> Path:
    """Return the ``robots`` folder of the installed ``example-robot-data`` wheel.

    Returns:
        Path to ``.../cmeel.prefix/share/example-robot-data/robots``.

    Raises:
        FileNotFoundError: if the ``example-robot-data`` distribution is not installed.
    """
    try:
        dist = metadata.distribution('example-robot-data')
    except metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(
            'the example-robot-data package is not installed (pip install example-robot-data)'
        ) from exc
    root = Path(str(dist.locate_file(_ROBOTS)))
    if not root.is_dir():
        raise FileNotFoundError(f'example-robot-data is installed but {root} does not exist')
    return root
