"""launch_testing body for `ros2 launch robotracer_ros <robot>.launch.py sim:=true` (shared).

Design notes: docs/design-notes.md (robotracer_ros.testing.launch_common).
"""

from __future__ import annotations

import os
from typing import ClassVar
import unittest

from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch_ros.substitutions import FindPackageShare
import launch_testing
import launch_testing.actions
import launch_testing.asserts
import rclpy

from robotracer_commander import Commander

INSTRUCTION = {'ur5': 'put the red cube on the plate', 'g1': 'put the red cup on the plate'}


def bringup_description(robot: str) -> LaunchDescription:
    """The robot's shipped launch file with ``sim:=true``, then ReadyToTest.

    Args:
        robot: ``'ur5'`` or ``'g1'`` (the launch file ``<robot>.launch.py``).

    Returns:
        The launch description a ``generate_test_description`` returns.
    """
    share = FindPackageShare('robotracer_ros').find('robotracer_ros')
    bringup = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, 'launch', f'{robot}.launch.py')),
        launch_arguments={'sim': 'true', 'log_level': 'info'}.items(),
    )
    return LaunchDescription([bringup, launch_testing.actions.ReadyToTest()])


class BringupChecks:
    """Checks while the bringup runs; mix into a ``unittest.TestCase`` that sets ``robot``."""

    robot: ClassVar[str]
    node: ClassVar[rclpy.node.Node]

    @classmethod
    def setUpClass(cls) -> None:
        """Start rclpy and the client node."""
        rclpy.init()
        cls.node = rclpy.create_node('launch_test_client')

    @classmethod
    def tearDownClass(cls) -> None:
        """Destroy the client node and shut rclpy down."""
        cls.node.destroy_node()
        rclpy.shutdown()

    def test_services_and_actions_come_up_and_an_instruction_succeeds(self) -> None:
        """Every server appears within 90 s and the robot's instruction succeeds."""
        with Commander(self.node) as cmd:
            missing = cmd.wait_for_servers(90, get_trace=True)
            self.assertEqual(missing, [], f'not up after 90 s: {missing}')
            outcome = cmd.execute_instruction(INSTRUCTION[self.robot], timeout_s=240)
            self.assertTrue(outcome.success, f'{outcome.status.value}: {outcome.message}')


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    """Checks after the bringup has shut down."""

    def test_exit_codes(self, proc_info) -> None:  # proc_info: injected by launch_testing
        """Every node exits cleanly on shutdown (SIGINT): 0, or -2 / 130 for the signal."""
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -2, 130])
