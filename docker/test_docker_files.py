"""Static checks of docker/: the images cannot be built on these machines (no Docker daemon).

What runs here instead: the Dockerfiles, .dockerignore files and compose file are parsed with
docker/dockercheck.py and checked against the repository (every COPY source exists, the rosdep
layer copies exactly src/*/package.xml, every launched file and launch argument is valid for
our bringup description, pins equal requirements/constraints.txt, addresses and ports agree),
the entrypoint script is run for real with stand-in setup files, and every checker is shown to
reject a broken example.
"""

# Test functions and fixtures carry no docstrings, as under the repo's `**/test/**` ruff rule.
# ruff: noqa: D103

from __future__ import annotations

from collections.abc import Mapping
import importlib.metadata
import importlib.util
import os
from pathlib import Path
import re
import subprocess
import sys
from types import ModuleType
from typing import Any

from packaging.requirements import Requirement
from packaging.version import Version
import pytest

from robotracer_ros.bringup import BRINGUPS

DOCKER = Path(__file__).resolve().parent
ROOT = DOCKER.parent


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


dc = _load('robotracer_dockercheck', DOCKER / 'dockercheck.py')
image_check = _load('robotracer_image_check', DOCKER / 'image_check.py')

DISTRO = 'jazzy'

# ros-jazzy-* Debian packages that exist in the ROS 2 Jazzy apt repository (Ubuntu 24.04).
# Names confirmed while writing the Dockerfile, from: docs.ros.org/en/jazzy (package pages of
# ur, foxglove_bridge, coal, kinematics_interface_pinocchio -> pinocchio), MoveIt's and
# Foxglove's install docs (`apt install ros-$ROS_DISTRO-moveit`, `...-foxglove-bridge`), the
# RoboStack/nix-ros-overlay mirrors of the Jazzy release (ros-jazzy-launch-testing-ros 0.26,
# ros-jazzy-cyclonedds 0.10.5, ros-jazzy-rmw-cyclonedds-cpp 2.2, ros-jazzy-pinocchio 3.7,
# ros-jazzy-coal 3.0, ros-jazzy-realsense2-camera 4.56) and Dockerfiles that install them.
# Add a name here only after checking that it exists for Jazzy.
KNOWN_JAZZY_PACKAGES = frozenset(
    {
        'ros-jazzy-moveit',
        'ros-jazzy-ur',
        'ros-jazzy-ur-robot-driver',
        'ros-jazzy-ur-moveit-config',
        'ros-jazzy-foxglove-bridge',
        'ros-jazzy-rviz2',
        'ros-jazzy-tf2-ros',
        'ros-jazzy-launch-testing',
        'ros-jazzy-launch-testing-ros',
        'ros-jazzy-pinocchio',
        'ros-jazzy-coal',
        'ros-jazzy-proxsuite',
        'ros-jazzy-cyclonedds',
        'ros-jazzy-rmw-cyclonedds-cpp',
        'ros-jazzy-realsense2-camera',
        'ros-jazzy-ros-base',
    }
)

# What the images must contain for the product (issue 8, item 5).
REQUIRED_ROS_PACKAGES = {
    'ros-jazzy-moveit',
    'ros-jazzy-ur',
    'ros-jazzy-foxglove-bridge',
    'ros-jazzy-rviz2',
    'ros-jazzy-tf2-ros',
    'ros-jazzy-launch-testing-ros',
}

# ROS packages launched or run by the compose file / the bringup that do not live in src/, and
# the apt package of the Dockerfile that provides each.
APT_PROVIDES = {
    'ur_robot_driver': 'ros-jazzy-ur',
    'realsense2_camera': 'ros-jazzy-realsense2-camera',
    'foxglove_bridge': 'ros-jazzy-foxglove-bridge',
    'rviz2': 'ros-jazzy-rviz2',
    'ur_moveit_config': 'ros-jazzy-ur',  # the ur meta-package pulls the MoveIt configuration
}

# Arguments of ur_robot_driver's ur_control.launch.py that the compose file may pass
# (UniversalRobots/Universal_Robots_ROS2_Driver, ur_robot_driver/launch/ur_control.launch.py).
UR_CONTROL_ARGS = {
    'ur_type',
    'robot_ip',
    'reverse_ip',
    'headless_mode',
    'launch_rviz',
    'initial_joint_controller',
    'use_mock_hardware',
    'tf_prefix',
}
UR_TYPES = {'ur3', 'ur3e', 'ur5', 'ur5e', 'ur10', 'ur10e', 'ur16e', 'ur20', 'ur30'}
# realsense-ros 4.x rs_launch.py arguments used here; topics land in /<namespace>/<name>/...
REALSENSE_ARGS = {'camera_namespace', 'camera_name', 'align_depth.enable'}

# Values for the variables that the real-robot services require (documentation addresses:
# TEST-NET-1 and a typical interface name; nothing is contacted).
REQUIRED_SAMPLES = {'ROBOT_IP': '192.0.2.10', 'G1_IFACE': 'eth0'}

# Non-PyPI providers of requirements of requirements/docker.txt, with the version the image
# gets (Ubuntu 24.04 python3-numpy; ROS Jazzy's pinocchio is 3.x, which registers no `pin`
# distribution, so pip-side requirements on `pin` are satisfied by apt).
APT_PYTHON = {'numpy': '1.26.4', 'pin': '3.7.0'}
IMAGE_PYTHON = {'python_version': '3.12', 'python_full_version': '3.12.3'}


