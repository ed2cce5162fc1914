"""Gripper adapters for a real UR, selected by the executor's ``gripper`` parameter.

Design notes: docs/design-notes.md (trace_executor.backends.grippers).
"""

from __future__ import annotations

from collections.abc import Callable
import socket
import threading
import time
from typing import Any, Protocol

from trace_executor.execution import BackendError

#: gripper adapter: close (True) / open (False) → (ok, message)
Gripper = Callable[[bool], tuple[bool, str]]

GRIPPER_KINDS = ('service', 'ur_tool_output', 'robotiq_socket', 'none')
UR_MSGS_MISSING = (
    'gripper ur_tool_output needs ur_msgs (the UR ROS 2 driver: apt install ros-jazzy-ur-msgs, '
    'or use the docker image)'
)
#: ur_msgs/srv/SetIO constants
FUN_SET_DIGITAL_OUT = 1


class NoGripper:
    """``gripper: none``: every call fails, naming the setting (pick_place is refused earlier)."""

    kind = 'none'

    def __call__(self, close: bool) -> tuple[bool, str]:
        """Refuse: there is no gripper."""
        return False, 'no gripper configured (ur5_executor parameter gripper is none)'


class SetBoolGripper:
    """A ``std_srvs/SetBool`` gripper service (true = close).

    Args:
        node: the node to create the client on (spun elsewhere).
        service: the service name.
        timeout_s: longest wait for the answer.
    """

    kind = 'service'

    def __init__(self, node: Any, service: str, timeout_s: float = 5.0) -> None:
        from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
        from std_srvs.srv import SetBool

        self._SetBool = SetBool
        self.service = service
        self.timeout_s = float(timeout_s)
        self.client = node.create_client(
            SetBool, service, callback_group=MutuallyExclusiveCallbackGroup()
        )

    def __call__(self, close: bool) -> tuple[bool, str]:
        """Call the service."""
        from trace_executor.backends.ros2_control import call_gripper

        return call_gripper(
            self.client, self.service, self._SetBool.Request(data=bool(close)), self.timeout_s
        )


class SetIoLink(Protocol):
    """The driver's SetIO service (:class:`SetIoClient` or a stand-in)."""

    service: str

    def wait(self, timeout_s: float) -> bool:
        """True once the service is there."""

    def set_io(self, fun: int, pin: int, state: float) -> Any:
        """Send a SetIO request; a future of the response (``success``)."""


class SetIoClient:
    """``ur_msgs/srv/SetIO`` client of the UR driver's ``io_and_status_controller``.

    Args:
        node: the node that owns the client.
        service: the driver's service name.
        srv_type: the service type (None: ``ur_msgs.srv.SetIO``; the tests pass
            ``robotracer_msgs.srv.UrSetIO``, the same fields).

    Raises:
        BackendError: ur_msgs is not installed.
    """

    def __init__(
        self,
        node: Any,
        service: str = 'io_and_status_controller/set_io',
        srv_type: Any = None,
    ) -> None:
        if srv_type is None:
            try:
                from ur_msgs.srv import SetIO as srv_type
            except ImportError as exc:
                raise BackendError(f'{UR_MSGS_MISSING}: {exc}') from exc
        SetIO = srv_type  # noqa: N806 (the service type)
        from rclpy.callback_groups import MutuallyExclusiveCallbackGroup

        self._SetIO = SetIO
        self.service = service
        self.client = node.create_client(
            SetIO, service, callback_group=MutuallyExclusiveCallbackGroup()
        )

    def wait(self, timeout_s: float) -> bool:
        """True once the service is there."""
        return bool(self.client.wait_for_service(timeout_sec=timeout_s))

    def set_io(self, fun: int, pin: int, state: float) -> Any:
        """A future of the SetIO response."""
        return self.client.call_async(
            self._SetIO.Request(fun=int(fun), pin=int(pin), state=float(state))
        )


