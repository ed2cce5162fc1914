"""The executor's ErrorCode is the actions' ERROR_* table, value for value."""

from __future__ import annotations

import pytest

from robotracer_msgs.action import ExecuteInstruction, ExecuteTrace
from trace_executor.errors import ErrorCode


@pytest.mark.parametrize('action', [ExecuteInstruction, ExecuteTrace])
def test_error_codes_match_the_action_constants(action):
    generated = {
        n[len('ERROR_') :]: int(getattr(action.Result, n))
        for n in dir(action.Result)
        if n.startswith('ERROR_')
    }
    assert generated == {c.name: int(c) for c in ErrorCode}
