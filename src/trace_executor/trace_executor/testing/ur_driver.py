"""A stand-in for the UR ROS 2 driver's controllers, behaving as the real ones do.

Design notes: docs/design-notes.md (trace_executor.testing.ur_driver).
"""

from __future__ import annotations

from concurrent.futures import Future
import threading
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64
from trajectory_msgs.msg import JointTrajectory

from robotracer_ros.stamps import seconds

__all__ = ['SetIoService', 'SetIoStandIn', 'UrDriverStandIn']


class UrDriverStandIn:
    """Scaled JTC + joint state broadcaster + speed scaling broadcaster (module docstring).

    Args:
        node: the node to create the topics on (spun elsewhere).
        joint_names: the arm's joints.
        q0: (J,) initial positions, rad.
        trajectory_topic: the controller's JointTrajectory topic.
        joint_states_topic: where joint states go.
        speed_scaling_topic: where the speed scaling (percent) goes.
        rate_hz: control and publish rate.
    """

    def __init__(
        self,
        node: Any,
        joint_names: tuple[str, ...],
        q0: np.ndarray,
        *,
        trajectory_topic: str = 'scaled_joint_trajectory_controller/joint_trajectory',
        joint_states_topic: str = 'joint_states',
        speed_scaling_topic: str = 'speed_scaling_state_broadcaster/speed_scaling',
        rate_hz: float = 100.0,
    ) -> None:
        self.node = node
        self.joint_names = tuple(joint_names)
        self.lock = threading.Lock()
        self.q = np.asarray(q0, dtype=float).copy()
        self.v = np.zeros(len(self.q))
        self.scaling = 1.0
        self._times: np.ndarray | None = None  # running trajectory: sample times, s
        self._points: np.ndarray | None = None  # (K, J) positions, first = state at receipt
        self._t = 0.0  # the trajectory's (scaled) clock
        self._last = time.monotonic()  # wall time of the last control step
        self.received: list[JointTrajectory] = []
        #: why messages were rejected, as the real controller logs them
        self.rejected: list[str] = []
        self.period_s = 1.0 / rate_hz
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.state_pub = node.create_publisher(JointState, joint_states_topic, 10)
        self.scaling_pub = node.create_publisher(Float64, speed_scaling_topic, reliable)
        self.sub = node.create_subscription(
            JointTrajectory, trajectory_topic, self.command, reliable
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name='ur_driver_stand_in', daemon=True)
        self._thread.start()

    # --- the pendant and the controller -------------------------------------------------
    def set_slider(self, fraction: float) -> None:
        """Move the pendant's speed slider (0-1)."""
        with self.lock:
            self.scaling = float(np.clip(fraction, 0.0, 1.0))

    def command(self, msg: JointTrajectory) -> None:
        """A JointTrajectory for the controller (topic callback; callable directly)."""
        self.received.append(msg)
        with self.lock:
            if not msg.points:
                # Jazzy's joint_trajectory_controller: "Empty trajectory received." - rejected,
                # the running trajectory goes on
                self.rejected.append('Empty trajectory received.')
                return
            index = {n: i for i, n in enumerate(msg.joint_names)}
            order = [index[n] for n in self.joint_names]
            times = [0.0] + [seconds(p.time_from_start) for p in msg.points]
            pts = [self.q.copy()] + [np.asarray(p.positions, float)[order] for p in msg.points]
            self._times, self._points, self._t = np.array(times), np.array(pts), 0.0
            self._last = time.monotonic()

    def hold(self) -> None:
        """Cancel the running trajectory: the arm stays where it is (a cancelled JTC goal)."""
        with self.lock:
            self._times = self._points = None
            self.v[:] = 0.0

    @property
    def moving(self) -> bool:
        """A trajectory is running."""
        with self.lock:
            return self._times is not None

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        """(positions, velocities) now."""
        with self.lock:
            return self.q.copy(), self.v.copy()

    def _step(self) -> None:
        with self.lock:
            if self._times is None or self._points is None:
                return
            # The real controller's clock is the wall clock (a 500 Hz real-time loop): a step
            # that comes late (this thread starved of the GIL) catches up, it does not slow
            # the trajectory down.
            now = time.monotonic()
            dt = max(now - self._last, 1e-6)
            self._last = now
            self._t += dt * self.scaling
            t = min(self._t, float(self._times[-1]))
            q = np.array(
                [np.interp(t, self._times, self._points[:, j]) for j in range(len(self.q))]
            )
            self.v = (q - self.q) / dt
            self.q = q
            if self._t >= self._times[-1]:
                self._times = self._points = None
                self.v[:] = 0.0

    def _loop(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            self._step()
            q, v = self.state()
            msg = JointState(name=list(self.joint_names), position=q.tolist(), velocity=v.tolist())
            try:
                msg.header.stamp = self.node.get_clock().now().to_msg()
                self.state_pub.publish(msg)
                self.scaling_pub.publish(Float64(data=100.0 * self.scaling))
            except Exception:  # noqa: BLE001 - the context went away, or a transient error
                if not self.node.context.ok():
                    return  # the test is over
                # keep controlling: a control loop that stops leaves its trajectory unfinished
            next_t += self.period_s
            time.sleep(max(0.0, next_t - time.monotonic()))

    def close(self) -> None:
        """Stop the control thread."""
        self._stop.set()
        self._thread.join(timeout=2.0)


class SetIoStandIn:
    """The driver's ``io_and_status_controller/set_io`` (ur_msgs/srv/SetIO), in process.

    ``ur_msgs`` is not installable here, so the service cannot cross DDS; this is the link a
    :class:`~trace_executor.backends.grippers.ToolOutputGripper` takes. It answers as
    ``GPIOController::setIO`` does: ``success`` false while the controller is inactive (robot
    not in remote control / program not running), for a digital output outside pins 0-17, or
    for an unknown function; otherwise the output is set and ``success`` true.

    Args:
        service: the service name (for messages).
        active: the controller is active.
    """

    def __init__(self, service: str = 'io_and_status_controller/set_io', active: bool = True):
        self.service = service
        self.active = active
        self.available = True
        self.outputs: dict[int, float] = {}
        self.requests: list[tuple[int, int, float]] = []

    def wait(self, timeout_s: float) -> bool:
        """The service is there unless :attr:`available` is False."""
        return self.available

    def set_io(self, fun: int, pin: int, state: float) -> Future:
        """A resolved future of the response."""
        self.requests.append((int(fun), int(pin), float(state)))
        ok = False
        if self.active and int(fun) == 1 and 0 <= int(pin) <= 17:  # FUN_SET_DIGITAL_OUT
            self.outputs[int(pin)] = float(state)
            ok = True
        elif self.active and int(fun) == 3 and 0 <= int(pin) <= 2:  # FUN_SET_ANALOG_OUT
            ok = True
        future: Future = Future()
        future.set_result(SimpleNamespace(success=ok))
        return future


class SetIoService:
    """The driver's ``io_and_status_controller/set_io`` as a real service over DDS.

    It answers as :class:`SetIoStandIn` (``GPIOController::setIO``) with the type
    ``robotracer_msgs/srv/UrSetIO``, field for field ``ur_msgs/srv/SetIO`` (not installable
    here): the executor's :class:`~trace_executor.backends.grippers.SetIoClient` talks to it
    through rclpy and DDS as it would to the driver.

    Args:
        node: the node that serves it (spun by the caller).
        service: the service name.
        active: the controller is active.
    """

    def __init__(
        self, node: Any, service: str = 'io_and_status_controller/set_io', active: bool = True
    ) -> None:
        from robotracer_msgs.srv import UrSetIO

        self.io = SetIoStandIn(service, active)
        self.server = node.create_service(UrSetIO, service, self._on_request)

    def _on_request(self, request: Any, response: Any) -> Any:
        answer = self.io.set_io(request.fun, request.pin, request.state).result()
        response.success = bool(answer.success)
        return response
