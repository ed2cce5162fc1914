"""Gripper adapters against stand-ins that behave as the real components do.

- ``robotiq_socket`` against a Robotiq URCap socket server on 127.0.0.1 (real TCP, the protocol
  of port 63352: ``SET ... → ack``, ``GET VAR → VAR n``, activation STA 0 → 1 → 3, OBJ 2 on an
  object while closing);
- ``ur_tool_output`` against the UR driver's SetIO behaviour (``GPIOController::setIO``:
  outputs 0-17, success false while the controller is inactive), in process and as a real
  service over DDS (``robotracer_msgs/srv/UrSetIO``, ur_msgs' SetIO field for field);
- ``none``: pick_place is refused by the UR5 executor before anything moves.
"""

from __future__ import annotations

import importlib.util
import socket

import pytest

from trace_executor.backends.grippers import (
    GRIPPER_KINDS,
    NoGripper,
    RobotiqSocketGripper,
    ToolOutputGripper,
    make_gripper,
)
from trace_executor.execution import BackendError
from trace_executor.testing.robotiq import RobotiqServer
from trace_executor.testing.ur_driver import SetIoService, SetIoStandIn


@pytest.fixture
def robotiq():
    servers: list[RobotiqServer] = []

    def make(object_at: int | None = None) -> RobotiqServer:
        s = RobotiqServer(object_at)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def test_robotiq_activates_then_closes_on_an_object_and_opens(robotiq) -> None:
    server = robotiq(object_at=180)
    gripper = RobotiqSocketGripper('127.0.0.1', server.port, timeout_s=3.0)
    ok, msg = gripper(True)
    assert ok, msg
    assert msg.startswith('holding an object (stopped at 180/255')
    # activation as ur_rtde's example does it: reset, then ACT 1 and wait for STA 3
    assert server.commands[:3] == ['GET STA', 'SET ACT 0', 'SET ATR 0']
    assert 'SET ACT 1' in server.commands
    assert 'SET POS 255 SPE 255 FOR 128 GTO 1' in server.commands
    ok, msg = gripper(False)
    assert ok and msg == 'opened (0/255)', msg
    n = server.commands.count('SET ACT 1')
    gripper(True)
    assert server.commands.count('SET ACT 1') == n  # active: not activated again
    gripper.close()


def test_robotiq_closing_on_nothing_is_not_a_grasp(robotiq) -> None:
    server = robotiq(object_at=None)
    ok, msg = RobotiqSocketGripper('127.0.0.1', server.port)(True)
    assert not ok and msg.startswith('closed on nothing (fully closed at 255/255')


def test_robotiq_unreachable_names_the_address() -> None:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    ok, msg = RobotiqSocketGripper('127.0.0.1', port, timeout_s=1.0)(True)
    assert not ok and msg.startswith(f'Robotiq gripper at 127.0.0.1:{port}: ')


def test_robotiq_refused_command_is_named(robotiq) -> None:
    server = robotiq()
    server.handle = lambda line: '?'  # e.g. no URCap running the socket's gripper
    ok, msg = RobotiqSocketGripper('127.0.0.1', server.port, timeout_s=1.0)(True)
    assert not ok and "GET STA answered '?'" in msg


def test_robotiq_settings_are_checked() -> None:
    with pytest.raises(ValueError, match='needs the UR controller address'):
        RobotiqSocketGripper('')
    with pytest.raises(ValueError, match='gripper_robotiq_force 300: must be 0-255'):
        RobotiqSocketGripper('127.0.0.1', force=300)


def test_tool_output_sets_the_tool_pin_through_set_io() -> None:
    driver = SetIoStandIn()
    gripper = ToolOutputGripper(driver, 16, actuation_s=0.0)
    ok, msg = gripper(True)
    assert ok and msg.startswith('digital output 16 high'), msg
    assert driver.outputs == {16: 1.0} and driver.requests == [(1, 16, 1.0)]
    ok, msg = gripper(False)
    assert ok and driver.outputs == {16: 0.0}
    inverted = ToolOutputGripper(driver, 17, close_high=False, actuation_s=0.0)
    inverted(True)
    assert driver.outputs[17] == 0.0


def test_tool_output_refused_by_an_inactive_controller_says_so() -> None:
    driver = SetIoStandIn(active=False)
    ok, msg = ToolOutputGripper(driver, actuation_s=0.0)(True)
    assert not ok and 'refused to set digital output 16 high' in msg
    assert 'io_and_status_controller active' in msg
    driver = SetIoStandIn()
    driver.available = False
    ok, msg = ToolOutputGripper(driver, actuation_s=0.0)(True)
    assert not ok and msg == (
        'gripper: SetIO service io_and_status_controller/set_io is not available'
    )


def test_tool_output_pin_outside_the_drivers_range_is_refused() -> None:
    with pytest.raises(ValueError, match='gripper_io_pin 18: the UR driver sets digital outputs'):
        ToolOutputGripper(SetIoStandIn(), 18)


def test_make_gripper_kinds() -> None:
    assert GRIPPER_KINDS == ('service', 'ur_tool_output', 'robotiq_socket', 'none')
    assert isinstance(make_gripper('none', None), NoGripper)
    ok, msg = make_gripper('none', None)(True)
    assert not ok and 'gripper is none' in msg
    g = make_gripper('ur_tool_output', None, set_io_link=SetIoStandIn(), io_pin=17)
    assert isinstance(g, ToolOutputGripper) and g.pin == 17
    g = make_gripper('robotiq_socket', None, robotiq_host='10.0.0.2')
    assert isinstance(g, RobotiqSocketGripper) and (g.host, g.port) == ('10.0.0.2', 63352)
    with pytest.raises(ValueError, match="unknown gripper 'suction'"):
        make_gripper('suction', None)


def test_tool_output_without_ur_msgs_refuses_clearly() -> None:
    if importlib.util.find_spec('ur_msgs') is not None:
        pytest.skip('ur_msgs is installed here: the refusal cannot happen')
    with pytest.raises(BackendError, match='gripper ur_tool_output needs ur_msgs'):
        make_gripper('ur_tool_output', None)


@pytest.mark.parametrize('active', [True, False])
def test_tool_output_through_a_set_io_service_over_dds(active: bool) -> None:
    """The executor's SetIO client (rclpy, DDS) against a driver-like service in another node."""
    import threading

    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    from robotracer_msgs.srv import UrSetIO
    from trace_executor.backends.grippers import SetIoClient

    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=91)
    executor = MultiThreadedExecutor(num_threads=2, context=ctx)
    try:
        driver_node = rclpy.create_node('ur_driver_io', context=ctx)
        client_node = rclpy.create_node('ur5_executor_io', context=ctx)
        driver = SetIoService(driver_node, 'io_and_status_controller/set_io', active=active)
        for n in (driver_node, client_node):
            executor.add_node(n)
        threading.Thread(target=executor.spin, daemon=True).start()
        link = SetIoClient(client_node, 'io_and_status_controller/set_io', UrSetIO)
        gripper = ToolOutputGripper(link, 16, actuation_s=0.0)
        ok, msg = gripper(True)
        if active:
            assert ok and msg.startswith('digital output 16 high'), msg
            assert driver.io.outputs == {16: 1.0} and driver.io.requests == [(1, 16, 1.0)]
            ok, _ = gripper(False)
            assert ok and driver.io.outputs == {16: 0.0}
        else:
            assert not ok and 'refused to set digital output 16 high' in msg
            assert driver.io.outputs == {}
    finally:
        executor.shutdown()
        rclpy.shutdown(context=ctx)
