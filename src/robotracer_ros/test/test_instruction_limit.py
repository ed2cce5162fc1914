"""The instruction length limit is one rule: the Commander refuses what perception would."""

from __future__ import annotations

import pytest

pytest.importorskip('rclpy')

from robotracer_commander import commander  # noqa: E402
from robotracer_ros import prompts  # noqa: E402


def test_commander_and_perception_share_the_instruction_limit():
    assert commander.MAX_INSTRUCTION_CHARS == prompts.MAX_INSTRUCTION_CHARS
