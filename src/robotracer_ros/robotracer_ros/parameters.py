"""One way to declare ROS parameters, for every node of the workspace.

A node's parameters are a table of :class:`Param` (name, default, description with units,
optional range and choices, whether it may change at run time). :func:`declare_all` declares
them with full descriptors (``ros2 param describe`` shows the range and the choices) and
returns ``{name: value}``, refusing a value outside its range or its choices with a message
that names the parameter. The table itself is plain data (no rclpy), so a ROS-free config
module can hold it and tests can read it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A parameter value a node cannot run with (the message names the parameter)."""


@dataclass(frozen=True)
class Param:
    """One parameter of a node.

    Attributes:
        name: the parameter name (dots for groups: ``filter.max_jump_m``).
        default: the default value; its type is the parameter's type.
        description: what it means, with units.
        lo, hi: the allowed numeric range (both or neither).
        choices: the allowed values of a string parameter (None: any).
        read_only: False for parameters a running node accepts changes to.
    """

    name: str
    default: Any
    description: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None
    read_only: bool = True

    def check(self, value: Any) -> str:
        """Why ``value`` is not allowed ('' when it is)."""
        if self.choices is not None and value not in self.choices:
            shown = ', '.join(repr(c) for c in self.choices)
            return f'parameter {self.name}={value!r} is not one of {shown}'
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if numeric and self.lo is not None and self.hi is not None:
            if not self.lo <= value <= self.hi:
                return f'parameter {self.name}={value!r} is outside [{self.lo}, {self.hi}]'
        return ''


def by_name(params: Iterable[Param]) -> dict[str, Param]:
    """``{name: Param}`` of a table."""
    return {p.name: p for p in params}


def descriptor(p: Param) -> Any:
    """The ``rcl_interfaces/ParameterDescriptor`` of a parameter."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    extra = f'one of: {", ".join(c or "(empty)" for c in p.choices)}' if p.choices else ''
    d = ParameterDescriptor(
        description=p.description, additional_constraints=extra, read_only=p.read_only
    )
    if p.lo is not None and p.hi is not None and not isinstance(p.default, bool):
        if isinstance(p.default, int):
            d.integer_range = [IntegerRange(from_value=int(p.lo), to_value=int(p.hi), step=1)]
        elif isinstance(p.default, float):
            d.floating_point_range = [
                FloatingPointRange(from_value=float(p.lo), to_value=float(p.hi), step=0.0)
            ]
    return d


def declare_all(node: Any, params: Iterable[Param]) -> dict[str, Any]:
    """Declare every parameter of ``params`` on ``node``; return ``{name: value}``.

    Raises:
        ConfigError: a value outside its range or choices (named).
    """
    out: dict[str, Any] = {}
    for p in params:
        value = node.declare_parameter(p.name, p.default, descriptor(p)).value
        why = p.check(value)
        if why:
            raise ConfigError(why)
        out[p.name] = value
    return out
