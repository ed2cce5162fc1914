"""The G1 head camera in its own process, fed the world's state through shared memory.

Design notes: docs/design-notes.md (robotracer_sim.g1.camera_process).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
import json
import mmap
import os
import subprocess
import tempfile
import threading
import time
from typing import Any

import mujoco
import numpy as np

from robotracer_sim.common.render import RgbdRenderer
from robotracer_sim.oracle.geometry import MJ_CAMERA_TO_OPTICAL

#: The child's exit code when it cannot render at all (no OpenGL): it is not restarted.
EXIT_NO_RENDERER = 3
#: Frame report layout: frames, simulation time, wall time, 4×4 optical pose (row-major).
FRAME_RECORD_SIZE = 3 + 16

Logger = Callable[[str, str], None]  # (level: 'info' | 'warn' | 'error', message)


def _anonymous_file(name: str, size: int) -> int:
    """A file descriptor of an anonymous, RAM-backed file of ``size`` bytes (inheritable)."""
    if hasattr(os, 'memfd_create'):
        fd = os.memfd_create(name, 0)  # no MFD_CLOEXEC: the child inherits it
    else:  # pragma: no cover - non-Linux
        f = tempfile.TemporaryFile()
        fd = os.dup(f.fileno())
        f.close()
    os.ftruncate(fd, size)
    os.set_inheritable(fd, True)
    return fd


class SharedRecord:
    """A fixed-size float64 record in shared memory: one writer, any number of readers.

    Args:
        fd: file descriptor of the shared file (at least ``8 * (size + 1)`` bytes).
        size: number of float64 values.

    """

    def __init__(self, fd: int, size: int) -> None:
        self.size = size
        self._mm = mmap.mmap(fd, 8 * (size + 1))
        self._seq = np.frombuffer(self._mm, dtype=np.uint64, count=1)
        self._data = np.frombuffer(self._mm, dtype=np.float64, count=size, offset=8)

    @classmethod
    def create(cls, name: str, size: int) -> tuple[SharedRecord, int]:
        """A new zeroed record and its (inheritable) file descriptor."""
        fd = _anonymous_file(name, 8 * (size + 1))
        return cls(fd, size), fd

    def write(self, values: np.ndarray) -> None:
        """Publish ``values`` (the single writer only)."""
        seq = int(self._seq[0])
        self._seq[0] = seq + 1  # odd: being written
        self._data[:] = values
        self._seq[0] = seq + 2

    @property
    def sequence(self) -> int:
        """How many times the record was written, times two (0: never)."""
        return int(self._seq[0])

    def read(self, retries: int = 1000) -> np.ndarray | None:
        """A consistent copy of the record; None if it was never written (or kept changing)."""
        for _ in range(retries):
            seq = int(self._seq[0])
            if seq == 0:
                return None
            if seq & 1:
                time.sleep(0)
                continue
            out = self._data.copy()
            if int(self._seq[0]) == seq:
                return out
        return None

    def close(self) -> None:
        """Unmap (the record is unusable afterwards)."""
        del self._seq, self._data
        self._mm.close()


@dataclass(frozen=True)
class StateLayout:
    """How a render state is packed: sim time, wall time, ``qpos``, mocap positions, quats."""

    nq: int
    nmocap: int

    @property
    def size(self) -> int:
        """Number of float64 values."""
        return 2 + self.nq + 7 * self.nmocap

    def pack(self, out: np.ndarray, sim_time: float, wall_time: float, data: Any) -> None:
        """Fill ``out`` from a ``mujoco.MjData``."""
        nq, nm = self.nq, self.nmocap
        out[0], out[1] = sim_time, wall_time
        out[2 : 2 + nq] = data.qpos
        out[2 + nq : 2 + nq + 3 * nm] = data.mocap_pos.reshape(-1)
        out[2 + nq + 3 * nm :] = data.mocap_quat.reshape(-1)

    def unpack(self, state: np.ndarray, data: Any) -> tuple[float, float]:
        """Write a packed state into a ``mujoco.MjData``; returns ``(sim_time, wall_time)``."""
        nq, nm = self.nq, self.nmocap
        data.qpos[:] = state[2 : 2 + nq]
        data.mocap_pos[:] = state[2 + nq : 2 + nq + 3 * nm].reshape(nm, 3)
        data.mocap_quat[:] = state[2 + nq + 3 * nm :].reshape(nm, 4)
        data.time = float(state[0])
        return float(state[0]), float(state[1])


@dataclass(frozen=True)
class RenderSpec:
    """What the child renders: the model camera, the image size and depth range."""

    camera_id: int
    width: int
    height: int
    depth_max: float
    max_geoms: int = 10000


class StateRenderer:
    """Render the head camera for packed world states (in the camera process).

    Args:
        model: the world's model (a copy: only kinematics and rendering are run on it).
        layout: how states are packed.
        spec: camera and image.

    Raises:
        RuntimeError: no OpenGL context (set ``MUJOCO_GL=egl``).

    """

    def __init__(self, model: mujoco.MjModel, layout: StateLayout, spec: RenderSpec) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self.layout = layout
        self.spec = spec
        self._renderer = RgbdRenderer(
            model, spec.camera_id, spec.width, spec.height, spec.depth_max, spec.max_geoms
        )

    def render(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
        """Render one state.

        Returns:
            ``(rgb, depth, t_world_camera, sim_time, wall_time)``: (H, W, 3) uint8, (H, W)
            float32 z-depth in metres (0 = no return), the 4×4 optical-frame pose in the world
            and the times at which the physics process wrote the state.

        """
        m, d = self.model, self.data
        sim_time, wall_time = self.layout.unpack(state, d)
        mujoco.mj_kinematics(m, d)
        mujoco.mj_camlight(m, d)
        cam = self.spec.camera_id
        pose = np.eye(4)
        pose[:3, :3] = d.cam_xmat[cam].reshape(3, 3) @ MJ_CAMERA_TO_OPTICAL
        pose[:3, 3] = d.cam_xpos[cam]
        self._renderer.update(d)
        rgb, depth = self._renderer.render()
        return rgb, depth, pose, sim_time, wall_time

    def close(self) -> None:
        """Free the OpenGL resources."""
        self._renderer.close()


class CameraLink:
    """The camera process's end: shared state, frame reports, model, parent-alive pipe.

    Args:
        spec: the JSON object :class:`CameraFeed` passes on the child's command line.

    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.layout = StateLayout(int(spec['nq']), int(spec['nmocap']))
        self.render_spec = RenderSpec(**spec['render'])
        self.rate = float(spec['rate'])
        self.node = dict(spec.get('node', {}))
        self._state = SharedRecord(int(spec['state_fd']), self.layout.size)
        self._frames = SharedRecord(int(spec['frame_fd']), FRAME_RECORD_SIZE)
        self._report = np.zeros(FRAME_RECORD_SIZE)
        self._count = int(spec.get('frames_before', 0))  # frames keep counting over restarts
        self.nice = int(spec.get('nice', 0))

    def load_model(self) -> mujoco.MjModel:
        """The world's model, as the parent saved it."""
        fd = int(self.spec['model_fd'])
        size = int(self.spec['model_size'])
        parts, got = [], 0
        while got < size:
            part = os.pread(fd, size - got, got)
            if not part:
                raise OSError(f'model truncated: {got} of {size} bytes')
            parts.append(part)
            got += len(part)
        os.close(fd)
        blob = b''.join(parts)
        return mujoco.MjModel.from_binary_path('g1_world.mjb', {'g1_world.mjb': blob})

    def renderer(self) -> StateRenderer:
        """A :class:`StateRenderer` for the parent's model and camera.

        Raises:
            RuntimeError: no OpenGL context.

        """
        return StateRenderer(self.load_model(), self.layout, self.render_spec)

    def wait_state(self, stop: threading.Event, timeout: float = 30.0) -> np.ndarray | None:
        """The latest world state (waits for the first one); None when stopped or timed out."""
        deadline = time.monotonic() + timeout
        while not stop.is_set():
            state = self._state.read()
            if state is not None:
                return state
            if time.monotonic() > deadline:
                return None
            stop.wait(0.01)
        return None

    def report_frame(self, sim_time: float, wall_time: float, pose: np.ndarray) -> None:
        """Tell the parent a frame of this pose went out."""
        self._count += 1
        r = self._report
        r[0], r[1], r[2] = self._count, sim_time, wall_time
        r[3:] = np.asarray(pose, dtype=float).reshape(-1)
        self._frames.write(r)

    def watch_parent(self, on_gone: Callable[[], None]) -> None:
        """Call ``on_gone`` once (daemon thread) when the parent closes the pipe or dies."""
        fd = int(self.spec['alive_fd'])

        def wait() -> None:
            try:
                while os.read(fd, 64):
                    pass
            except OSError:
                pass
            on_gone()

        threading.Thread(target=wait, name='parent_watch', daemon=True).start()


