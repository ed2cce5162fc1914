"""Seconds of a ROS time or duration message (``builtin_interfaces/Time`` or ``Duration``)."""

from __future__ import annotations

from typing import Any


def seconds(t: Any) -> float:
    """``t.sec + t.nanosec·1e-9`` for a ``Time`` or ``Duration`` message (stamps, timeouts)."""
    return float(t.sec) + float(t.nanosec) * 1e-9