@pytest.fixture(scope='module')
def workspace() -> Any:
    return dc.parse_dockerfile((DOCKER / 'Dockerfile').read_text())


@pytest.fixture(scope='module')
def model_server() -> Any:
    return dc.parse_dockerfile((DOCKER / 'model-server.Dockerfile').read_text())


@pytest.fixture(scope='module')
def compose() -> dict[str, Any]:
    return dc.load_compose((DOCKER / 'compose.yaml').read_text())


@pytest.fixture(scope='module')
def readme() -> str:
    return (DOCKER / 'README.md').read_text()


def _package_xmls() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in ROOT.glob('src/*/package.xml'))


def _ignore_patterns(dockerfile: Path) -> list[str]:
    return dc.parse_dockerignore(
        dockerfile.with_name(dockerfile.name + '.dockerignore').read_text()
    )


# --------------------------------------------------------------------------------------------
# docker/Dockerfile


def test_ros_distro_arg_is_declared_before_the_first_from(workspace: Any) -> None:
    assert dc.check_global_arg(workspace, 'ROS_DISTRO', DISTRO) == []
    assert workspace.stages[0].base == 'ros:${ROS_DISTRO}-ros-base'


def test_workspace_image_is_deps_then_build_then_runtime(workspace: Any) -> None:
    assert dc.check_stages(workspace) == []
    assert [(s.name, s.base) for s in workspace.stages] == [
        ('deps', 'ros:${ROS_DISTRO}-ros-base'),
        ('build', 'deps'),
        ('local-model', 'deps'),
        ('runtime', 'deps'),  # last: the default target
    ]
    # the runtime stage takes only the install tree from the build stage, not sources or build/
    from_build = [
        i.args for i in workspace.stage('runtime').instructions if i.flags.get('from') == 'build'
    ]
    assert from_build == [('/ws/install', '/ws/install')]


def test_local_model_target_installs_the_extra_and_keeps_apt_numpy(workspace: Any) -> None:
    stage = workspace.stage('local-model')
    runs = ' '.join(dc.run_text(i) for i in stage.instructions if i.keyword == 'RUN')
    # the same requirement file and pins as `make setup EXTRAS=local-model`
    assert '-r /tmp/req/local-model.in' in runs and 'image-constraints.txt' in runs
    # apt's numpy/PyYAML are pinned as installed and removed from the constraints file's pins
    assert "grep -viE '^(numpy|pyyaml)=='" in runs and 'apt-pins.txt' in runs
    assert 'torchvision' not in runs and '--no-cache-dir' in runs
    from_build = [i.args for i in stage.instructions if i.flags.get('from') == 'build']
    assert from_build == [('/ws/install', '/ws/install')]
    checks = [i for i in stage.instructions if i.keyword == 'RUN' and 'image_check' in str(i.args)]
    assert checks and '--local-model' in str(checks[-1].args)
    assert '--require-system-numpy' in str(checks[-1].args)
    local = (ROOT / 'requirements' / 'local-model.in').read_text()
    assert {'torch', 'transformers', 'accelerate'} <= set(dc.parse_requirements(local))


def test_rosdep_layer_copies_exactly_the_package_xml_files_of_src(workspace: Any) -> None:
    package_xmls = _package_xmls()
    assert len(package_xmls) >= 4  # robotracer_msgs, robotracer_ros, robotracer_sim, executor
    assert dc.check_rosdep_layer(workspace, 'deps', package_xmls) == []


@pytest.mark.parametrize('name', ['Dockerfile', 'model-server.Dockerfile'])
def test_every_copy_source_exists_and_reaches_the_builder(name: str) -> None:
    path = DOCKER / name
    df = dc.parse_dockerfile(path.read_text())
    context = ROOT if name == 'Dockerfile' else DOCKER  # as docker/compose.yaml builds them
    assert dc.check_copy_sources(df, context, _ignore_patterns(path)) == []


def test_workspace_build_context_leaves_local_outputs_out() -> None:
    patterns = _ignore_patterns(DOCKER / 'Dockerfile')
    for local in (
        '.venv/bin/python',
        'build/robotracer_msgs',
        'install/setup.bash',
        'log/x',
        'out/demo/summary.json',
        '.git/HEAD',
        'src/robotracer_ros/x/__pycache__/a.pyc',
    ):
        assert dc.is_ignored(local, patterns), local
    for needed in (
        'src/robotracer_ros/setup.py',
        'launch/ur5.launch.py',
        'config',
        'requirements/docker.txt',
        'docker/entrypoint.sh',
    ):
        assert not dc.is_ignored(needed, patterns), needed


@pytest.mark.parametrize('name', ['Dockerfile', 'model-server.Dockerfile'])
def test_apt_installs_update_skip_recommends_and_clean_up_in_the_same_run(name: str) -> None:
    df = dc.parse_dockerfile((DOCKER / name).read_text())
    assert dc.check_apt_hygiene(df) == []


def test_every_ros_apt_package_is_a_known_jazzy_package(workspace: Any) -> None:
    named = dc.ros_apt_packages(workspace, DISTRO)
    assert named - KNOWN_JAZZY_PACKAGES == set()
    assert REQUIRED_ROS_PACKAGES - named == set()


