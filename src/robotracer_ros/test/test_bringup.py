"""The launch files and `robotracer launch` start the same nodes with the same arguments.

`launch`/`launch_ros` are not installable here, so the launch files are evaluated against a
recording stand-in of the launch API (the classes they use, with the same constructor
signatures); the real thing runs in the launch_testing tests on a ROS install.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import types

import pytest

from robotracer_ros import bringup
from robotracer_ros.cli import launch as rt_launch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))


class _Recorder:
    def __init__(self, *args, **kwargs):
        self.args = args
        self.kwargs = kwargs


class _LaunchConfiguration:
    values: dict[str, str] = {}

    def __init__(self, name):
        self.name = name

    def perform(self, _context):
        return self.values[self.name]


class _FindPackageShare:
    def __init__(self, pkg):
        self.pkg = pkg

    def perform(self, _context):
        return rt_launch.share_dir()


@pytest.fixture
def fake_launch(monkeypatch):
    mods = {
        'launch': types.ModuleType('launch'),
        'launch.actions': types.ModuleType('launch.actions'),
        'launch.substitutions': types.ModuleType('launch.substitutions'),
        'launch.launch_description_sources': types.ModuleType('launch.launch_description_sources'),
        'launch_ros': types.ModuleType('launch_ros'),
        'launch_ros.actions': types.ModuleType('launch_ros.actions'),
        'launch_ros.substitutions': types.ModuleType('launch_ros.substitutions'),
    }
    mods['launch'].LaunchDescription = lambda entities: list(entities)
    mods['launch.actions'].DeclareLaunchArgument = type('DeclareLaunchArgument', (_Recorder,), {})
    mods['launch.actions'].OpaqueFunction = type('OpaqueFunction', (_Recorder,), {})
    for name in ('GroupAction', 'IncludeLaunchDescription'):
        setattr(mods['launch.actions'], name, type(name, (_Recorder,), {}))
    mods['launch.launch_description_sources'].PythonLaunchDescriptionSource = type(
        'PythonLaunchDescriptionSource', (_Recorder,), {}
    )
    mods['launch_ros.actions'].PushRosNamespace = type('PushRosNamespace', (_Recorder,), {})
    mods['launch.substitutions'].LaunchConfiguration = _LaunchConfiguration
    mods['launch_ros.actions'].Node = type('Node', (_Recorder,), {})
    mods['launch_ros.substitutions'].FindPackageShare = _FindPackageShare
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.delitem(sys.modules, 'robotracer_ros.launch_support', raising=False)
    return mods


def _load_launch_file(robot):
    path = os.path.join(ROOT, 'launch', f'{robot}.launch.py')
    spec = importlib.util.spec_from_file_location(f'{robot}_launch', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.generate_launch_description()


def _launch_file_nodes(robot, given):
    entities = _load_launch_file(robot)
    decls = [e for e in entities if type(e).__name__ == 'DeclareLaunchArgument']
    opaque = [e for e in entities if type(e).__name__ == 'OpaqueFunction'][0]
    b = bringup.BRINGUPS[robot]
    _LaunchConfiguration.values = {
        a.name: given.get(a.name, a.default if a.default is not None else '') for a in b.args
    }
    nodes = opaque.kwargs['function'](None, *opaque.kwargs['args'])
    return decls, nodes


@pytest.mark.parametrize(
    'robot,given',
    [
        ('ur5', {}),
        (
            'ur5',
            {
                'sim': 'false',
                'robot_ip': '192.168.1.10',
                'robot_backend': 'rtde',
                'camera_namespace': '/d435',
                'log_level': 'debug',
                'namespace': 'cell1',
            },
        ),
        ('g1', {}),
        (
            'g1',
            {
                'sim': 'false',
                'network_interface': 'eth0',
                'model_backend': 'openai',
                'model_url': 'http://gpu:8000/v1',
                'model_name': 'Qwen/Qwen3-VL-8B-Instruct',
            },
        ),
    ],
)
def test_launch_file_and_robotracer_launch_start_the_same_nodes(fake_launch, robot, given):
    if robot == 'g1' and shutil.which('g1_executor') is None:
        pytest.skip('the G1 executor (issue 7) is not built in this workspace yet')
    decls, nodes = _launch_file_nodes(robot, given)
    b = bringup.BRINGUPS[robot]
    # every launch argument is declared, with a description; choice arguments list choices
    declared = {d.args[0]: d.kwargs for d in decls}
    assert set(declared) == {a.name for a in b.args}
    for a in b.args:
        assert declared[a.name]['description']
        if a.choices:
            assert declared[a.name]['choices'] == list(a.choices)
    # the same executables, names, arguments and remappings as `robotracer launch`
    planned = rt_launch.plan_commands(b, given)
    from_launch = [
        (
            n.kwargs['package'],
            n.kwargs['executable'],
            n.kwargs['name'],
            [*n.kwargs['arguments'], '--ros-args', *n.kwargs['ros_arguments']],
        )
        for n in nodes
    ]
    from_runner = [(s.package, s.executable, s.name, argv[1:]) for s, argv in planned]
    assert from_launch == from_runner
    names = [n[2] for n in from_launch]
    sim = given.get('sim', 'true') == 'true'
    assert ('ur5_world' in names or 'g1_world' in names) == sim
    assert 'perception_node' in names


def test_sim_bringup_points_perception_at_the_oracle():
    values = bringup.UR5.resolve({})
    perception = [n for n in bringup.UR5.nodes(values) if n.name == 'perception_node'][0]
    assert perception.parameters['model_url'] == 'http://127.0.0.1:25547'
    assert 'backend' not in perception.parameters  # config/ur5.yaml: robotracer_http


def test_camera_and_model_presets_are_layered_after_the_robot_file():
    values = bringup.UR5.resolve(
        {
            'sim': 'false',
            'robot_ip': '10.0.0.2',
            'camera_config': 'config/cameras/realsense_d455.yaml',
            'model_config': 'config/models/vllm_qwen3vl.yaml',
        }
    )
    perception = [n for n in bringup.UR5.nodes(values) if n.name == 'perception_node'][0]
    argv = bringup.ros_args(perception, values, '/cfg/ur5.yaml')
    files = [argv[i + 1] for i, a in enumerate(argv) if a == '--params-file']
    assert files == [
        '/cfg/ur5.yaml',
        '$(share robotracer_ros)/config/cameras/realsense_d455.yaml',
        '$(share robotracer_ros)/config/models/vllm_qwen3vl.yaml',
    ]
    assert 'model_url' not in perception.parameters  # the preset's URL is kept
    for preset in (
        'cameras/realsense_d435.yaml',
        'cameras/realsense_d455.yaml',
        'models/robotracer_server.yaml',
        'models/vllm_qwen3vl.yaml',
        'models/transformers_local.yaml',
    ):
        assert os.path.isfile(os.path.join(ROOT, 'config', preset)), preset


def test_camera_namespace_remaps_every_camera_topic():
    values = bringup.UR5.resolve({'camera_namespace': '/d455/'})
    perception = [n for n in bringup.UR5.nodes(values) if n.name == 'perception_node'][0]
    want = {
        'color/image_raw': '/d455/color/image_raw',
        'aligned_depth_to_color/image_raw': '/d455/aligned_depth_to_color/image_raw',
        'color/camera_info': '/d455/color/camera_info',
    }
    # absolute (the simulator, the perception node's defaults) and relative (the executor)
    assert dict(perception.remappings) == {
        f'{prefix}/{k}': v
        for prefix in ('/camera/camera', 'camera/camera')
        for k, v in want.items()
    }


@pytest.mark.parametrize(
    'robot,given,needle',
    [
        ('ur5', {'sim': 'false'}, 'robot_ip'),
        ('g1', {'sim': 'false'}, 'network_interface'),
        ('ur5', {'robot_backend': 'franka'}, 'robot_backend'),
        ('ur5', {'no_such_arg': '1'}, 'no_such_arg'),
        ('ur5', {'sim': 'maybe'}, 'sim'),
    ],
)
def test_bad_launch_arguments_are_rejected_with_the_reason(robot, given, needle):
    with pytest.raises(ValueError, match=needle):
        bringup.BRINGUPS[robot].resolve(given)


def test_launch_argument_syntax():
    assert bringup.parse_launch_args(['sim:=false', 'robot_ip:=10.0.0.2']) == {
        'sim': 'false',
        'robot_ip': '10.0.0.2',
    }
    with pytest.raises(ValueError, match='name:=value'):
        bringup.parse_launch_args(['sim=false'])


# ----------------------------------------------------------------------------- namespaces


@pytest.mark.parametrize(
    'given,want', [('robot1', '/robot1'), ('/left', '/left'), ('/a/b/', '/a/b'), ('', '')]
)
def test_namespace_gets_the_leading_slash_rcl_needs(given, want):
    values = bringup.UR5.resolve({'namespace': given})
    assert values['namespace'] == want
    executor = [n for n in bringup.UR5.nodes(values) if n.name == 'ur5_executor'][0]
    argv = bringup.ros_args(executor, values, '/cfg/ur5.yaml')
    assert (f'__ns:={want}' in argv) == bool(want)


@pytest.mark.parametrize('bad', ['1robot', 'left arm', '/left//x', 'a-b'])
def test_an_invalid_namespace_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match='is not a valid ROS namespace'):
        bringup.UR5.resolve({'namespace': bad})


def test_under_a_namespace_absolute_names_are_remapped_into_it_after_the_nodes_own():
    values = bringup.UR5.resolve({'namespace': 'left', 'camera_namespace': '/d455'})
    for node in bringup.UR5.nodes(values):
        argv = bringup.ros_args(node, values, '/cfg/ur5.yaml')
        rules = [argv[i + 1] for i, a in enumerate(argv) if a == '-r'][2:]  # after node, ns
        own = [f'{a}:={b}' for a, b in node.remappings]
        assert rules[: len(own)] == own  # a node's own remapping wins (first match)
        ns_rules = rules[len(own) :]
        assert '/tf:=tf' in ns_rules and '/tf_static:=tf_static' in ns_rules
        assert '/joint_states:=joint_states' in ns_rules
        assert '/sim/get_object_poses:=sim/get_object_poses' in ns_rules
        assert not any(r.startswith('/clock') for r in ns_rules)  # one clock for everyone
    plain = bringup.UR5.resolve({})
    executor = [n for n in bringup.UR5.nodes(plain) if n.name == 'ur5_executor'][0]
    assert '/tf:=tf' not in bringup.ros_args(executor, plain, '/cfg/ur5.yaml')


def test_ready_names_are_qualified_by_the_namespace():
    values = bringup.UR5.resolve({'namespace': '/right'})
    names = bringup.ready_names(bringup.UR5.nodes(values), values)
    assert '/right/robotracer/get_trace' in names
    assert '/right/sim/get_object_poses' in names
    assert '/right/robotracer/execute_trace/_action/send_goal' in names
    plain = bringup.UR5.resolve({})
    assert '/robotracer/get_trace' in bringup.ready_names(bringup.UR5.nodes(plain), plain)


def test_config_uses_relative_names():
    """Absolute names would escape a namespace: config/ur5.yaml's names are relative."""
    import yaml

    with open(os.path.join(ROOT, 'config', 'ur5.yaml')) as f:
        cfg = yaml.safe_load(f)
    for node, block in cfg.items():
        for k, v in block['ros__parameters'].items():
            if k.endswith(('_topic', '_service', 'service_name')):
                assert not str(v).startswith('/'), f'config/ur5.yaml {node}.{k}: {v}'