class CameraFeed:
    """The physics process's end: start the camera process, feed it states, read its frames.

    Args:
        world: the world (``model``, ``data``, ``lock``, ``time``).
        render: the camera to render.
        rate: frames per second.
        command: the child's command line without its last argument (the JSON spec), e.g.
            ``[sys.executable, '-m', 'robotracer_sim.nodes.g1_world_node', '--camera-process']``.
        node: extra JSON-able settings for the child (its ROS side), passed through.
        nice: the child's niceness (0..19; the physics and DDS process may run at a higher
            priority than ordinary processes, the camera does not).
        log: ``log(level, message)``.
        max_restarts: restarts of a child that died, before giving up.

    """

    def __init__(
        self,
        world: Any,
        render: RenderSpec,
        rate: float,
        command: Sequence[str],
        node: dict[str, Any] | None = None,
        nice: int = 0,
        log: Logger | None = None,
        max_restarts: int = 5,
    ) -> None:
        self.world = world
        self.render = render
        self.rate = float(rate)
        self.command = list(command)
        self.node = dict(node or {})
        self.nice = int(nice)
        self._log = log or (lambda level, msg: print(f'[camera] [{level}] {msg}', flush=True))
        self.max_restarts = max_restarts
        self.layout = StateLayout(int(world.model.nq), int(world.model.nmocap))
        self._state, self._state_fd = SharedRecord.create('g1_camera_state', self.layout.size)
        self._frames, self._frame_fd = SharedRecord.create('g1_camera_frames', FRAME_RECORD_SIZE)
        self._buf = np.zeros(self.layout.size)
        with world.lock:
            blob = np.zeros(mujoco.mj_sizeModel(world.model), dtype=np.uint8)
            mujoco.mj_saveModel(world.model, None, blob)
        self._model_size = int(blob.size)
        self._model_fd = _anonymous_file('g1_camera_model', self._model_size)
        os.pwrite(self._model_fd, blob.tobytes(), 0)
        del blob
        self._proc: subprocess.Popen | None = None
        self._alive_w: int | None = None
        self._stop = threading.Event()
        self._first_frame = threading.Event()
        self._monitor: threading.Thread | None = None
        self.restarts = 0
        self.failed: str | None = None

    # ------------------------------------------------------------------ physics side

    def write_state(self) -> None:
        """Copy the world's render state to shared memory (call after each physics tick)."""
        w = self.world
        with w.lock:
            self.layout.pack(self._buf, w.time, time.time(), w.data)
        self._state.write(self._buf)

    # ------------------------------------------------------------------ frames

    @property
    def frames(self) -> int:
        """Frames the camera process published so far (over all its restarts)."""
        r = self._frames.read()
        return 0 if r is None else int(r[0])

    def last_frame(self) -> tuple[int, float, float, np.ndarray] | None:
        """``(frames, sim_time, wall_time, t_world_camera)`` of the last frame; None before."""
        r = self._frames.read()
        if r is None:
            return None
        return int(r[0]), float(r[1]), float(r[2]), r[3:].reshape(4, 4)

    def wait_first_frame(self, timeout: float) -> bool:
        """Block until the first frame was published (False: timed out or the camera failed)."""
        deadline = time.monotonic() + timeout
        while not self._first_frame.wait(0.1):
            if self.failed or time.monotonic() > deadline:
                return False
        return True

    # ------------------------------------------------------------------ process

    def start(self, on_first_frame: Callable[[], None] | None = None) -> None:
        """Start the camera process and the thread that supervises it."""
        self._spawn()
        self._monitor = threading.Thread(
            target=self._supervise, args=(on_first_frame,), name='camera_supervisor', daemon=True
        )
        self._monitor.start()

    @property
    def pid(self) -> int | None:
        """The camera process's id (None when not running)."""
        return self._proc.pid if self._proc is not None else None

    def _spawn(self) -> None:
        r, w = os.pipe()
        os.set_inheritable(r, True)
        spec = {
            'nq': self.layout.nq,
            'nmocap': self.layout.nmocap,
            'state_fd': self._state_fd,
            'frame_fd': self._frame_fd,
            'model_fd': self._model_fd,
            'model_size': self._model_size,
            'alive_fd': r,
            'rate': self.rate,
            'render': self.render.__dict__,
            'node': self.node,
            'frames_before': self.frames,
            'nice': self.nice,
        }
        try:
            self._proc = subprocess.Popen(
                [*self.command, json.dumps(spec)],
                pass_fds=(self._state_fd, self._frame_fd, self._model_fd, r),
            )
        finally:
            os.close(r)
        self._alive_w = w

    def _supervise(self, on_first_frame: Callable[[], None] | None) -> None:
        while not self._stop.wait(0.1):
            if not self._first_frame.is_set() and self.frames > 0:
                self._first_frame.set()
                if on_first_frame is not None:
                    on_first_frame()
            proc = self._proc
            if proc is None or proc.poll() is None:
                continue
            code = proc.returncode
            self._close_pipe()
            if self._stop.is_set():
                return
            if code == EXIT_NO_RENDERER:
                self.failed = 'no OpenGL context for the head camera (set MUJOCO_GL=egl)'
                self._log('error', f'head camera unavailable: {self.failed}')
                return
            if self.restarts >= self.max_restarts:
                self.failed = f'camera process exited with code {code} {self.restarts + 1} times'
                self._log('error', f'{self.failed}: giving up, no more images')
                return
            self.restarts += 1
            self._log(
                'error',
                f'camera process exited with code {code}; restarting it '
                f'({self.restarts}/{self.max_restarts})',
            )
            if self._stop.wait(1.0):
                return
            self._spawn()

    def _close_pipe(self) -> None:
        if self._alive_w is not None:
            os.close(self._alive_w)
            self._alive_w = None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the camera process (it exits when its pipe closes; killed after ``timeout``)."""
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(timeout=2.0)
        self._close_pipe()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def close(self) -> None:
        """Stop and release the shared memory."""
        self.stop()
        for fd in (self._state_fd, self._frame_fd, self._model_fd):
            try:
                os.close(fd)
            except OSError:
                pass