class ToolOutputGripper:
    """A gripper on a UR digital output (tool outputs: pins 16, 17), through the driver's SetIO.

    The driver answers ``success`` once the controller applied the output. An on/off gripper
    cannot tell whether it holds something: closing reports success with that caveat, after
    ``actuation_s`` for the fingers to move.

    Args:
        link: the SetIO service (:class:`SetIoClient`).
        pin: the output: 16/17 tool outputs, 0-7 standard, 8-15 configurable.
        close_high: the output is high (1) to close; False for grippers wired the other way.
        actuation_s: wait after the output changed, s (the fingers' travel time).
        timeout_s: longest wait for the service and its answer, s.

    Raises:
        ValueError: a pin the driver does not accept.
    """

    kind = 'ur_tool_output'

    def __init__(
        self,
        link: SetIoLink,
        pin: int = 16,
        *,
        close_high: bool = True,
        actuation_s: float = 0.5,
        timeout_s: float = 5.0,
    ) -> None:
        if not 0 <= int(pin) <= 17:
            raise ValueError(
                f'gripper_io_pin {pin}: the UR driver sets digital outputs 0-17 (16, 17 = tool)'
            )
        self.link = link
        self.pin = int(pin)
        self.close_high = bool(close_high)
        self.actuation_s = float(actuation_s)
        self.timeout_s = float(timeout_s)

    def __call__(self, close: bool) -> tuple[bool, str]:
        """Set the output, wait for the driver's answer and the fingers."""
        from trace_executor.backends.ros2_control import wait_future

        state = 1.0 if bool(close) == self.close_high else 0.0
        what = f'digital output {self.pin} {"high" if state else "low"}'
        if not self.link.wait(min(self.timeout_s, 2.0)):
            return False, f'gripper: SetIO service {self.link.service} is not available'
        res = wait_future(self.link.set_io(FUN_SET_DIGITAL_OUT, self.pin, state), self.timeout_s)
        if res is None:
            return False, f'gripper: {self.link.service} did not answer in {self.timeout_s} s'
        if not res.success:
            return False, (
                f'gripper: the UR driver refused to set {what} ({self.link.service} answered '
                'success=false: is the io_and_status_controller active and the robot in remote '
                'control?)'
            )
        time.sleep(self.actuation_s)
        if close:
            return True, f'{what} (an on/off gripper cannot tell whether it holds the object)'
        return True, f'{what}: opened'