# ----------------------------------------------------------------------------- move_group


def test_moveit_backend_starts_move_group_from_the_ur_moveit_config():
    values = bringup.UR5.resolve(
        {'sim': 'false', 'robot_ip': '10.0.0.2', 'robot_backend': 'moveit'}
    )
    (inc,) = bringup.UR5.includes(values)
    assert (inc.package, inc.launch_file) == ('ur_moveit_config', 'ur_moveit.launch.py')
    assert inc.arguments['ur_type'] == 'ur5' and inc.arguments['launch_rviz'] == 'false'
    assert bringup.include_command(inc)[:4] == [
        'ros2',
        'launch',
        'ur_moveit_config',
        'ur_moveit.launch.py',
    ]
    names = bringup.ready_names([inc], values)
    assert names == ['/compute_cartesian_path', '/execute_trajectory/_action/send_goal']
    off = dict(values, launch_move_group='false')
    assert bringup.UR5.includes(off) == []
    assert bringup.UR5.includes(bringup.UR5.resolve({})) == []  # ros2_control: none


def test_launch_file_includes_move_group(fake_launch, monkeypatch):
    given = {'sim': 'false', 'robot_ip': '10.0.0.2', 'robot_backend': 'moveit'}
    monkeypatch.setattr(_FindPackageShare, 'perform', lambda self, _c: f'/opt/share/{self.pkg}')
    _, actions = _launch_file_nodes('ur5', given)
    groups = [a for a in actions if type(a).__name__ == 'GroupAction']
    assert len(groups) == 1
    (include,) = groups[0].args[0]
    source = include.args[0]
    assert source.args[0] == '/opt/share/ur_moveit_config/launch/ur_moveit.launch.py'
    assert dict(include.kwargs['launch_arguments'])['ur_type'] == 'ur5'


