"""launch_testing body for `ros2 launch robotracer_ros <robot>.launch.py sim:=true` (shared).

Runs where ROS 2 launch exists (the docker image: `colcon test --packages-select robotracer_ros`
or `launch_test src/robotracer_ros/test/test_launch_files_ros.py robot:=ur5`). Here `launch`
and `launch_testing` are not installable (not on PyPI), so this module is skipped with that
reason; test_bringup.py proves here that the launch files start the same nodes with the same
parameters as `robotracer launch`, and the end-to-end tests run that bringup for real.
"""

from __future__ import annotations

import os
import unittest

import pytest

pytest.importorskip(
    'launch_testing',
    reason='needs a full ROS 2 install: launch_testing is not on PyPI (run in the docker image)',
)
pytest.importorskip('launch_ros', reason='needs a full ROS 2 install: launch_ros')

from launch import LaunchDescription  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from launch_ros.substitutions import FindPackageShare  # noqa: E402
import launch_testing  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import rclpy  # noqa: E402

from robotracer_commander import Commander  # noqa: E402

ROBOT = os.environ.get('ROBOTRACER_LAUNCH_ROBOT', 'ur5')  # set by the per-robot test files
INSTRUCTION = {'ur5': 'put the red cube on the plate', 'g1': 'put the red cup on the plate'}


def generate_test_description():
    share = FindPackageShare('robotracer_ros').find('robotracer_ros')
    bringup = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, 'launch', f'{ROBOT}.launch.py')),
        launch_arguments={'sim': 'true', 'log_level': 'info'}.items(),
    )
    return LaunchDescription([bringup, launch_testing.actions.ReadyToTest()])


class TestBringup(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rclpy.init()
        cls.node = rclpy.create_node('launch_test_client')

    @classmethod
    def tearDownClass(cls):
        cls.node.destroy_node()
        rclpy.shutdown()

    def test_services_and_actions_come_up_and_an_instruction_succeeds(self):
        with Commander(self.node) as cmd:
            missing = cmd.wait_for_servers(90, get_trace=True)
            self.assertEqual(missing, [], f'not up after 90 s: {missing}')
            outcome = cmd.execute_instruction(INSTRUCTION[ROBOT], timeout_s=240)
            self.assertTrue(outcome.success, f'{outcome.status.value}: {outcome.message}')


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_exit_codes(self, proc_info):
        # every node exits cleanly on shutdown (SIGINT): 0, or -2 / 130 for the signal
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -2, 130])
