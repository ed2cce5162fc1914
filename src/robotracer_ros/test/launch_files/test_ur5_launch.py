"""launch_testing: `ros2 launch robotracer_ros ur5.launch.py sim:=true`, one instruction.

Skipped here (launch_testing is not on PyPI); runs in the docker image. The body is
robotracer_ros.testing.launch_common, shared with the other robot's launch test.
"""

import unittest

import pytest

pytest.importorskip(
    'launch_testing',
    reason='needs a full ROS 2 install: launch_testing is not on PyPI (run in the docker image)',
)
pytest.importorskip('launch_ros', reason='needs a full ROS 2 install: launch_ros')

from robotracer_ros.testing import launch_common  # noqa: E402


@pytest.mark.launch_test
def generate_test_description():
    return launch_common.bringup_description('ur5')


class TestBringup(launch_common.BringupChecks, unittest.TestCase):
    robot = 'ur5'


TestShutdown = launch_common.TestShutdown
