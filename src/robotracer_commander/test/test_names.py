"""The commander's phase and error names cover every generated constant of both actions."""

from __future__ import annotations

from robotracer_commander import ERROR_NAMES, PHASE_NAMES
from robotracer_msgs.action import ExecuteInstruction, ExecuteTrace


def _constants(cls: type, prefix: str) -> dict[str, int]:
    return {n: int(v) for n, v in vars(cls).items() if n.startswith(prefix)}


def test_every_phase_has_its_name():
    for action in (ExecuteInstruction, ExecuteTrace):
        phases = _constants(action.Feedback, 'PHASE_')
        assert phases, action
        assert {v: n[len('PHASE_') :].lower() for n, v in phases.items()} == PHASE_NAMES


def test_every_error_code_has_its_name():
    for action in (ExecuteInstruction, ExecuteTrace):
        codes = _constants(action.Result, 'ERROR_')
        assert {v: n[len('ERROR_') :] for n, v in codes.items()} == ERROR_NAMES