def test_mujoco_renders_offscreen_with_egl_in_the_image(workspace: Any) -> None:
    runs = ' '.join(
        dc.run_text(i) for i in workspace.stage('deps').instructions if i.keyword == 'RUN'
    )
    for lib in ('libegl1', 'libegl-mesa0', 'libgl1', 'libgl1-mesa-dri'):
        assert re.search(rf'\s{re.escape(lib)}\s', runs), lib
    env = ' '.join(i.value for i in workspace.stage('deps').instructions if i.keyword == 'ENV')
    assert 'MUJOCO_GL=egl' in env


def test_python_packages_go_to_a_venv_that_sees_the_apt_packages(workspace: Any) -> None:
    deps = workspace.stage('deps').instructions
    copies = [i.args for i in deps if i.keyword == 'COPY']
    assert ('requirements/docker.txt', '/tmp/requirements-docker.txt') in copies
    runs = [dc.run_text(i) for i in deps if i.keyword == 'RUN']
    pip_run = next(r for r in runs if 'pip install' in r)
    assert 'python3 -m venv --system-site-packages /opt/venv' in pip_run
    # --no-deps everywhere: the file is the complete list, nothing may pull numpy 2 in
    for call in re.split(r'&&', pip_run):
        if 'pip install' in call:
            assert '--no-deps' in call and '--no-cache-dir' in call, call
    assert '-r /tmp/requirements-docker.txt' in pip_run
    assert not any('--break-system-packages' in r for r in runs)
    # the nodes' shebangs point at the venv because colcon runs with its interpreter
    build_runs = [
        dc.run_text(i) for i in workspace.stage('build').instructions if i.keyword == 'RUN'
    ]
    assert any(
        '/opt/venv/bin/python /usr/bin/colcon build --base-paths src' in r for r in build_runs
    )


def test_g1_dds_versions_equal_those_of_setup_cyclonedds_script(workspace: Any) -> None:
    script = (ROOT / 'scripts' / 'setup_cyclonedds.sh').read_text()
    pins = dict(re.findall(r'^([A-Z_]+_VERSION)=(\S+)$', script, flags=re.MULTILINE))
    args = workspace.stage('deps').arg_defaults()
    for name in ('CYCLONEDDS_VERSION', 'UNITREE_SDK_VERSION', 'RICH_CLICK_VERSION'):
        assert args.get(name) == pins[name], name
    deps_runs = ' '.join(
        dc.run_text(i) for i in workspace.stage('deps').instructions if i.keyword == 'RUN'
    )
    assert 'CYCLONEDDS_HOME="/opt/ros/${ROS_DISTRO}"' in deps_runs
    assert '"ros-${ROS_DISTRO}-cyclonedds"' in deps_runs


def test_docker_requirements_are_pinned_like_the_constraints_file() -> None:
    requirements = dc.parse_requirements((ROOT / 'requirements' / 'docker.txt').read_text())
    # the image's Python (3.12) picks its lines of the per-Python constraints file
    constraints = dc.parse_requirements(
        (ROOT / 'requirements' / 'constraints.txt').read_text(), IMAGE_PYTHON
    )
    assert len(requirements) >= 20
    assert dc.check_pins(requirements, constraints) == []
    # apt provides these (built against the numpy every /opt/ros message module uses)
    assert {'numpy', 'pin', 'opencv-python-headless', 'pyyaml'} & set(requirements) == set()


def _image_requirement_problems(requirements: Mapping[str, str]) -> list[str]:
    """Dependencies that neither requirements/docker.txt nor apt provide.

    Reads the metadata of the copies installed here and evaluates markers for the image's
    Python 3.12.
    """
    env = {**IMAGE_PYTHON, 'extra': ''}
    problems = []
    for name, spec in sorted(requirements.items()):
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f'{name} is not installed here (run make setup)')
            continue
        if spec != f'=={installed}':
            problems.append(f'{name}{spec} but {installed} is installed here')
            continue
        for line in importlib.metadata.requires(name) or []:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            dep = dc.canonical(req.name)
            if dep in APT_PYTHON:
                if not req.specifier.contains(Version(APT_PYTHON[dep]), prereleases=True):
                    problems.append(f'{name} needs {req}, apt gives {dep} {APT_PYTHON[dep]}')
            elif dep not in requirements:
                problems.append(f'{name} needs {req}, which requirements/docker.txt lacks')
    return problems


def test_docker_requirements_are_complete_and_accept_ubuntus_numpy() -> None:
    requirements = dc.parse_requirements((ROOT / 'requirements' / 'docker.txt').read_text())
    assert _image_requirement_problems(requirements) == []


def test_requirement_check_rejects_a_numpy_2_package_and_a_missing_dependency() -> None:
    # PyPI's pin 4.1 needs cmeel-boost 1.90, which needs numpy>=2: not usable in the image
    broken = {'cmeel-boost': '==' + importlib.metadata.version('cmeel-boost')}
    problems = _image_requirement_problems(broken)
    assert any('numpy>=2' in p.replace(' ', '') for p in problems), problems
    assert any('toppra' in p for p in _image_requirement_problems({'toppra': '==0.6.10'}))


