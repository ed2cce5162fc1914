"""The G1 joint table exists twice: the simulator's (robotracer_sim.g1.joints, the robot's side of
the Unitree interface) and the executor's (trace_executor.g1.kinematics / backends.unitree, the
client's side). They must agree slot by slot, as the real robot's firmware and the SDK do.
"""

from __future__ import annotations

import pytest

pytest.importorskip('pinocchio')

from robotracer_sim.g1 import joints as sim  # noqa: E402
from trace_executor.backends import unitree  # noqa: E402
from trace_executor.g1 import kinematics as exe  # noqa: E402


def test_upper_body_slots_and_names_agree():
    first = int(sim.UPPER_BODY_SLOTS[0])
    assert exe.UPPER_BODY_FIRST_SLOT == first
    n = len(exe.G1_UPPER_BODY_JOINTS)
    assert list(sim.UPPER_BODY_SLOTS) == list(range(first, first + n))
    assert sim.BODY_JOINTS[first : first + n] == exe.G1_UPPER_BODY_JOINTS


def test_arm_sdk_weight_slot_agrees():
    assert unitree.WEIGHT_SLOT == sim.WEIGHT_SLOT == sim.NUM_BODY_JOINTS


def test_upper_body_names_exist_in_the_executor_model():
    names = set(exe.G1Kinematics().model.names)  # the upper body model (legs locked)
    first = int(sim.UPPER_BODY_SLOTS[0])
    missing = [j for j in sim.BODY_JOINTS[first:] if j not in names]
    assert not missing, missing
