"""The ROS-free error codes must stay in step with the ExecuteInstruction action's constants."""

from __future__ import annotations

from pathlib import Path
import re

import pytest

from trace_executor.errors import ErrorCode, PlanningError

ACTION = (
    Path(__file__).resolve().parents[2]
    / 'robotracer_msgs'
    / 'action'
    / 'ExecuteInstruction.action'
)


def _action_error_constants() -> dict[str, int]:
    text = ACTION.read_text()
    return {
        m.group(1): int(m.group(2))
        for m in re.finditer(r'^\s*uint16\s+ERROR_([A-Z_]+)\s*=\s*(\d+)', text, re.MULTILINE)
    }


def test_error_codes_match_the_action_file() -> None:
    constants = _action_error_constants()
    assert constants, f'no ERROR_* constants found in {ACTION}'
    assert {c.name: int(c) for c in ErrorCode} == constants


def test_planning_error_carries_code_index_and_reason() -> None:
    err = PlanningError(ErrorCode.UNREACHABLE, 3, 'waypoint 3 of 10 is out of reach')
    assert err.code is ErrorCode.UNREACHABLE and int(err.code) == 5
    assert err.waypoint_index == 3
    assert 'waypoint 3' in str(err) and 'UNREACHABLE' in str(err)
    with pytest.raises(PlanningError) as info:
        raise err
    assert info.value.message == 'waypoint 3 of 10 is out of reach'