def test_robotracer_launch_without_moveit_installed_says_what_is_missing():
    if shutil.which('ros2') is not None:
        pytest.skip('a ROS install with ros2 is here: the refusal cannot happen')
    given = {'sim': 'false', 'robot_ip': '10.0.0.2', 'robot_backend': 'moveit'}
    with pytest.raises(FileNotFoundError, match='ur_moveit_config .* is not installed here'):
        rt_launch.plan_commands(bringup.UR5, given)
    planned = rt_launch.plan_commands(bringup.UR5, dict(given, launch_move_group='false'))
    assert [s.name for s, _ in planned] == ['perception_node', 'ur5_executor']


def test_parameter_files_apply_under_the_namespace(tmp_path):
    """rcl matches `perception_node:` to /perception_node only: the blocks are qualified."""
    import yaml

    values = bringup.UR5.resolve({'namespace': '/left'})
    cfg = os.path.join(ROOT, 'config', 'ur5.yaml')
    perception = [n for n in bringup.UR5.nodes(values) if n.name == 'perception_node'][0]
    argv = bringup.ros_args(perception, values, cfg)
    out = bringup.namespace_params_files(argv, values['namespace'], str(tmp_path))
    (path,) = [out[i + 1] for i, a in enumerate(out) if a == '--params-file']
    with open(path) as f:
        data = yaml.safe_load(f)
    with open(cfg) as f:
        original = yaml.safe_load(f)
    assert set(data) == {f'/left/{k}' for k in original}
    assert data['/left/perception_node'] == original['perception_node']
    assert bringup.namespace_params_files(argv, '', str(tmp_path)) == argv  # no namespace


