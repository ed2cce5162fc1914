"""One bringup description, two runners.

The set of nodes, their parameters and remappings for each robot lives here, as data. Both
runners read it:

- ``launch/ur5.launch.py`` / ``launch/g1.launch.py`` (``ros2 launch robotracer_ros ur5.launch.py``
  on a ROS install) turn each :class:`NodeSpec` into a ``launch_ros.actions.Node``;
- ``robotracer launch ur5|g1 [name:=value ...]`` (here, where ``launch`` is not installable)
  turns each into a supervised child process with the same ``--ros-args``.

ROS-free: this module imports neither rclpy nor launch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
import os

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
class Bringup:
    """A robot's bringup: its arguments and a function from argument values to nodes."""

    robot: str
    config_file: str
    args: Sequence[LaunchArg]
    nodes: Callable[[Mapping[str, str]], list[NodeSpec]]

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
        LaunchArg('namespace', 'namespace for every node of the bringup', ''),
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
    if ns == '/camera/camera':
        return []
    return [
        ('/camera/camera/color/image_raw', f'{ns}/color/image_raw'),
        (
            '/camera/camera/aligned_depth_to_color/image_raw',
            f'{ns}/aligned_depth_to_color/image_raw',
        ),
        ('/camera/camera/color/camera_info', f'{ns}/color/camera_info'),
    ]


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
        ready_services=('/robotracer/get_trace',),
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
                ready_services=('/sim/get_object_poses',),
            )
        )
    nodes.append(_perception(values, values['oracle_port']))
    executor_params: dict[str, object] = {
        'backend': values['robot_backend'],
        'use_sim_time': is_true(values['use_sim_time']),
    }
    if values['robot_ip']:
        executor_params['robot_ip'] = values['robot_ip']
    nodes.append(
        NodeSpec(
            'trace_executor',
            'ur5_executor',
            'ur5_executor',
            parameters=executor_params,
            remappings=_camera_remaps(values),
            ready_actions=('/robotracer/execute_instruction', '/robotracer/execute_trace'),
        )
    )
    return nodes + _viewers(values)


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
                ready_services=('/sim/get_object_poses',),
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
            ready_actions=('/robotracer/execute_instruction', '/robotracer/execute_trace'),
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
            'how the executor drives the arm',
            'ros2_control',
            ('ros2_control', 'moveit', 'rtde'),
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
    if values.get('namespace'):
        args += ['-r', f'__ns:={values["namespace"]}']
    if spec.params_from_file and params_file:
        args += ['--params-file', params_file]
    for extra in spec.extra_params_files:
        args += ['--params-file', _share_path(extra)]
    for k, v in spec.parameters.items():
        args += ['-p', f'{k}:={_param_str(v)}']
    for src, dst in spec.remappings:
        args += ['-r', f'{src}:={dst}']
    args += ['--log-level', values.get('log_level', 'info')]
    return args


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
