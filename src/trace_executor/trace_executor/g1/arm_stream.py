"""What the G1's ``rt/arm_sdk`` stream says at each 50 Hz tick: weight ramps and joint targets.

Design notes: docs/design-notes.md (trace_executor.g1.arm_stream).
"""

from __future__ import annotations

from dataclasses import dataclass
import enum
import threading

import numpy as np


class StreamState(enum.Enum):
    """Phase of the arm_sdk stream."""

    IDLE = 'idle'
    RAMP_IN = 'ramp_in'
    ACTIVE = 'active'
    RAMP_OUT = 'ramp_out'


@dataclass(frozen=True)
class ArmCommand:
    """One ``rt/arm_sdk`` sample: weight, 17 joint targets (rad), target velocities (rad/s)."""

    weight: float
    q: np.ndarray
    dq: np.ndarray


@dataclass
class _Trajectory:
    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray
    start: float | None = None  # stream time of the first sample (set on the first tick)
    stopping: bool = False
    done: bool = False


class ArmStreamer:
    """The arm_sdk weight/target state machine (see the module docstring). Thread-safe.

    Args:
        lower_rad: (17,) joint lower limits the targets are clipped to.
        upper_rad: (17,) upper limits.
        velocity_limit_rad_s: (17,) largest target change per second.
        period_s: tick period (s).
        ramp_in_s: weight ramp-in time (s, ≥ 1).
        ramp_out_s: weight ramp-out time (s, ≥ 1).
        fault_ramp_out_s: ramp-out time on a fault (stale state), s.
        stop_s: a smooth stop brings the targets to rest within this time (s).

    Raises:
        ValueError: a ramp shorter than 1 s, or inconsistent limits.
    """

    def __init__(
        self,
        lower_rad: np.ndarray,
        upper_rad: np.ndarray,
        velocity_limit_rad_s: np.ndarray,
        period_s: float = 0.02,
        ramp_in_s: float = 1.0,
        ramp_out_s: float = 1.0,
        fault_ramp_out_s: float = 0.1,
        stop_s: float = 0.3,
    ) -> None:
        if ramp_in_s < 1.0 or ramp_out_s < 1.0:
            raise ValueError(
                f'arm_sdk weight ramps must take >= 1 s (in {ramp_in_s} s, out {ramp_out_s} s)'
            )
        self.lower = np.asarray(lower_rad, dtype=float)
        self.upper = np.asarray(upper_rad, dtype=float)
        self.vmax = np.asarray(velocity_limit_rad_s, dtype=float)
        if np.any(self.lower >= self.upper) or np.any(self.vmax <= 0):
            raise ValueError('joint limits must be ordered and velocity limits positive')
        self.period_s = float(period_s)
        self.ramp_in_s = float(ramp_in_s)
        self.ramp_out_s = float(ramp_out_s)
        self.fault_ramp_out_s = float(fault_ramp_out_s)
        self.stop_s = float(stop_s)
        self._lock = threading.Lock()
        self.state = StreamState.IDLE
        self.weight = 0.0
        self._ramp_rate = 0.0
        self._target: np.ndarray | None = None
        self._velocity = np.zeros_like(self.lower)
        self._traj: _Trajectory | None = None
        self._want_active = False
        self._elapsed = 0.0
        self.fault = ''

    # --- requests (any thread) -----------------------------------------------------------
    def engage(self) -> None:
        """Ask for the arms: ramp the weight in (from the next tick with a fresh state)."""
        with self._lock:
            self._want_active = True
            self.fault = ''

    def release(self, fault: str = '') -> None:
        """Hand the arms back: ramp the weight out (fast when ``fault`` says why)."""
        with self._lock:
            self._want_active = False
            if self._traj is not None:
                self._traj.done = True
                self._traj = None
            if fault:
                self.fault = fault
            if self.state in (StreamState.RAMP_IN, StreamState.ACTIVE, StreamState.RAMP_OUT):
                duration = self.fault_ramp_out_s if fault else self.ramp_out_s
                rate = max(self.weight, 1e-9) / max(duration, self.period_s)
                if self.state != StreamState.RAMP_OUT or rate > self._ramp_rate:
                    self._ramp_rate = rate
                self.state = StreamState.RAMP_OUT

    def follow(self, times: np.ndarray, positions: np.ndarray, velocities: np.ndarray) -> None:
        """Follow a trajectory (replaces the current one); requires :meth:`engage` first.

        Raises:
            RuntimeError: the arms are not engaged (weight not in or ramping in).
            ValueError: bad shapes or non-finite values.
        """
        t = np.asarray(times, dtype=float).reshape(-1)
        p = np.asarray(positions, dtype=float)
        v = np.asarray(velocities, dtype=float)
        if p.shape != (len(t), len(self.lower)) or v.shape != p.shape:
            raise ValueError(f'trajectory shapes {t.shape}, {p.shape}, {v.shape} do not match')
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p)) and np.all(np.isfinite(v))):
            raise ValueError('trajectory has non-finite values')
        with self._lock:
            if not self._want_active:
                raise RuntimeError('the arms are not engaged')
            self._traj = _Trajectory(t, p, v)

    def stop(self) -> None:
        """Stop the current trajectory smoothly (the targets decelerate to rest)."""
        with self._lock:
            if self._traj is not None:
                self._traj.stopping = True

    # --- queries -------------------------------------------------------------------------
    @property
    def engaged(self) -> bool:
        """The weight is fully in and the stream follows our targets."""
        return self.state is StreamState.ACTIVE

    def trajectory_finished(self) -> bool:
        """The last trajectory ended (or was stopped and came to rest, or was dropped)."""
        with self._lock:
            return self._traj is None or self._traj.done

    def trajectory_progress(self) -> float:
        """Fraction of the current trajectory's duration elapsed (1 when none)."""
        with self._lock:
            tr = self._traj
            if tr is None or tr.done or tr.start is None:
                return 1.0 if tr is None or tr.done else 0.0
            return float(min(1.0, self._elapsed / max(tr.times[-1], 1e-9)))

    @property
    def target(self) -> np.ndarray | None:
        """The last commanded targets (rad), if any."""
        with self._lock:
            return None if self._target is None else self._target.copy()

    # --- the tick ------------------------------------------------------------------------
    def tick(self, now: float, measured_q: np.ndarray | None, fresh: bool) -> ArmCommand | None:
        """Advance one period; the command to send now (None: send nothing).

        Args:
            now: stream time (s, monotonic).
            measured_q: (17,) measured upper-body joints from the latest state, if any.
            fresh: the latest robot state is fresh (not older than the stale limit).

        Returns:
            The command, or None in ``idle`` (and while waiting for a fresh state to ramp in).
        """
        with self._lock:
            return self._tick(now, measured_q, fresh)

    def _tick(self, now: float, measured: np.ndarray | None, fresh: bool) -> ArmCommand | None:
        dt = self.period_s
        if not fresh and self.state in (StreamState.RAMP_IN, StreamState.ACTIVE):
            # never follow a trajectory on stale state: fall back to the standing controller
            self._want_active = False
            self.fault = self.fault or 'robot state is stale'
            if self._traj is not None:
                self._traj.done = True
                self._traj = None
            self._ramp_rate = max(self.weight, 1e-9) / max(self.fault_ramp_out_s, dt)
            self.state = StreamState.RAMP_OUT
        if self.state is StreamState.IDLE:
            if not (self._want_active and fresh and measured is not None):
                return None
            self._target = np.clip(np.asarray(measured, dtype=float), self.lower, self.upper)
            self._velocity[:] = 0.0
            self.weight = 0.0
            self.state = StreamState.RAMP_IN
        if self.state is StreamState.RAMP_IN:
            self.weight = min(1.0, self.weight + dt / self.ramp_in_s)
            if self.weight >= 1.0:
                self.state = StreamState.ACTIVE
            return self._command()
        if self.state is StreamState.RAMP_OUT:
            self.weight = max(0.0, self.weight - self._ramp_rate * dt)
            self._velocity[:] = 0.0
            cmd = self._command()
            if self.weight <= 0.0:
                self.state = StreamState.IDLE  # engage() meanwhile: ramps in on a later tick
            return cmd
        # ACTIVE
        tr = self._traj
        assert self._target is not None
        if tr is not None and not tr.done:
            if tr.start is None:
                tr.start = now
                self._elapsed = 0.0
            self._elapsed = now - tr.start
            if tr.stopping:
                self._decelerate(dt)
                if not np.any(self._velocity):
                    tr.done = True
            else:
                want = self._sample(tr, self._elapsed)
                step = np.clip(want - self._target, -self.vmax * dt, self.vmax * dt)
                self._velocity = step / dt
                self._target = np.clip(self._target + step, self.lower, self.upper)
                final = np.clip(tr.positions[-1], self.lower, self.upper)
                if self._elapsed >= tr.times[-1] and np.allclose(self._target, final, atol=1e-6):
                    tr.done = True
                    self._velocity[:] = 0.0
        else:
            self._velocity[:] = 0.0
        return self._command()

    def _sample(self, tr: _Trajectory, t: float) -> np.ndarray:
        if t >= tr.times[-1]:
            return tr.positions[-1]
        i = int(np.searchsorted(tr.times, t, side='right')) - 1
        i = max(0, min(i, len(tr.times) - 2))
        f = (t - tr.times[i]) / max(tr.times[i + 1] - tr.times[i], 1e-9)
        return tr.positions[i] + f * (tr.positions[i + 1] - tr.positions[i])

    def _decelerate(self, dt: float) -> None:
        # Each joint slows at the rate that stops its fastest allowed motion within stop_s.
        dec = self.vmax / max(self.stop_s, dt) * dt
        v = self._velocity
        v = np.sign(v) * np.maximum(np.abs(v) - dec, 0.0)
        self._velocity = v
        assert self._target is not None
        self._target = np.clip(self._target + v * dt, self.lower, self.upper)

    def _command(self) -> ArmCommand:
        assert self._target is not None
        return ArmCommand(float(self.weight), self._target.copy(), self._velocity.copy())