def test_a_node_started_by_a_bringup_that_is_killed_dies_with_it(tmp_path):
    """kill -9 of the process that started the nodes: they get SIGTERM and end (no orphan
    simulator or executor keeps a robot moving or mixes its topics into the next run)."""
    from robotracer_ros.bringup import dies_with_parent

    pidfile = tmp_path / 'child.pid'
    child_code = (
        f'import os, time; open({str(pidfile)!r}, "w").write(str(os.getpid())); time.sleep(600)'
    )
    parent = textwrap.dedent(
        f"""
        import subprocess, sys, time
        from robotracer_ros.bringup import dies_with_parent
        child = subprocess.Popen(dies_with_parent([sys.executable, '-c', {child_code!r}]))
        time.sleep(600)
        """
    )
    proc = subprocess.Popen([sys.executable, '-c', parent])
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline, 'the child did not start'
        time.sleep(0.05)
    child = int(pidfile.read_text())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 5
    while _alive(child):
        assert time.monotonic() < deadline, 'the child outlived its killed parent'
        time.sleep(0.05)
    assert dies_with_parent(['x'])[-1] == 'x'


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) is gone too
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split()[2] != 'Z'
    except FileNotFoundError:
        return False


# --- robot_backend:=moveit_py: MoveIt's parameters for the executor ----------------------------

MOVEIT_PY = {'sim': 'false', 'robot_ip': '10.0.0.2', 'robot_backend': 'moveit_py'}


def _config_file_arg(argv):
    (arg,) = [a for a in argv if a.startswith('moveit_py.config_file:=')]
    assert argv[argv.index(arg) - 1] == '-p'
    return arg.split(':=', 1)[1]