def test_image_check_names_modules_that_exist() -> None:
    ros_install_only = {'launch', 'launch_ros', 'tf2_ros'}  # not on PyPI (see DESIGN.md)
    optional_here = {'cyclonedds.domain', 'unitree_sdk2py.core.channel'}  # setup_cyclonedds.sh
    first_party = ('robotracer_msgs', 'robotracer_ros', 'trace_executor', 'robotracer_sim')
    names = [m for m, _ in image_check.MODULES]
    for name in names:
        if name.startswith(first_party) and not name.startswith('robotracer_msgs'):
            package = name.split('.')[0]
            path = ROOT / 'src' / package / Path(*name.split('.')).with_suffix('.py')
            assert path.is_file(), f'{name}: {path} does not exist'
    here = [
        (m, why)
        for m, why in image_check.MODULES
        if m not in ros_install_only
        and not (m in optional_here and importlib.util.find_spec(m.split('.')[0]) is None)
    ]
    assert image_check.check_modules(here) == []
    assert image_check.check_modules([('no_such_module_xyz', 'test')]) != []


def test_image_check_rejects_a_numpy_that_is_not_ubuntus() -> None:
    import numpy

    # here numpy is the dev venv's 2.x from PyPI: exactly what must never happen in the image
    problems = image_check.check_system_numpy()
    assert any(numpy.__file__ in p for p in problems), problems
    assert any('1.x' in p for p in problems), problems


def test_default_command_is_the_headless_ur5_simulator_bringup(workspace: Any) -> None:
    runtime = workspace.stage('runtime')
    cmd = [i for i in runtime.instructions if i.keyword == 'CMD'][-1]
    assert cmd.exec_form
    assert list(cmd.args) == ['ros2', 'launch', 'robotracer_ros', 'ur5.launch.py', 'sim:=true']
    package, launch_file, args = dc.launch_invocation(list(cmd.args))
    values = _resolve_bringup(package, launch_file, args)
    assert values['sim'] == 'true' and values['rviz'] == 'false'  # headless


