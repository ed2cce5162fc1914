"""Fast encoder of unitree_hg ``LowState_`` samples: CDR bytes and the SDK's CRC from numpy.

Design notes: docs/design-notes.md (robotracer_sim.g1.lowstate_codec).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

NUM_MOTORS = 35
_MOTOR_FIELDS = (  # name, size, count  (unitree_hg MotorState_)
    ('mode', 1, 1),
    ('q', 4, 1),
    ('dq', 4, 1),
    ('ddq', 4, 1),
    ('tau_est', 4, 1),
    ('temperature', 2, 2),
    ('vol', 4, 1),
    ('sensor', 4, 2),
    ('motorstate', 4, 1),
    ('reserve', 4, 4),
)
_IMU_FIELDS = (  # unitree_hg IMUState_
    ('quaternion', 4, 4),
    ('gyroscope', 4, 3),
    ('accelerometer', 4, 3),
    ('rpy', 4, 3),
    ('temperature', 2, 1),
)


def _layout(c_struct: bool) -> tuple[dict[str, np.ndarray], int]:
    """Byte offsets of every LowState_ field element.

    Args:
        c_struct: True for the C memory layout (structs aligned and padded to 4 bytes, what
            the SDK's CRC packs); False for CDR (each primitive aligned to its size).

    Returns:
        ``{field: offsets}`` (``motor.q`` has 35 offsets, ``imu.rpy`` 3, ...) and the size.

    """
    off = 0
    out: dict[str, list[int]] = {}

    def field(name: str, size: int, count: int) -> None:
        nonlocal off
        off = (off + size - 1) // size * size
        out.setdefault(name, []).extend(off + size * i for i in range(count))
        off += size * count

    def struct_edge() -> None:
        nonlocal off
        if c_struct:
            off = (off + 3) // 4 * 4

    field('version', 4, 2)
    field('mode_pr', 1, 1)
    field('mode_machine', 1, 1)
    field('tick', 4, 1)
    struct_edge()
    for name, size, count in _IMU_FIELDS:
        field('imu.' + name, size, count)
    struct_edge()
    for _ in range(NUM_MOTORS):
        struct_edge()
        for name, size, count in _MOTOR_FIELDS:
            field('motor.' + name, size, count)
        struct_edge()
    field('wireless_remote', 1, 40)
    field('reserve', 4, 4)
    field('crc', 4, 1)
    struct_edge()
    return {k: np.array(v) for k, v in out.items()}, off


@dataclass
class _Views:
    u8: np.ndarray
    i16: np.ndarray
    u32: np.ndarray
    f32: np.ndarray


def _views(buf: np.ndarray) -> _Views:
    return _Views(buf, buf.view(np.int16), buf.view(np.uint32), buf.view(np.float32))


def _load_crc_core():
    """The SDK's ``crc32_core(uint32_t*, uint32_t)`` (None where it is not shipped)."""
    try:
        from unitree_sdk2py.utils.crc import CRC

        lib = CRC().crc_lib
        lib.crc32_core.argtypes = (ctypes.POINTER(ctypes.c_uint32), ctypes.c_uint32)
        lib.crc32_core.restype = ctypes.c_uint32
        return lib.crc32_core
    except Exception:  # noqa: BLE001 - any import/load problem means: use the Python CRC
        return None


def crc32_words(words: np.ndarray, core=None) -> int:
    """Unitree's CRC-32 over 32-bit words (MSB first, polynomial 0x04C11DB7, init ~0).

    Args:
        words: the uint32 words.
        core: the SDK's ``crc32_core`` (ctypes); pure Python when None.

    Returns:
        The CRC.

    """
    w = np.ascontiguousarray(words, dtype=np.uint32)
    if core is not None:
        return int(core(w.ctypes.data_as(ctypes.POINTER(ctypes.c_uint32)), len(w)))
    crc = 0xFFFFFFFF
    poly = 0x04C11DB7
    for current in w.tolist():
        bit = 1 << 31
        for _ in range(32):
            crc = ((crc << 1) & 0xFFFFFFFF) ^ (poly if crc & 0x80000000 else 0)
            if current & bit:
                crc ^= poly
            bit >>= 1
    return crc


class LowStateEncoder:
    """Encode hg ``LowState_`` samples from arrays (reusing preallocated buffers).

    Args:
        mode_machine: robot type code echoed in every sample.
        mode_pr: ankle/waist control mode (0 = PR).

    """

    HEADER = b'\x00\x01\x00\x00'  # CDR little-endian encapsulation, no options

    def __init__(self, mode_machine: int = 5, mode_pr: int = 0) -> None:
        self._cdr_off, cdr_size = _layout(c_struct=False)
        self._c_off, c_size = _layout(c_struct=True)
        cdr_size = (cdr_size + 3) // 4 * 4
        self._cdr = np.zeros(4 + cdr_size, dtype=np.uint8)
        self._cdr[:4] = np.frombuffer(self.HEADER, dtype=np.uint8)
        self._c = np.zeros(c_size, dtype=np.uint8)
        self._cdr_v = _views(self._cdr)
        self._c_v = _views(self._c)
        self._core = _load_crc_core()
        for v, off, base in ((self._cdr_v, self._cdr_off, 4), (self._c_v, self._c_off, 0)):
            v.u8[base + off['mode_pr']] = mode_pr
            v.u8[base + off['mode_machine']] = mode_machine
            v.u8[base + off['motor.mode'][:29]] = 1  # servo enabled

    def _write(self, v: _Views, off: dict[str, np.ndarray], base: int, vals: dict) -> None:
        for name, arr in vals.items():
            idx = off[name] + base
            if name == 'tick' or name == 'crc':
                v.u32[idx // 4] = arr
            elif name == 'imu.temperature':
                v.i16[idx // 2] = arr
            else:
                v.f32[idx[: len(arr)] // 4] = arr

    def encode(
        self,
        tick: int,
        q: np.ndarray,
        dq: np.ndarray,
        ddq: np.ndarray,
        tau: np.ndarray,
        quat_wxyz: np.ndarray,
        gyro: np.ndarray,
        accel: np.ndarray,
        rpy: np.ndarray,
    ) -> tuple[bytes, int]:
        """Encode one sample.

        Args:
            tick: millisecond tick (uint32).
            q: joint positions of the first ``len(q)`` motors (≤ 35), rad.
            dq: joint velocities, rad/s.
            ddq: joint accelerations, rad/s^2.
            tau: estimated torques, N m.
            quat_wxyz: IMU orientation (w, x, y, z).
            gyro: IMU angular velocity, rad/s.
            accel: IMU specific force, m/s^2.
            rpy: IMU roll, pitch, yaw, rad.

        Returns:
            ``(cdr, crc)``: the serialized sample (header included, crc field filled) and the
            CRC value.

        """
        vals = {
            'tick': np.uint32(tick & 0xFFFFFFFF),
            'motor.q': np.asarray(q, dtype=np.float32),
            'motor.dq': np.asarray(dq, dtype=np.float32),
            'motor.ddq': np.asarray(ddq, dtype=np.float32),
            'motor.tau_est': np.asarray(tau, dtype=np.float32),
            'imu.quaternion': np.asarray(quat_wxyz, dtype=np.float32),
            'imu.gyroscope': np.asarray(gyro, dtype=np.float32),
            'imu.accelerometer': np.asarray(accel, dtype=np.float32),
            'imu.rpy': np.asarray(rpy, dtype=np.float32),
        }
        self._write(self._c_v, self._c_off, 0, vals)
        n_words = int(self._c_off['crc'][0]) // 4
        crc = crc32_words(self._c_v.u32[:n_words], self._core)
        vals['crc'] = np.uint32(crc)
        self._write(self._cdr_v, self._cdr_off, 4, vals)
        return self._cdr.tobytes(), crc