def test_moveit_py_without_moveit_configs_utils_says_what_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, 'moveit_configs_utils', None)  # not importable
    with pytest.raises(ValueError) as err:
        rt_launch.plan_commands(bringup.UR5, MOVEIT_PY)
    msg = str(err.value)
    assert msg.startswith('robot_backend:=moveit_py runs MoveIt inside ur5_executor')
    assert 'moveit_configs_utils is not installed here (ros-jazzy-moveit-configs-utils' in msg


def test_moveit_py_without_ur_moveit_config_says_what_is_missing(monkeypatch):
    from robotracer_ros.testing import moveit_configs

    monkeypatch.setitem(
        sys.modules, 'moveit_configs_utils', moveit_configs.module(installed=False)
    )
    with pytest.raises(ValueError, match=r'ur_moveit_config is not installed here \(ros-jazzy-ur'):
        rt_launch.plan_commands(bringup.UR5, MOVEIT_PY)


def test_moveit_py_bringup_gives_the_executor_ur_moveit_configs_parameters(monkeypatch, tmp_path):
    import tempfile

    import yaml

    from robotracer_ros.testing import moveit_configs

    fake = moveit_configs.module()
    monkeypatch.setitem(sys.modules, 'moveit_configs_utils', fake)
    monkeypatch.setattr(tempfile, 'gettempdir', lambda: str(tmp_path))
    given = dict(MOVEIT_PY, namespace='/left')
    planned = rt_launch.plan_commands(bringup.UR5, given)
    assert [s.name for s, _ in planned] == ['perception_node', 'ur5_executor']  # no move_group
    argv = planned[-1][1]
    path = _config_file_arg(argv)
    assert os.path.dirname(path) == os.path.join(str(tmp_path), 'robotracer_params')
    params_files = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == '--params-file']
    assert path not in params_files  # the executor's own node gets none of MoveIt's parameters
    # built as ur_moveit.launch.py builds them
    assert fake.MoveItConfigsBuilder.calls == [
        ('init', ('ur', 'ur_moveit_config')),
        ('srdf', ('srdf/ur.srdf.xacro', {'name': 'ur5'})),
    ]
    with open(path) as f:
        data = yaml.safe_load(f)
    assert list(data) == ['/**']  # MoveItPy's node, whatever its name and namespace
    params = data['/**']['ros__parameters']
    assert '<robot name="ur5">' in params['robot_description_semantic']
    # where MoveItCpp reads the pipelines (the builder gives a plain list)
    assert params['planning_pipelines'] == {
        'pipeline_names': ['ompl', 'chomp', 'pilz_industrial_motion_planner']
    }
    assert params['pilz_industrial_motion_planner']['planning_plugins'] == [
        'pilz_industrial_motion_planner/CommandPlanner'
    ]
    assert params['plan_request_params']['planning_pipeline'] == 'pilz_industrial_motion_planner'
    assert params['plan_request_params']['planner_id'] == 'LIN'
    assert params['planning_scene_monitor_options']['joint_state_topic'] == 'joint_states'
    assert params['moveit_simple_controller_manager']['controller_names'] == [
        'scaled_joint_trajectory_controller'
    ]
    assert params['use_sim_time'] is False
    # the same call again: the same file (both runners produce the same arguments)
    assert _config_file_arg(rt_launch.plan_commands(bringup.UR5, given)[-1][1]) == path


def test_launch_file_gives_moveit_py_the_same_parameters(fake_launch, monkeypatch, tmp_path):
    import tempfile

    from robotracer_ros.testing import moveit_configs

    monkeypatch.setitem(sys.modules, 'moveit_configs_utils', moveit_configs.module())
    monkeypatch.setattr(tempfile, 'gettempdir', lambda: str(tmp_path))
    _, nodes = _launch_file_nodes('ur5', MOVEIT_PY)
    (executor,) = [n for n in nodes if n.kwargs.get('name') == 'ur5_executor']
    from_launch = _config_file_arg(list(executor.kwargs['ros_arguments']))
    planned = rt_launch.plan_commands(bringup.UR5, MOVEIT_PY)
    assert from_launch == _config_file_arg(planned[-1][1])