def test_entrypoint_is_copied_executable_and_sources_ros_then_the_workspace(
    workspace: Any,
) -> None:
    runtime = workspace.stage('runtime')
    entry = [i for i in runtime.instructions if i.keyword == 'ENTRYPOINT'][-1]
    assert entry.exec_form and len(entry.args) == 1
    copies = {i.args[-1]: i.args[0] for i in runtime.instructions if i.keyword == 'COPY'}
    script = ROOT / copies[entry.args[0]]
    assert script == DOCKER / 'entrypoint.sh'
    assert os.access(script, os.X_OK), f'{script} is not executable (chmod +x)'
    assert (
        dc.check_entrypoint(
            script.read_text(),
            ['/opt/ros/${ROS_DISTRO:-jazzy}/setup.bash', '/ws/install/setup.bash'],
        )
        == []
    )


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _run_entrypoint(tmp_path: Path, env: Mapping[str, str], *command: str) -> Any:
    base = {'PATH': os.environ['PATH'], 'HOME': str(tmp_path)}
    return subprocess.run(
        [str(DOCKER / 'entrypoint.sh'), *command],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_entrypoint_sources_both_setups_then_execs_the_command(tmp_path: Path) -> None:
    ros = _write(tmp_path / 'ros.bash', 'export SEEN_ROS=ros\n')
    ws = _write(tmp_path / 'ws.bash', 'export SEEN_WS="$SEEN_ROS+ws"\n')
    env = {'ROBOTRACER_ROS_SETUP': str(ros), 'ROBOTRACER_WS_SETUP': str(ws)}
    done = _run_entrypoint(tmp_path, env, 'bash', '-c', 'echo "$SEEN_WS $$ $PPID"; exit 7')
    assert done.returncode == 7, done.stderr  # the command's own exit status
    seen, _pid, parent = done.stdout.split()
    assert seen == 'ros+ws'  # workspace sourced after ROS, in the same shell
    # exec: the command replaced the entrypoint, so its parent is this test process
    assert int(parent) == os.getpid()


def test_entrypoint_refuses_a_missing_workspace_without_running_the_command(
    tmp_path: Path,
) -> None:
    ros = _write(tmp_path / 'ros.bash', '')
    marker = tmp_path / 'ran'
    env = {'ROBOTRACER_ROS_SETUP': str(ros), 'ROBOTRACER_WS_SETUP': str(tmp_path / 'none.bash')}
    done = _run_entrypoint(tmp_path, env, 'touch', str(marker))
    assert done.returncode == 1
    assert 'none.bash not found' in done.stderr
    assert not marker.exists()


def test_entrypoint_refuses_an_unset_required_variable(tmp_path: Path) -> None:
    ros = _write(tmp_path / 'ros.bash', '')
    ws = _write(tmp_path / 'ws.bash', '')
    marker = tmp_path / 'ran'
    env = {
        'ROBOTRACER_ROS_SETUP': str(ros),
        'ROBOTRACER_WS_SETUP': str(ws),
        'ROBOTRACER_REQUIRED_ENV': 'ROBOT_IP',
        'ROBOT_IP': '',
    }
    done = _run_entrypoint(tmp_path, env, 'touch', str(marker))
    assert done.returncode == 2
    assert 'ROBOT_IP is required' in done.stderr
    assert not marker.exists()
    done = _run_entrypoint(tmp_path, {**env, 'ROBOT_IP': '192.0.2.10'}, 'touch', str(marker))
    assert done.returncode == 0, done.stderr
    assert marker.exists()


# --------------------------------------------------------------------------------------------
# docker/model-server.Dockerfile


def test_model_server_pins_a_vllm_release_that_serves_qwen3_vl(model_server: Any) -> None:
    image = model_server.global_args()['VLLM_IMAGE']
    m = re.fullmatch(r'vllm/vllm-openai:v(\d+\.\d+\.\d+)', image or '')
    assert m, f'VLLM_IMAGE={image!r} is not a pinned vllm/vllm-openai:vX.Y.Z tag'
    assert Version(m.group(1)) >= Version('0.11.0')  # first vLLM release with Qwen3-VL
    assert [s.name for s in model_server.stages] == ['robotracer', 'vllm']  # vllm is default
    assert all(s.base == '${VLLM_IMAGE}' for s in model_server.stages)
    vllm = model_server.stage('vllm')
    assert vllm.arg_defaults()['VLLM_MODEL'] == 'Qwen/Qwen3-VL-8B-Instruct'
    entry = ' '.join([i for i in vllm.instructions if i.keyword == 'ENTRYPOINT'][-1].args)
    for flag in (
        'vllm serve "$VLLM_MODEL"',
        '--max-model-len "$MAX_MODEL_LEN"',
        '--port "$PORT"',
        '--served-model-name "$SERVED_MODEL_NAME"',
        '"$@"',
    ):
        assert flag in entry, flag
    assert _env(vllm)['PORT'] == '8000'
    assert ('8000',) in [i.args for i in vllm.instructions if i.keyword == 'EXPOSE']


def test_robotracer_slot_documents_the_query_api_and_does_not_pretend(model_server: Any) -> None:
    text = (DOCKER / 'model-server.Dockerfile').read_text()
    assert 'POST <url>/query' in text
    slot = model_server.stage('robotracer')
    cmd = ' '.join([i for i in slot.instructions if i.keyword == 'CMD'][-1].args)
    assert 'not public yet' in cmd and 'exit 64' in cmd
    assert _env(slot)['PORT'] == '25547'


def _env(stage: Any) -> dict[str, str]:
    out = {}
    for ins in stage.instructions:
        if ins.keyword == 'ENV':
            for word in ins.args:
                key, _, value = word.partition('=')
                out[key] = dc._unquote(value)
    return out


# --------------------------------------------------------------------------------------------
# docker/compose.yaml


def _resolve_bringup(package: str, launch_file: str, args: Mapping[str, str]) -> dict[str, str]:
    """Validate a `ros2 launch robotracer_ros <file> ...` against the bringup description."""
    assert package == 'robotracer_ros', package
    assert (ROOT / 'launch' / launch_file).is_file(), f'launch/{launch_file} does not exist'
    robot = launch_file.removesuffix('.launch.py')
    return BRINGUPS[robot].resolve(dict(args))


def _launches(compose: Mapping[str, Any], env: Mapping[str, str]) -> list[tuple[str, Any]]:
    out = []
    for name, svc in compose['services'].items():
        inv = dc.launch_invocation(dc.command_words(svc, env))
        if inv is not None:
            out.append((name, inv))
    return out


def test_compose_has_the_profiles_and_every_service_is_in_one(compose: Any) -> None:
    profiles = dc.service_profiles(compose)
    assert {'sim', 'ur5', 'ur5-ursim', 'g1'} <= set(profiles)
    assert '' not in profiles, f'services without a profile start on every `up`: {profiles[""]}'
    assert {'ursim', 'ursim-rtde'} <= set(profiles['ur5-ursim'])
    assert {'ursim', 'ursim-driver', 'ursim-driver-bringup'} <= set(profiles['ur5-ursim-driver'])
    assert {'ur-driver', 'ur5', 'model-server'} <= set(profiles['ur5'])
    assert {'g1', 'model-server'} <= set(profiles['g1'])


def test_compose_builds_point_at_existing_dockerfiles_and_stages(compose: Any) -> None:
    assert dc.check_builds(compose, DOCKER) == []
    assert compose['services']['sim']['build']['dockerfile'] == 'docker/Dockerfile'


def test_every_launch_in_compose_is_a_valid_bringup_or_an_installed_package(
    compose: Any, workspace: Any
) -> None:
    installed = dc.ros_apt_packages(workspace, DISTRO)
    packages_in_src = {p.parent.name for p in ROOT.glob('src/*/package.xml')}
    launches = _launches(compose, REQUIRED_SAMPLES)
    assert len(launches) >= 8
    for service, (package, launch_file, args) in launches:
        if package == 'robotracer_ros':
            values = _resolve_bringup(package, launch_file, args)
            robot = launch_file.removesuffix('.launch.py')
            for node in BRINGUPS[robot].nodes(values):
                assert node.package in packages_in_src or (
                    APT_PROVIDES.get(node.package) in installed
                ), f'{service}: node package {node.package} is neither in src/ nor installed'
            for inc in BRINGUPS[robot].includes(values):  # e.g. move_group for moveit
                assert APT_PROVIDES.get(inc.package) in installed, (
                    f'{service}: {inc.package} ({inc.launch_file}) is not installed'
                )
        elif package == 'ur_robot_driver':
            assert launch_file == 'ur_control.launch.py'
            assert set(args) <= UR_CONTROL_ARGS, f'{service}: {set(args) - UR_CONTROL_ARGS}'
            assert args['ur_type'] in UR_TYPES and args['launch_rviz'] == 'false'
        elif package == 'realsense2_camera':
            assert set(args) <= REALSENSE_ARGS
            topic_ns = f'/{args["camera_namespace"]}/{args["camera_name"]}'
            default_ns = {a.name: a.default for a in BRINGUPS['ur5'].args}['camera_namespace']
            assert topic_ns == default_ns, f'camera publishes under {topic_ns}, not {default_ns}'
        else:
            pytest.fail(f'{service} launches {package}, which no check knows')
        if package in APT_PROVIDES:
            assert APT_PROVIDES[package] in installed, f'{package} is not installed'


def test_real_robot_services_fail_clearly_without_their_required_variables(
    compose: Any,
) -> None:
    required_by = {'ur-driver': 'ROBOT_IP', 'ur5': 'ROBOT_IP', 'g1': 'G1_IFACE'}
    for service, var in required_by.items():
        svc = compose['services'][service]
        assert svc['environment']['ROBOTRACER_REQUIRED_ENV'] == var
        assert svc['environment'][var] == f'${{{var}:-}}'  # passed into the container
    # without it, our bringup itself also refuses (robot_ip / network_interface required)
    for service in ('ur5', 'g1'):
        inv = dc.launch_invocation(dc.command_words(compose['services'][service], {}))
        with pytest.raises(ValueError, match='required'):
            _resolve_bringup(*inv)


def test_compose_uses_no_required_interpolation(compose: Any) -> None:
    # Compose interpolates the whole file before it selects a profile's services: a
    # ${ROBOT_IP:?...} would make `--profile sim up` fail for a user without a robot.
    assert [v.name for v in dc.compose_variables(compose).values() if v.required] == []


def test_every_compose_variable_is_documented_in_the_readme(compose: Any, readme: str) -> None:
    variables = list(dc.compose_variables(compose).values())
    assert {'ROBOT_IP', 'G1_IFACE', 'ROS_DOMAIN_ID', 'SERVED_MODEL_NAME'} <= {
        v.name for v in variables
    }
    required = [
        dc.ComposeVariable(svc['environment']['ROBOTRACER_REQUIRED_ENV'], True, None)
        for svc in compose['services'].values()
        if 'ROBOTRACER_REQUIRED_ENV' in (svc.get('environment') or {})
    ]
    assert dc.undocumented(variables + required, readme) == []
    for var in variables:
        if var.default:
            assert var.default in readme, f'{var.name}: default {var.default!r} not in README'


def test_real_robots_and_their_drivers_use_the_host_network(compose: Any) -> None:
    for service in ('ur-driver', 'ur5', 'g1', 'camera'):
        assert compose['services'][service].get('network_mode') == 'host', service


def test_ursim_addresses_are_consistent(compose: Any) -> None:
    assert dc.check_fixed_addresses(compose, 'ursim_net', 'ursim', {}) == []
    ursim = compose['services']['ursim']
    assert 'ursim_e-series' in ursim['image'] and ursim['environment']['ROBOT_MODEL'] == 'UR5'
    # every service of the URSim profiles is on the URSim network
    for profile in ('ur5-ursim', 'ur5-ursim-driver'):
        for name in dc.service_profiles(compose)[profile]:
            assert 'ursim_net' in dc.service_ipv4(compose['services'][name]), name
    rtde = dc.launch_invocation(dc.command_words(compose['services']['ursim-rtde'], {}))
    assert rtde[2]['robot_backend'] == 'rtde'
    driver = dc.launch_invocation(
        dc.command_words(compose['services']['ursim-driver-bringup'], {})
    )
    assert driver[2]['robot_backend'] == 'ros2_control'


def test_host_ports_are_unique_within_each_profile(compose: Any) -> None:
    assert dc.check_host_ports(compose, REQUIRED_SAMPLES) == []


def test_model_server_port_name_and_gpu_agree_with_the_bringups(
    compose: Any, model_server: Any
) -> None:
    svc = compose['services']['model-server']
    assert svc['build']['target'] == 'vllm'
    port = _env(model_server.stage('vllm'))['PORT']
    [(host_port, container_port)] = dc.published_ports(svc, {})
    assert container_port == port
    devices = svc['deploy']['resources']['reservations']['devices']
    assert devices[0]['driver'] == 'nvidia' and 'gpu' in devices[0]['capabilities']
    vllm_model = model_server.stage('vllm').arg_defaults()['VLLM_MODEL']
    for name in ('ur5', 'g1'):
        inv = dc.launch_invocation(dc.command_words(compose['services'][name], REQUIRED_SAMPLES))
        args = inv[2]
        # these services use the host network: the server is on the host's published port
        assert args['model_url'] == f'http://127.0.0.1:{host_port}/v1'
        assert args['model_backend'] == 'openai'
        assert args['model_name'] == vllm_model  # SERVED_MODEL_NAME defaults to the model id
    slot = compose['services']['robotracer-server']
    assert dc.published_ports(slot, {}) == [
        ('25547', _env(model_server.stage('robotracer'))['PORT'])
    ]


def test_foxglove_port_matches_the_bringups_foxglove_bridge(compose: Any) -> None:
    values = BRINGUPS['ur5'].resolve({'foxglove': 'true'})
    [bridge] = [n for n in BRINGUPS['ur5'].nodes(values) if n.package == 'foxglove_bridge']
    bridge_port = str(bridge.parameters['port'])
    for name in ('sim', 'sim-g1', 'ursim-rtde', 'ursim-driver-bringup'):
        ports = dc.published_ports(compose['services'][name], {})
        assert (bridge_port, bridge_port) in ports or (bridge_port in [c for _, c in ports]), (
            f'{name} does not publish foxglove_bridge port {bridge_port}'
        )


def test_readme_says_what_was_and_was_not_built(readme: str) -> None:
    assert 'not built' in readme.lower() or 'never built' in readme.lower()
    assert 'no docker daemon' in readme.lower()
    for profile in ('sim', 'ur5', 'ur5-ursim', 'ur5-ursim-driver', 'g1'):
        assert f'docker compose -f docker/compose.yaml --profile {profile} up' in readme, profile


# --------------------------------------------------------------------------------------------
# The checkers reject broken files (so that the checks above can fail)


GOOD_HEAD = 'ARG ROS_DISTRO=jazzy\nFROM ros:${ROS_DISTRO}-ros-base AS deps\n'


def test_checker_rejects_apt_without_cleanup_recommends_or_update() -> None:
    no_cleanup = dc.parse_dockerfile(
        GOOD_HEAD + 'RUN apt-get update && apt-get install -y --no-install-recommends curl\n'
    )
    assert any('/var/lib/apt/lists' in p for p in dc.check_apt_hygiene(no_cleanup))
    recommends = dc.parse_dockerfile(
        GOOD_HEAD + 'RUN apt-get update \\\n  && apt-get install -y curl \\\n'
        '  && rm -rf /var/lib/apt/lists/*\n'
    )
    assert any('no-install-recommends' in p for p in dc.check_apt_hygiene(recommends))
    no_update = dc.parse_dockerfile(
        GOOD_HEAD + 'RUN apt-get install -y --no-install-recommends curl '
        '&& rm -rf /var/lib/apt/lists/*\n'
    )
    assert any('update' in p for p in dc.check_apt_hygiene(no_update))
    cleanup_elsewhere = dc.parse_dockerfile(
        GOOD_HEAD + 'RUN apt-get update && apt-get install -y --no-install-recommends curl\n'
        'RUN rm -rf /var/lib/apt/lists/*\n'
    )
    assert len(dc.check_apt_hygiene(cleanup_elsewhere)) == 1
    rosdep = dc.parse_dockerfile(
        GOOD_HEAD + 'RUN apt-get update && rosdep install --from-paths src --ignore-src -y\n'
    )
    assert any('/var/lib/apt/lists' in p for p in dc.check_apt_hygiene(rosdep))


def test_checker_rejects_arg_after_from_and_single_stage() -> None:
    late = dc.parse_dockerfile('FROM ros:jazzy-ros-base AS deps\nARG ROS_DISTRO=jazzy\n')
    assert dc.check_global_arg(late, 'ROS_DISTRO', 'jazzy') != []
    wrong = dc.parse_dockerfile('ARG ROS_DISTRO=humble\nFROM ros:${ROS_DISTRO}-ros-base AS a\n')
    assert dc.check_global_arg(wrong, 'ROS_DISTRO', 'jazzy') != []
    assert dc.check_stages(late) != []
    bad_ref = dc.parse_dockerfile(
        GOOD_HEAD + 'FROM deps AS runtime\nCOPY --from=biuld /ws/install /ws/install\n'
    )
    assert any('biuld' in p for p in dc.check_stages(bad_ref))
    with pytest.raises(ValueError, match='before the first FROM'):
        dc.parse_dockerfile('RUN true\nFROM scratch AS a\n')


def test_checker_rejects_a_rosdep_layer_that_forgets_a_package_or_copies_code() -> None:
    xmls = _package_xmls()
    copies = ''.join(f'COPY {p} {p}\n' for p in xmls[:-1])
    rosdep = (
        'RUN apt-get update && rosdep install --from-paths src --ignore-src -y '
        '&& rm -rf /var/lib/apt/lists/*\n'
    )
    forgot = dc.parse_dockerfile(GOOD_HEAD + copies + rosdep)
    assert dc.check_rosdep_layer(forgot, 'deps', xmls) == [
        f'{xmls[-1]} is not copied into the rosdep layer'
    ]
    code_first = dc.parse_dockerfile(
        GOOD_HEAD + ''.join(f'COPY {p} {p}\n' for p in xmls) + 'COPY src src\n' + rosdep
    )
    assert any(
        're-runs the rosdep layer' in p for p in dc.check_rosdep_layer(code_first, 'deps', xmls)
    )
    assert dc.check_rosdep_layer(dc.parse_dockerfile(GOOD_HEAD), 'deps', xmls) != []


def test_checker_rejects_missing_and_ignored_copy_sources() -> None:
    df = dc.parse_dockerfile(
        GOOD_HEAD + 'COPY docker/no-such-file /x\nCOPY .venv/bin/python /y\nCOPY . /ws\n'
    )
    problems = dc.check_copy_sources(df, ROOT, ['.venv'])
    assert len(problems) == 2
    assert 'does not exist' in problems[0] and 'excluded by .dockerignore' in problems[1]
    assert dc.is_ignored('a/b/__pycache__/c.pyc', ['**/__pycache__'])
    assert not dc.is_ignored('keep.txt', ['*', '!keep.txt'])
    assert dc.is_ignored('anything', ['*'])


def test_checker_rejects_unknown_ros_packages() -> None:
    df = dc.parse_dockerfile(
        GOOD_HEAD + 'RUN apt-get update && apt-get install -y --no-install-recommends '
        '"ros-${ROS_DISTRO}-moveit2" ros-jazzy-ur && rm -rf /var/lib/apt/lists/*\n'
    )
    assert dc.ros_apt_packages(df, DISTRO) - KNOWN_JAZZY_PACKAGES == {'ros-jazzy-moveit2'}


def test_checker_rejects_an_entrypoint_that_does_not_exec_or_sources_in_the_wrong_order() -> None:
    sources = ['/opt/ros/jazzy/setup.bash', '/ws/install/setup.bash']
    good = (
        '#!/bin/bash\nsource /opt/ros/jazzy/setup.bash\nsource /ws/install/setup.bash\nexec "$@"\n'
    )
    assert dc.check_entrypoint(good, sources) == []
    assert dc.check_entrypoint(good.replace('exec "$@"', '"$@"'), sources) != []
    swapped = '#!/bin/bash\nsource /ws/install/setup.bash\nsource /opt/ros/jazzy/setup.bash\n'
    assert any('before' in p for p in dc.check_entrypoint(swapped + 'exec "$@"\n', sources))
    assert dc.check_entrypoint('source /opt/ros/jazzy/setup.bash\nexec "$@"\n', sources) != []


def test_checker_rejects_unpinned_and_drifted_requirements() -> None:
    constraints = {'mujoco': '==4.0.0', 'toppra': '==0.6.10'}
    assert dc.check_pins({'mujoco': '==4.0.0'}, constraints) == []
    assert dc.check_pins({'mujoco': '>=4'}, constraints) != []
    assert dc.check_pins({'mujoco': ''}, constraints) != []
    assert dc.check_pins({'toppra': '==0.6.9'}, constraints) != []
    assert dc.check_pins({'flask': '==3.0.0'}, constraints) != []
    parsed = dc.parse_requirements('# c\nPyYAML==6.0.4  # why\nqpsolvers[proxqp]==4.13.0\n')
    assert parsed == {'pyyaml': '==6.0.4', 'qpsolvers': '==4.13.0'}


def test_checker_rejects_undocumented_variables_and_wrong_addresses(compose: Any) -> None:
    data = dc.load_compose(
        'services:\n  a:\n    image: x\n    command: ["run", "${SECRET_KNOB:-1}", "${HOST:?}"]\n'
    )
    variables = dc.compose_variables(data)
    assert variables['HOST'].required and variables['SECRET_KNOB'].default == '1'
    readme = 'Set `HOST` to the robot.\n'
    problems = dc.undocumented(variables.values(), readme)
    assert any('SECRET_KNOB' in p for p in problems)
    assert any('HOST' in p and 'required' in p for p in problems)
    with pytest.raises(KeyError, match='HOST'):
        dc.interpolate('${HOST:?set HOST}', {})
    assert dc.interpolate('${A:-x}/${B-y}/${C}', {'A': '', 'B': ''}) == 'x//'

    import copy

    moved = copy.deepcopy(compose)
    moved['services']['ursim-rtde']['command'] = [
        w.replace('192.168.56.101', '192.168.56.102')
        for w in moved['services']['ursim-rtde']['command']
    ]
    moved['services']['ursim-driver']['networks']['ursim_net']['ipv4_address'] = '10.0.0.5'
    problems = dc.check_fixed_addresses(moved, 'ursim_net', 'ursim', {})
    assert any('ursim-rtde: robot_ip:=192.168.56.102' in p for p in problems)
    assert any('10.0.0.5 is outside' in p for p in problems)
    assert any('reverse_ip' in p for p in problems)

    clash = copy.deepcopy(compose)
    clash['services']['ursim-rtde']['ports'] = ['127.0.0.1:6080:6080']
    assert any('6080' in p for p in dc.check_host_ports(clash, {}))
    missing = copy.deepcopy(compose)
    missing['services']['sim']['build'] = {'context': '..', 'dockerfile': 'docker/Nope'}
    missing['services']['model-server']['build']['target'] = 'nope'
    assert len(dc.check_builds(missing, DOCKER)) == 2


def test_ros_containers_share_ipc_so_fast_dds_moves_data_between_them(compose: Any) -> None:
    """Separate containers with Fast DDS: shared memory needs a shared IPC namespace.

    On the host network the containers look like one host to Fast DDS, which then delivers
    through shared memory; in separate IPC namespaces they discover each other and exchange no
    data. Every service of the workspace image must share the host's IPC, with one RMW and one
    domain.
    """
    ros = {
        name: svc
        for name, svc in compose['services'].items()
        if svc.get('image') == compose['services']['sim']['image']
    }
    assert {'ur-driver', 'ur5', 'g1', 'camera', 'ursim-driver', 'ursim-driver-bringup'} <= set(ros)
    for name, svc in ros.items():
        assert svc.get('ipc') == 'host', f'{name}: no shared IPC (Fast DDS shared memory)'
        env = svc.get('environment') or {}
        assert env.get('RMW_IMPLEMENTATION') == '${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}', name
        assert env.get('ROS_DOMAIN_ID') == '${ROS_DOMAIN_ID:-0}', name


def test_ur5_with_the_moveit_backend_starts_move_group(compose: Any) -> None:
    words = dc.command_words(compose['services']['ur5'], {**REQUIRED_SAMPLES})
    package, launch_file, args = dc.launch_invocation(words)
    assert _resolve_bringup(package, launch_file, args)['robot_backend'] == 'ros2_control'
    words = dc.command_words(
        compose['services']['ur5'], {**REQUIRED_SAMPLES, 'ROBOT_BACKEND': 'moveit'}
    )
    values = _resolve_bringup(*dc.launch_invocation(words))
    (inc,) = BRINGUPS['ur5'].includes(values)
    assert (inc.package, inc.launch_file) == ('ur_moveit_config', 'ur_moveit.launch.py')
