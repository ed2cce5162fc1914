"""Every package's package.xml declares what its Python code imports (issue 13 item 10).

On a ROS machine ``rosdep install --from-paths src`` reads package.xml alone: an import missing
from it works here (the venv has everything) and fails there. For every ament_python package
under ``src/`` the test collects each import of its code (every ``import`` statement, including
optional ones inside functions and ``try`` blocks: on a full ROS install they are what makes the
optional paths work) and checks it against package.xml:

- a ROS package (rclpy, ``*_msgs``, launch, tf2_ros, pinocchio, ...) or a workspace package
  must be a ``<depend>``/``<exec_depend>`` (a ``<test_depend>`` is enough for imports in
  ``test/`` and in the ``testing`` stand-in modules);
- a Python library with a rosdep key (:data:`ROSDEP_KEYS`) must be declared by that key;
- a library with no rosdep key is pip-only (:data:`PIP_ONLY`, which says where it is
  installed from); a module in none of these tables fails, so a new import gets classified.
"""

from __future__ import annotations

import ast
from pathlib import Path
import sys
import xml.etree.ElementTree as ET

import pytest

SRC = Path(__file__).resolve().parents[2]

#: ROS packages whose Python module name is not a ``*_msgs``/``*_srvs``/``*_interfaces`` name
ROS_MODULES = {
    'rclpy': 'rclpy',
    'launch': 'launch',
    'launch_ros': 'launch_ros',
    'launch_testing': 'launch_testing',
    'ament_index_python': 'ament_index_python',
    'tf2_ros': 'tf2_ros',
    'message_filters': 'message_filters',
    'rosidl_runtime_py': 'rosidl_runtime_py',
    'moveit': 'moveit_py',
    'moveit_configs_utils': 'moveit_configs_utils',
    # released into Jazzy as ROS packages (ros/rosdistro jazzy/distribution.yaml: repositories
    # pinocchio, coal, proxsuite; ros-jazzy-pinocchio, -coal, -proxsuite, Python bindings
    # included), so rosdep installs them from package.xml; the venv pins them from PyPI
    # (requirements/requirements.in: pin, coal, qpsolvers[proxqp]); docker/ takes pinocchio and
    # coal from apt and proxsuite from its venv (requirements/docker.txt)
    'pinocchio': 'pinocchio',
    'coal': 'coal',
    'proxsuite': 'proxsuite',
}
#: Python libraries and their rosdep keys (rosdistro's rosdep/python.yaml)
ROSDEP_KEYS = {
    'numpy': 'python3-numpy',
    'cv2': 'python3-opencv',
    'PIL': 'python3-pil',
    'yaml': 'python3-yaml',
    'scipy': 'python3-scipy',
    'matplotlib': 'python3-matplotlib',
    'pytest': 'python3-pytest',
    'hypothesis': 'python3-hypothesis',
    'packaging': 'python3-packaging',
}
#: libraries without a rosdep key (neither in rosdep/python.yaml nor released into Jazzy): where
#: they are installed from
PIP_ONLY = {
    'pink': 'requirements/requirements.in (pin-pink)',
    'toppra': 'requirements/requirements.in',
    'isal': 'requirements/requirements.in (without it zlib computes the same checksums)',
    'pybase64': 'requirements/requirements.in (without it the stdlib encodes the same text)',
    'ruckig': 'requirements/requirements.in',
    'mujoco': 'requirements/requirements.in',
    'example_robot_data': 'requirements/requirements.in',
    'ur_analytic_ik': 'requirements/requirements.in (ur-analytic-ik)',
    'rtde_control': 'requirements/requirements.in (ur-rtde)',
    'rtde_receive': 'requirements/requirements.in (ur-rtde)',
    'rtde_io': 'requirements/requirements.in (ur-rtde)',
    'mcap': 'requirements/requirements.in',
    'mcap_ros2': 'requirements/requirements.in (mcap-ros2-support)',
    'torch': 'requirements/local-model.in',
    'transformers': 'requirements/local-model.in',
    'tokenizers': 'requirements/local-model.in (with transformers)',
    'accelerate': 'requirements/local-model.in',
    'unitree_sdk2py': 'scripts/setup.sh (unitree-sdk2py-dimos)',
    'cyclonedds': 'scripts/setup.sh (built against the system CycloneDDS)',
}


