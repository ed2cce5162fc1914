"""launch_testing: `ros2 launch robotracer_ros ur5.launch.py sim:=true`, one instruction.

Skipped here (launch_testing is not on PyPI); runs in the docker image. See launch_test_common.
"""

import importlib.util
import os

import pytest

pytest.importorskip(
    'launch_testing',
    reason='needs a full ROS 2 install: launch_testing is not on PyPI (run in the docker image)',
)
os.environ['ROBOTRACER_LAUNCH_ROBOT'] = 'ur5'
_spec = importlib.util.spec_from_file_location(
    'launch_test_common', os.path.join(os.path.dirname(__file__), 'launch_test_common.py')
)
_common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_common)

generate_test_description = pytest.mark.launch_test(_common.generate_test_description)
TestBringup = _common.TestBringup
TestShutdown = _common.TestShutdown
