"""Declare ROS parameters with descriptions and ranges from one table, read them back typed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node


@dataclass(frozen=True)
class Param:
    """One parameter: name, default, description (with units), optional numeric range."""

    name: str
    default: Any
    description: str
    lo: float | None = None
    hi: float | None = None
    read_only: bool = True


def declare_all(node: Node, params: list[Param]) -> dict[str, Any]:
    """Declare every parameter with its descriptor; return ``{name: value}``.

    Raises:
        ValueError: a value outside its range (rclpy rejects it at declaration).
    """
    out: dict[str, Any] = {}
    for p in params:
        desc = ParameterDescriptor(description=p.description, read_only=p.read_only)
        if p.lo is not None and p.hi is not None:
            if isinstance(p.default, bool):
                pass
            elif isinstance(p.default, int):
                desc.integer_range = [
                    IntegerRange(from_value=int(p.lo), to_value=int(p.hi), step=0)
                ]
            elif isinstance(p.default, float):
                desc.floating_point_range = [
                    FloatingPointRange(from_value=float(p.lo), to_value=float(p.hi), step=0.0)
                ]
        value = node.declare_parameter(p.name, p.default, desc).value
        out[p.name] = value
    return out
