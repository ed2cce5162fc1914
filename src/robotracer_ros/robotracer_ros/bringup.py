"""One bringup description, two runners.

Design notes: docs/design-notes.md (robotracer_ros.bringup).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
import os
import re
import shutil
import sys

TRUE = ('true', '1', 'yes', 'on')
BOOL_CHOICES = ('true', 'false')


@dataclass(frozen=True)
class LaunchArg:
    """A launch argument: ``name:=value`` on both runners.

    ``default=None`` means required (hardware arguments have no default); ``required_if`` names
    a condition on the other arguments under which an empty value is an error.
    """

    name: str
    description: str
    default: str | None = ''
    choices: tuple[str, ...] | None = None
    required_if: Callable[[Mapping[str, str]], bool] | None = None


@dataclass(frozen=True)
class NodeSpec:
    """One node of a bringup, independent of the runner."""

    package: str
    executable: str
    name: str
    #: Block of the robot's YAML file (``<name>: ros__parameters:``) applied to this node.
    params_from_file: bool = True
    #: Parameter overrides from launch arguments (applied after the YAML file).
    parameters: Mapping[str, object] = field(default_factory=dict)
    remappings: Sequence[tuple[str, str]] = ()
    #: Extra parameter files applied after the robot's YAML (camera / model presets).
    extra_params_files: Sequence[str] = ()
    #: Plain command-line arguments before ``--ros-args`` (e.g. rviz2's ``-d file``).
    arguments: Sequence[str] = ()
    #: Services / actions that must exist before the bringup counts as ready.
    ready_services: Sequence[str] = ()
    ready_actions: Sequence[str] = ()


@dataclass(frozen=True)
class IncludeSpec:
    """A launch file of another package that the bringup starts (e.g. MoveIt's move_group).

    ``ros2 launch`` includes it; ``robotracer launch`` runs ``ros2 launch <package> <file>``.
    """

    package: str
    launch_file: str
    arguments: Mapping[str, str] = field(default_factory=dict)
    #: Services / actions (relative) that must exist before the bringup counts as ready.
    ready_services: Sequence[str] = ()
    ready_actions: Sequence[str] = ()

    @property
    def name(self) -> str:
        """For log prefixes: the package."""
        return self.package


#: Absolute names used by nodes the bringup starts but does not own (simulator, drivers, tf)
#: and what they become under a namespace (relative: expanded into it). nav2_bringup does the
#: same for /tf and /tf_static.
NAMESPACE_REMAPS: tuple[tuple[str, str], ...] = (
    ('/tf', 'tf'),
    ('/tf_static', 'tf_static'),
    ('/joint_states', 'joint_states'),
    ('/odom', 'odom'),
    (
        '/scaled_joint_trajectory_controller/joint_trajectory',
        'scaled_joint_trajectory_controller/joint_trajectory',
    ),
    (
        '/speed_scaling_state_broadcaster/speed_scaling',
        'speed_scaling_state_broadcaster/speed_scaling',
    ),
    ('/camera/camera/color/image_raw', 'camera/camera/color/image_raw'),
    (
        '/camera/camera/aligned_depth_to_color/image_raw',
        'camera/camera/aligned_depth_to_color/image_raw',
    ),
    ('/camera/camera/color/camera_info', 'camera/camera/color/camera_info'),
    (
        '/camera/camera/aligned_depth_to_color/camera_info',
        'camera/camera/aligned_depth_to_color/camera_info',
    ),
    ('/robotracer/gripper', 'robotracer/gripper'),
    ('/robotracer/get_trace', 'robotracer/get_trace'),
    ('/robotracer/trace', 'robotracer/trace'),
    ('/robotracer/trace_markers', 'robotracer/trace_markers'),
    ('/robotracer/annotated_image', 'robotracer/annotated_image'),
    ('/robotracer/planned_path', 'robotracer/planned_path'),
    ('/robotracer/execute_trace', 'robotracer/execute_trace'),
    ('/robotracer/execute_instruction', 'robotracer/execute_instruction'),
    ('/sim/get_object_poses', 'sim/get_object_poses'),
    ('/sim/set_object_pose', 'sim/set_object_pose'),
)

_NS_PART = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')


def normalise_namespace(value: str) -> str:
    """``left``, ``/left`` and ``/left/`` → ``/left``; '' and ``/`` → '' (rcl needs the ``/``).

    Raises:
        ValueError: a namespace rcl would refuse, naming it and the rule.
    """
    v = str(value).strip()
    if v in ('', '/'):
        return ''
    parts = v.strip('/').split('/')
    if not all(_NS_PART.fullmatch(p) for p in parts):
        raise ValueError(
            f'namespace:={value!r} is not a valid ROS namespace: use /name or /name/sub, each '
            'part letters, digits and underscores, not starting with a digit'
        )
    return '/' + '/'.join(parts)


def qualified(name: str, namespace: str) -> str:
    """The fully qualified name of a relative (or absolute) name under ``namespace``."""
    if name.startswith('/'):
        return name
    return f'{namespace}/{name}' if namespace else f'/{name}'


@dataclass(frozen=True)
class Bringup:
    """A robot's bringup: its arguments and a function from argument values to nodes."""

    robot: str
    config_file: str
    args: Sequence[LaunchArg]
    nodes: Callable[[Mapping[str, str]], list[NodeSpec]]
    includes: Callable[[Mapping[str, str]], list[IncludeSpec]] = lambda _values: []

    def resolve(self, given: Mapping[str, str]) -> dict[str, str]:
        """Merge ``given`` over the defaults and validate.

        Raises:
            ValueError: unknown argument, value outside ``choices`` or a required one missing.

        """
        known = {a.name: a for a in self.args}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ValueError(
                f'unknown launch argument(s) {", ".join(unknown)}; '
                f'known: {", ".join(sorted(known))}'
            )
        values = {a.name: (a.default if a.default is not None else '') for a in self.args}
        values.update({k: str(v) for k, v in given.items()})
        for a in self.args:
            v = values[a.name]
            if a.choices and v not in a.choices:
                raise ValueError(f'{a.name}:={v!r} is not one of {", ".join(a.choices)}')
            if a.default is None and not v and not (a.required_if and not a.required_if(values)):
                raise ValueError(f'launch argument {a.name} is required: {a.description}')
            if a.required_if and a.required_if(values) and not v:
                raise ValueError(f'launch argument {a.name} is required here: {a.description}')
        if 'namespace' in values:
            values['namespace'] = normalise_namespace(values['namespace'])
        return values


def is_true(value: str) -> bool:
    """Launch-style boolean: 'true', '1', 'yes', 'on' (any case) are true."""
    return str(value).strip().lower() in TRUE


def _not_sim(values: Mapping[str, str]) -> bool:
    return not is_true(values.get('sim', 'true'))


def _common_args(robot: str) -> list[LaunchArg]:
    return [
        LaunchArg(
            'sim',
            'run the MuJoCo simulator and its ground-truth model server instead of '
            'a real robot and camera',
            'true',
            BOOL_CHOICES,
        ),
        LaunchArg(
            'model_backend',
            'model backend of the perception node; config = as in the parameter files',
            'config',
            ('config', 'robotracer_http', 'openai', 'transformers', 'replay'),
        ),
        LaunchArg(
            'model_url',
            'model server URL (robotracer_http / openai); empty = the '
            'simulator oracle when sim:=true, else the config file value',
            '',
        ),
        LaunchArg(
            'model_name',
            'model name (openai: served model id; transformers: checkpoint '
            'path); empty = config file value',
            '',
        ),
        LaunchArg(
            'camera_config',
            'extra perception parameters for the camera, e.g. config/cameras/realsense_d435.yaml '
            '(relative paths are in the package share)',
            '',
        ),
        LaunchArg(
            'model_config',
            'extra perception parameters for the model, e.g. config/models/vllm_qwen3vl.yaml '
            '(relative paths are in the package share)',
            '',
        ),
        LaunchArg(
            'camera_namespace',
            'namespace of the RGB-D camera topics (RealSense layout: '
            '<ns>/color/image_raw, <ns>/aligned_depth_to_color/image_raw, '
            '<ns>/color/camera_info)',
            '/camera/camera',
        ),
        LaunchArg(
            'rviz',
            'start RViz with the trace markers (needs a ROS install with rviz2)',
            'false',
            BOOL_CHOICES,
        ),
        LaunchArg(
            'foxglove',
            'start foxglove_bridge on port 8765 (needs a ROS install with foxglove_bridge)',
            'false',
            BOOL_CHOICES,
        ),
        LaunchArg('use_sim_time', 'use /clock from the simulator', 'false', BOOL_CHOICES),
        LaunchArg(
            'namespace',
            'namespace for every node of the bringup, e.g. /left (a leading / is added); '
            'empty = none',
            '',
        ),
        LaunchArg(
            'log_level',
            'log level of every node',
            'info',
            ('debug', 'info', 'warn', 'error', 'fatal'),
        ),
        LaunchArg(
            'config', f'parameter file; empty = share/robotracer_ros/config/{robot}.yaml', ''
        ),
    ]


def _camera_remaps(values: Mapping[str, str]) -> list[tuple[str, str]]:
    ns = values['camera_namespace'].rstrip('/')
    if ns in ('/camera/camera', 'camera/camera'):
        return []
    out = []
    # both spellings: nodes name the camera topics absolute (/camera/camera/...) or relative
    for prefix in ('/camera/camera', 'camera/camera'):
        out += [
            (f'{prefix}/color/image_raw', f'{ns}/color/image_raw'),
            (
                f'{prefix}/aligned_depth_to_color/image_raw',
                f'{ns}/aligned_depth_to_color/image_raw',
            ),
            (f'{prefix}/color/camera_info', f'{ns}/color/camera_info'),
        ]
    return out


def _perception(values: Mapping[str, str], oracle_port: str) -> NodeSpec:
    params: dict[str, object] = {'use_sim_time': is_true(values['use_sim_time'])}
    if values['model_backend'] != 'config':
        params['backend'] = values['model_backend']
    url = values['model_url']
    if not url and is_true(values['sim']) and not values['model_config']:
        url = f'http://127.0.0.1:{oracle_port}'  # the simulator's ground-truth model server
    if url:
        params['model_url'] = url
    if values['model_name']:
        params['model_name'] = values['model_name']
    return NodeSpec(
        'robotracer_ros',
        'perception_node',
        'perception_node',
        parameters=params,
        extra_params_files=tuple(
            f for f in (values['camera_config'], values['model_config']) if f
        ),
        remappings=_camera_remaps(values),
        ready_services=('robotracer/get_trace',),
    )


def _viewers(values: Mapping[str, str]) -> list[NodeSpec]:
    out = []
    if is_true(values['rviz']):
        out.append(
            NodeSpec(
                'rviz2',
                'rviz2',
                'rviz2',
                params_from_file=False,
                arguments=('-d', '$(share robotracer_ros)/config/robotracer.rviz'),
            )
        )
    if is_true(values['foxglove']):
        out.append(
            NodeSpec(
                'foxglove_bridge',
                'foxglove_bridge',
                'foxglove_bridge',
                params_from_file=False,
                parameters={'port': 8765, 'address': '127.0.0.1'},
            )
        )
    return out


def _ur5_nodes(values: Mapping[str, str]) -> list[NodeSpec]:
    sim = is_true(values['sim'])
    nodes: list[NodeSpec] = []
    if sim:
        nodes.append(
            NodeSpec(
                'robotracer_sim',
                'ur5_world',
                'ur5_world',
                parameters={
                    'oracle_port': int(values['oracle_port']),
                    'use_sim_time': is_true(values['use_sim_time']),
                },
                ready_services=('sim/get_object_poses',),
            )
        )
    nodes.append(_perception(values, values['oracle_port']))
    executor_params: dict[str, object] = {
        'backend': values['robot_backend'],
        'use_sim_time': is_true(values['use_sim_time']),
    }
    if values['robot_ip']:
        executor_params['robot_ip'] = values['robot_ip']
    if values['robot_backend'] == 'moveit_py':  # MoveIt in-process: MoveIt's parameters
        executor_params['moveit_py.config_file'] = moveit_py_config_file(values)
    nodes.append(
        NodeSpec(
            'trace_executor',
            'ur5_executor',
            'ur5_executor',
            parameters=executor_params,
            remappings=_camera_remaps(values),
            ready_actions=('robotracer/execute_instruction', 'robotracer/execute_trace'),
        )
    )
    return nodes + _viewers(values)


#: MoveItPy's own settings (moveit_cpp): where the planning scene monitor and the plan
#: requests start from; relative topics, so a namespaced bringup keeps them inside it
MOVEIT_PY_SETTINGS: dict[str, object] = {
    'planning_scene_monitor_options': {
        'name': 'planning_scene_monitor',
        'robot_description': 'robot_description',
        'joint_state_topic': 'joint_states',
        'attached_collision_object_topic': 'moveit_cpp/planning_scene_monitor',
        'publish_planning_scene_topic': 'moveit_cpp/publish_planning_scene',
        'monitored_planning_scene_topic': 'moveit_cpp/monitored_planning_scene',
        'wait_for_initial_state_timeout': 10.0,
    },
}

MOVEIT_CONFIG_HOW = (
    "robot_backend:=moveit_py runs MoveIt inside ur5_executor, which needs MoveIt's parameters; "
    'the bringup builds them as ur_moveit_config does (moveit_configs_utils '
    "MoveItConfigsBuilder('ur', package_name='ur_moveit_config'))"
)


def moveit_py_parameters(ur_type: str = 'ur5', use_sim_time: bool = False) -> dict[str, object]:
    """MoveIt's parameters for MoveItPy, built the way ur_moveit_config's launch file builds them.

    ``MoveItConfigsBuilder(robot_name='ur', package_name='ur_moveit_config')`` with the SRDF for
    ``ur_type`` (ur_moveit.launch.py, Jazzy): kinematics, joint limits, the planning pipelines
    (OMPL, Pilz, CHOMP; Pilz's Cartesian limits), the controllers for trajectory execution.
    The robot description itself comes from the driver's ``robot_description`` topic, as for
    move_group. Added for MoveItPy: ``planning_pipelines.pipeline_names`` (where MoveItCpp
    reads the pipelines), :data:`MOVEIT_PY_SETTINGS` and ``plan_request_params``.

    Raises:
        ValueError: moveit_configs_utils or ur_moveit_config is missing, naming which and the
            package that has it.
    """
    try:
        from moveit_configs_utils import MoveItConfigsBuilder
    except ImportError as exc:
        raise ValueError(
            f'{MOVEIT_CONFIG_HOW}: moveit_configs_utils is not installed here '
            '(ros-jazzy-moveit-configs-utils, with MoveIt; use the docker image)'
        ) from exc
    from pathlib import Path

    try:
        builder = MoveItConfigsBuilder(robot_name='ur', package_name='ur_moveit_config')
        config = dict(
            builder.robot_description_semantic(
                Path('srdf') / 'ur.srdf.xacro', {'name': ur_type}
            ).to_dict()
        )
    except Exception as exc:  # noqa: BLE001 - ament's PackageNotFoundError, xacro errors, ...
        missing = type(exc).__name__ == 'PackageNotFoundError'
        raise ValueError(
            f'{MOVEIT_CONFIG_HOW}: '
            + (
                'ur_moveit_config is not installed here (ros-jazzy-ur-moveit-config, with the UR '
                'driver; use the docker image)'
                if missing
                else f'ur_moveit_config could not be loaded: {type(exc).__name__}: {exc}'
            )
        ) from exc
    pipelines = config.get('planning_pipelines') or []
    names = (
        list(pipelines.get('pipeline_names', []))
        if isinstance(pipelines, dict)
        else list(pipelines)
    )
    if not names:
        raise ValueError(f'{MOVEIT_CONFIG_HOW}: ur_moveit_config names no planning pipeline')
    config['planning_pipelines'] = {'pipeline_names': names}
    pilz = 'pilz_industrial_motion_planner'
    config['plan_request_params'] = {
        'planning_attempts': 1,
        'planning_pipeline': pilz if pilz in names else names[0],
        'planner_id': 'LIN' if pilz in names else '',
        'planning_time': 5.0,
        'max_velocity_scaling_factor': 1.0,
        'max_acceleration_scaling_factor': 1.0,
    }
    config.update(MOVEIT_PY_SETTINGS)
    config['use_sim_time'] = bool(use_sim_time)
    return config


def moveit_py_config_file(values: Mapping[str, str], out_dir: str = '') -> str:
    """Write :func:`moveit_py_parameters` as a parameter file for MoveItPy; its path.

    The file has one ``/**`` block (MoveItPy's node takes it whatever its name and namespace);
    the executor gets its path as ``moveit_py.config_file``. The name is deterministic (both
    runners produce the same arguments) and the write atomic.

    Raises:
        ValueError: MoveIt's configuration is missing (:func:`moveit_py_parameters`).
    """
    import hashlib
    import tempfile

    import yaml

    params = moveit_py_parameters('ur5', is_true(values.get('use_sim_time', 'false')))
    try:
        text = yaml.safe_dump({'/**': {'ros__parameters': params}}, sort_keys=False)
    except yaml.YAMLError as exc:
        raise ValueError(f'MoveIt parameters for moveit_py cannot be written: {exc}') from exc
    out_dir = out_dir or os.path.join(tempfile.gettempdir(), 'robotracer_params')
    os.makedirs(out_dir, exist_ok=True)
    ns = normalise_namespace(values.get('namespace', ''))
    tag = hashlib.sha1(text.encode()).hexdigest()[:8]
    name = f'moveit_py_ur5_{ns.strip("/").replace("/", "_") or "root"}_{tag}.yaml'
    dst = os.path.join(out_dir, name)
    if not os.path.exists(dst) or open(dst).read() != text:
        tmp = f'{dst}.{os.getpid()}'
        with open(tmp, 'w') as f:
            f.write(text)
        os.replace(tmp, dst)
    return dst


def _ur5_includes(values: Mapping[str, str]) -> list[IncludeSpec]:
    if values['robot_backend'] != 'moveit' or not is_true(values['launch_move_group']):
        return []
    return [
        IncludeSpec(
            'ur_moveit_config',
            'ur_moveit.launch.py',
            {
                'ur_type': 'ur5',
                'launch_rviz': 'false',
                'use_sim_time': 'true' if is_true(values['use_sim_time']) else 'false',
            },
            ready_services=('compute_cartesian_path',),
            ready_actions=('execute_trajectory',),
        )
    ]


def _g1_nodes(values: Mapping[str, str]) -> list[NodeSpec]:
    sim = is_true(values['sim'])
    nodes: list[NodeSpec] = []
    iface = values['network_interface'] or ('lo' if sim else '')
    if sim:
        nodes.append(
            NodeSpec(
                'robotracer_sim',
                'g1_world',
                'g1_world',
                parameters={
                    'oracle_port': int(values['oracle_port']),
                    'network_interface': iface,
                    'use_sim_time': is_true(values['use_sim_time']),
                },
                ready_services=('sim/get_object_poses',),
            )
        )
    nodes.append(_perception(values, values['oracle_port']))
    nodes.append(
        NodeSpec(
            'trace_executor',
            'g1_executor',
            'g1_executor',
            parameters={
                'backend': values['robot_backend'],
                'network_interface': iface,
                # the simulator publishes the head camera's pose; the robot: odometry + URDF FK
                'camera_pose_source': 'topic' if sim else 'odometry',
                'use_sim_time': is_true(values['use_sim_time']),
            },
            remappings=_camera_remaps(values),
            ready_actions=('robotracer/execute_instruction', 'robotracer/execute_trace'),
        )
    )
    return nodes + _viewers(values)


UR5 = Bringup(
    robot='ur5',
    config_file='ur5.yaml',
    args=[
        *_common_args('ur5'),
        LaunchArg(
            'robot_backend',
            'how the executor drives the arm (moveit: move_group services, started here; '
            "moveit_py: MoveIt in the executor, with ur_moveit_config's parameters)",
            'ros2_control',
            ('ros2_control', 'moveit', 'moveit_py', 'rtde'),
        ),
        LaunchArg(
            'launch_move_group',
            "robot_backend:=moveit: start ur_moveit_config's move_group (ur_moveit.launch.py, "
            'ur_type ur5); false when it runs elsewhere',
            'true',
            BOOL_CHOICES,
        ),
        LaunchArg(
            'robot_ip',
            'IP address of the UR controller (required when sim:=false)',
            '',
            required_if=_not_sim,
        ),
        LaunchArg(
            'oracle_port', 'port of the simulator ground-truth model server (sim only)', '25547'
        ),
    ],
    nodes=_ur5_nodes,
    includes=_ur5_includes,
)

G1 = Bringup(
    robot='g1',
    config_file='g1.yaml',
    args=[
        *_common_args('g1'),
        LaunchArg(
            'robot_backend', 'how the executor drives the humanoid', 'unitree', ('unitree',)
        ),
        LaunchArg(
            'network_interface',
            'network interface of the G1 DDS network, e.g. eth0 '
            '(required when sim:=false; sim uses lo)',
            '',
            required_if=_not_sim,
        ),
        LaunchArg(
            'oracle_port', 'port of the simulator ground-truth model server (sim only)', '25547'
        ),
    ],
    nodes=_g1_nodes,
)

BRINGUPS: dict[str, Bringup] = {'ur5': UR5, 'g1': G1}


def parse_launch_args(argv: Sequence[str]) -> dict[str, str]:
    """Parse ``name:=value`` tokens (the ``ros2 launch`` syntax).

    Raises:
        ValueError: a token is not of the form ``name:=value``.

    """
    out: dict[str, str] = {}
    for tok in argv:
        if ':=' not in tok or tok.startswith(':='):
            raise ValueError(f'launch arguments are name:=value, got {tok!r}')
        k, v = tok.split(':=', 1)
        out[k] = v
    return out


def ros_args(spec: NodeSpec, values: Mapping[str, str], params_file: str) -> list[str]:
    """The ``--ros-args`` a node gets, identical for both runners.

    Args:
        spec: the node.
        values: resolved launch arguments.
        params_file: the robot's YAML parameter file.

    Returns:
        Arguments to append after the executable.

    """
    args = [*spec.arguments, '--ros-args', '-r', f'__node:={spec.name}']
    namespace = normalise_namespace(values.get('namespace', ''))
    if namespace:
        args += ['-r', f'__ns:={namespace}']
    if spec.params_from_file and params_file:
        args += ['--params-file', params_file]
    for extra in spec.extra_params_files:
        args += ['--params-file', _share_path(extra)]
    for k, v in spec.parameters.items():
        args += ['-p', f'{k}:={_param_str(v)}']
    for src, dst in spec.remappings:  # first: the node's own (a matching rule wins)
        args += ['-r', f'{src}:={dst}']
    if namespace:
        for src, dst in NAMESPACE_REMAPS:
            args += ['-r', f'{src}:={dst}']
    args += ['--log-level', values.get('log_level', 'info')]
    return args


def namespace_params_files(argv: Sequence[str], namespace: str, out_dir: str = '') -> list[str]:
    """Make the ``--params-file`` blocks of ``argv`` apply under ``namespace``.

    rcl matches a parameter file's ``perception_node:`` block to the node ``/perception_node``
    only; under ``/left`` the node is ``/left/perception_node`` and would silently keep its
    defaults. Each file is copied with its node keys qualified (``/left/perception_node:``;
    keys already absolute or wildcards stay), as nav2_bringup's RewrittenYaml does.

    Args:
        argv: a node's arguments (``$(share ...)`` already substituted).
        namespace: the normalised namespace ('' = leave ``argv`` as it is).
        out_dir: where the copies go (default: ``<tmp>/robotracer_params``); names are
            deterministic, so both runners produce the same arguments.

    Returns:
        ``argv`` with the parameter files replaced by their namespaced copies.
    """
    if not namespace:
        return list(argv)
    import tempfile

    import yaml

    out_dir = out_dir or os.path.join(tempfile.gettempdir(), 'robotracer_params')
    os.makedirs(out_dir, exist_ok=True)
    out = list(argv)
    for i, a in enumerate(argv[:-1]):
        if a != '--params-file':
            continue
        src = argv[i + 1]
        with open(src) as f:
            data = yaml.safe_load(f) or {}
        qualified_data = {
            (k if str(k).startswith('/') else f'{namespace}/{k}'): v for k, v in data.items()
        }
        import hashlib

        tag = hashlib.sha1(os.path.abspath(src).encode()).hexdigest()[:8]  # same name, two files
        name = f'{namespace.strip("/").replace("/", "_")}_{tag}_{os.path.basename(src)}'
        dst = os.path.join(out_dir, name)
        text = yaml.safe_dump(qualified_data, sort_keys=False)
        if not os.path.exists(dst) or open(dst).read() != text:
            tmp = f'{dst}.{os.getpid()}'
            with open(tmp, 'w') as f:
                f.write(text)
            os.replace(tmp, dst)
        out[i + 1] = dst
    return out


def ready_names(specs: Sequence[NodeSpec | IncludeSpec], values: Mapping[str, str]) -> list[str]:
    """The fully qualified service names that mean "ready" (actions: their send_goal service)."""
    ns = normalise_namespace(values.get('namespace', ''))
    out = [qualified(s, ns) for spec in specs for s in spec.ready_services]
    out += [f'{qualified(a, ns)}/_action/send_goal' for spec in specs for a in spec.ready_actions]
    return out


def include_command(spec: IncludeSpec) -> list[str]:
    """``ros2 launch`` command line of an include (the ``robotracer launch`` runner)."""
    return ['ros2', 'launch', spec.package, spec.launch_file] + [
        f'{k}:={v}' for k, v in spec.arguments.items()
    ]


def _share_path(path: str) -> str:
    """``config/x.yaml`` (relative) means the package share's config; absolute stays."""
    return path if os.path.isabs(path) else f'$(share robotracer_ros)/{path}'


def _param_str(v: object) -> str:
    if isinstance(v, bool):
        return 'true' if v else 'false'
    return str(v)


def default_config_path(share_dir: str, bringup: Bringup) -> str:
    """Path of the robot's YAML in the package share (or the source tree)."""
    return os.path.join(share_dir, 'config', bringup.config_file)


def dies_with_parent(argv: list[str]) -> list[str]:
    """``argv`` run so that it gets SIGTERM when the process that started it dies.

    Linux's parent-death signal, set by util-linux ``setpriv`` before it executes ``argv``: a
    bringup or test harness killed with SIGKILL leaves no simulator or executor running (they
    would drive a robot, or mix their topics into the next run's). Unchanged where ``setpriv``
    is missing.
    """
    setpriv = shutil.which('setpriv')
    if setpriv is None or not sys.platform.startswith('linux'):
        return list(argv)
    return [setpriv, '--pdeathsig', 'TERM', '--', *argv]