#: (package, import) left undeclared, and why
EXEMPT = {
    ('robotracer_sim', 'trace_executor'): (
        'robotracer_sim/test/g1/test_joints.py checks that the two G1 joint tables agree; '
        'trace_executor test_depends on robotracer_sim (its end-to-end tests), and colcon orders '
        'packages by test dependencies too: declaring both would be a dependency cycle'
    ),
}


def _ros_name(module: str) -> str | None:
    if module in ROS_MODULES:
        return ROS_MODULES[module]
    if module.endswith(('_msgs', '_srvs', '_interfaces')):
        return module
    return None


def packages() -> list[Path]:
    """The ament_python packages (a package.xml next to a setup.py)."""
    return sorted(p.parent for p in SRC.glob('*/package.xml') if (p.parent / 'setup.py').exists())


def declared(pkg: Path) -> tuple[set[str], set[str]]:
    """(run dependencies, test dependencies) of a package.xml."""
    root = ET.parse(pkg / 'package.xml').getroot()
    run = {e.text.strip() for tag in ('depend', 'exec_depend') for e in root.iter(tag)}
    test = {e.text.strip() for e in root.iter('test_depend')}
    return run, test


def imports(files: list[Path]) -> dict[str, list[str]]:
    """Top-level module → the files importing it (absolute imports only)."""
    out: dict[str, list[str]] = {}
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                top = n.split('.')[0]
                if top not in sys.stdlib_module_names and top != '__future__':
                    out.setdefault(top, []).append(str(f.relative_to(SRC)))
    return out


def required_keys(module: str, workspace: set[str]) -> str | None:
    """The package.xml key a module needs; None for pip-only; KeyError when unclassified."""
    if module in workspace:
        return module
    ros = _ros_name(module)
    if ros is not None:
        return ros
    if module in ROSDEP_KEYS:
        return ROSDEP_KEYS[module]
    if module in PIP_ONLY:
        return None
    raise KeyError(module)


@pytest.mark.parametrize('pkg', packages(), ids=lambda p: p.name)
def test_package_xml_declares_every_import(pkg: Path) -> None:
    workspace = {p.parent.name for p in SRC.glob('*/package.xml')}
    run, test = declared(pkg)
    code = [f for f in (pkg / pkg.name).rglob('*.py') if 'testing' not in f.parts]
    for_tests = [f for f in (pkg / pkg.name).rglob('*.py') if 'testing' in f.parts]
    for_tests += list((pkg / 'test').rglob('*.py'))
    problems = []
    for files, allowed, where in (
        (code, run, '<depend>/<exec_depend>'),
        (for_tests, run | test, 'a <test_depend> (or run dependency)'),
    ):
        for module, users in sorted(imports(files).items()):
            if module == pkg.name or (pkg.name, module) in EXEMPT:
                continue
            try:
                key = required_keys(module, workspace)
            except KeyError:
                problems.append(
                    f'{module} (imported by {users[0]}) is not classified: add it to ROS_MODULES, '
                    'ROSDEP_KEYS or PIP_ONLY in this test'
                )
                continue
            if key is not None and key not in allowed:
                problems.append(f'{key} is missing: {where} (imported by {users[0]})')
    assert not problems, f'{pkg.name}/package.xml:\n  ' + '\n  '.join(sorted(set(problems)))


def test_the_classification_tables_do_not_overlap() -> None:
    assert not set(ROSDEP_KEYS) & set(PIP_ONLY)
    assert all(_ros_name(m) is None for m in list(ROSDEP_KEYS) + list(PIP_ONLY))
