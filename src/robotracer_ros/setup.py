"""ament_python package: perception side of the RoboTracer ROS 2 stack."""

from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = 'robotracer_ros'
HERE = os.path.dirname(os.path.abspath(__file__))
# The workspace-level launch/ and config/ folders are installed into this package's share
# so that `ros2 launch robotracer_ros ur5.launch.py` finds them.
WS = os.path.relpath(os.path.join(HERE, '..', '..'), HERE)


def _files(pattern: str) -> list[str]:
    return sorted(p for p in glob(os.path.join(WS, pattern)) if os.path.isfile(p))


def _tree(folder: str) -> list[tuple[str, list[str]]]:
    """Install every file under WS/folder into share/PACKAGE/folder, keeping sub-folders."""
    out: dict[str, list[str]] = {}
    for path in _files(os.path.join(folder, '**', '*')) + _files(os.path.join(folder, '*')):
        rel = os.path.relpath(os.path.dirname(path), WS)
        out.setdefault(os.path.join('share', PACKAGE, rel), [])
        if path not in out[os.path.join('share', PACKAGE, rel)]:
            out[os.path.join('share', PACKAGE, rel)].append(path)
    return sorted(out.items())


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    package_data={PACKAGE: ['py.typed']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        *_tree('launch'),
        *_tree('config'),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='RoboTracer ROS maintainers',
    maintainer_email='maintainers@robotracer-ros.dev',
    description='Perception for trace-predicting VLMs: backends, parsing, 3D lifting, node, CLI.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'robotracer = robotracer_ros.cli.main:main',
            'perception_node = robotracer_ros.nodes.perception_node:main',
        ],
    },
)