class RobotiqSocketGripper:
    """A Robotiq 2F/Hand-E through the Robotiq URCap's socket on the UR controller (port 63352).

    Activation (once, on first use) follows ur_rtde's example: reset (``ACT 0``, ``ATR 0``)
    until ``ACT``/``STA`` read 0, then ``ACT 1`` and wait for ``STA 3``. A move sets ``POS``,
    ``SPE``, ``FOR`` and ``GTO 1`` in one command, waits until ``PRE`` echoes the position and
    ``OBJ`` stops reading 0 (moving).

    Args:
        host: the UR controller's address.
        port: the URCap's socket (63352).
        speed: 0-255.
        force: 0-255.
        timeout_s: longest wait for one command's answer, and for activation or a move, s.
        connect: socket factory ``(host, port, timeout_s) → socket`` (tests; default TCP).
    """

    kind = 'robotiq_socket'
    OPEN, CLOSED = 0, 255

    def __init__(
        self,
        host: str,
        port: int = 63352,
        *,
        speed: int = 255,
        force: int = 128,
        timeout_s: float = 5.0,
        connect: Callable[[str, int, float], Any] | None = None,
    ) -> None:
        if not host:
            raise ValueError(
                'gripper robotiq_socket needs the UR controller address (robot_ip or '
                'gripper_robotiq_host)'
            )
        for name, v in (('speed', speed), ('force', force)):
            if not 0 <= int(v) <= 255:
                raise ValueError(f'gripper_robotiq_{name} {v}: must be 0-255')
        self.host, self.port = host, int(port)
        self.speed, self.force = int(speed), int(force)
        self.timeout_s = float(timeout_s)
        self._connect = connect or (lambda h, p, t: socket.create_connection((h, p), timeout=t))
        self._sock: Any = None
        self._lock = threading.Lock()

    # --- the protocol ---------------------------------------------------------------------
    def _exchange(self, line: str) -> str:
        with self._lock:
            if self._sock is None:
                self._sock = self._connect(self.host, self.port, self.timeout_s)
                self._sock.settimeout(self.timeout_s)
            self._sock.sendall((line + '\n').encode('ascii'))
            data = self._sock.recv(1024)
        if not data:
            self.close()
            raise ConnectionError('the gripper socket closed the connection')
        return data.decode('ascii', errors='replace').strip()

    def set_vars(self, **values: int) -> None:
        """``SET A 1 B 2 ...``; raises RuntimeError unless answered ``ack``."""
        cmd = 'SET' + ''.join(f' {k} {int(v)}' for k, v in values.items())
        answer = self._exchange(cmd)
        if answer != 'ack':
            raise RuntimeError(f'{cmd!r} answered {answer!r} instead of ack')

    def get_var(self, name: str) -> int:
        """``GET NAME`` → its integer value; raises RuntimeError on a malformed answer."""
        answer = self._exchange(f'GET {name}')
        parts = answer.split()
        if len(parts) != 2 or parts[0] != name:
            raise RuntimeError(f'GET {name} answered {answer!r}')
        return int(parts[1])

    def _wait(self, what: str, ok: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not ok():
            if time.monotonic() > deadline:
                raise TimeoutError(f'{what} within {self.timeout_s:g} s')
            time.sleep(0.01)

    def activate(self) -> None:
        """Activate unless active (reset first, as ur_rtde's example does)."""
        if self.get_var('STA') == 3:
            return
        self.set_vars(ACT=0)
        self.set_vars(ATR=0)
        self._wait(
            'the gripper did not reset',
            lambda: self.get_var('ACT') == 0 and self.get_var('STA') == 0,
        )
        self.set_vars(ACT=1)
        self._wait(
            'the gripper did not activate (STA 3)',
            lambda: self.get_var('ACT') == 1 and self.get_var('STA') == 3,
        )

    def move(self, position: int) -> tuple[int, int]:
        """Go to ``position`` (0 open - 255 closed); (final position, OBJ)."""
        self.activate()
        self.set_vars(POS=position, SPE=self.speed, FOR=self.force, GTO=1)
        self._wait('the gripper did not take the request', lambda: self.get_var('PRE') == position)
        obj = [0]

        def stopped() -> bool:
            obj[0] = self.get_var('OBJ')
            return obj[0] != 0

        self._wait('the gripper did not stop moving', stopped)
        return self.get_var('POS'), obj[0]

    def __call__(self, close: bool) -> tuple[bool, str]:
        """Close (held = stopped on an object) or open (released = at the open position)."""
        where = f'Robotiq gripper at {self.host}:{self.port}'
        try:
            pos, obj = self.move(self.CLOSED if close else self.OPEN)
            fault = self.get_var('FLT')
        except (OSError, RuntimeError, TimeoutError, ValueError) as exc:
            self.close()
            return False, f'{where}: {exc}'
        if fault:
            return False, f'{where}: fault {fault} (FLT) after the move'
        if close:
            if obj == 2:
                return True, f'holding an object (stopped at {pos}/255 on contact)'
            return False, f'closed on nothing (fully closed at {pos}/255: no object detected)'
        if obj == 3:
            return True, f'opened ({pos}/255)'
        return False, f'could not open: stopped at {pos}/255 on contact (OBJ {obj})'

    def close(self) -> None:
        """Close the socket (a later call reconnects)."""
        with self._lock:
            if self._sock is not None:
                try:
                    self._sock.close()
                finally:
                    self._sock = None


def make_gripper(
    kind: str,
    node: Any,
    *,
    service: str = 'robotracer/gripper',
    io_service: str = 'io_and_status_controller/set_io',
    io_pin: int = 16,
    io_close_high: bool = True,
    robotiq_host: str = '',
    robotiq_port: int = 63352,
    robotiq_speed: int = 255,
    robotiq_force: int = 128,
    timeout_s: float = 5.0,
    set_io_link: SetIoLink | None = None,
) -> Any:
    """Build the gripper adapter the ``gripper`` parameter names.

    Raises:
        ValueError: an unknown kind or a bad setting, naming it.
        BackendError: ``ur_tool_output`` without ur_msgs.
    """
    if kind == 'none':
        return NoGripper()
    if kind == 'service':
        return SetBoolGripper(node, service, timeout_s)
    if kind == 'ur_tool_output':
        link = set_io_link if set_io_link is not None else SetIoClient(node, io_service)
        return ToolOutputGripper(link, io_pin, close_high=io_close_high, timeout_s=timeout_s)
    if kind == 'robotiq_socket':
        return RobotiqSocketGripper(
            robotiq_host,
            robotiq_port,
            speed=robotiq_speed,
            force=robotiq_force,
            timeout_s=timeout_s,
        )
    raise ValueError(f'unknown gripper {kind!r}: expected one of {", ".join(GRIPPER_KINDS)}')
