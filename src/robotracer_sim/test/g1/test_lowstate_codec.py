"""The fast rt/lowstate encoder writes exactly what the Unitree SDK would put on the wire."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip('unitree_sdk2py', reason='needs unitree-sdk2py (scripts/setup_cyclonedds.sh)')

from unitree_sdk2py.idl.default import unitree_hg_msg_dds__LowState_  # noqa: E402
from unitree_sdk2py.utils.crc import CRC  # noqa: E402

from robotracer_sim.g1.lowstate_codec import LowStateEncoder, _load_crc_core, crc32_words  # noqa: E402


def _sdk_message(tick, q, dq, ddq, tau, quat, gyro, acc, rpy, mode_machine):
    f32 = lambda v: float(np.float32(v))  # noqa: E731 - what the wire holds
    m = unitree_hg_msg_dds__LowState_()
    m.mode_machine = mode_machine
    m.tick = tick
    for i in range(len(q)):
        ms = m.motor_state[i]
        ms.mode = 1
        ms.q, ms.dq, ms.ddq, ms.tau_est = f32(q[i]), f32(dq[i]), f32(ddq[i]), f32(tau[i])
    m.imu_state.quaternion = [f32(v) for v in quat]
    m.imu_state.gyroscope = [f32(v) for v in gyro]
    m.imu_state.accelerometer = [f32(v) for v in acc]
    m.imu_state.rpy = [f32(v) for v in rpy]
    return m


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_encoder_matches_sdk_serialization_and_crc(seed):
    rng = np.random.default_rng(seed)
    q, dq, ddq, tau = (rng.normal(scale=2.0, size=29) for _ in range(4))
    quat = rng.normal(size=4)
    gyro, acc, rpy = (rng.normal(size=3) for _ in range(3))
    tick = int(rng.integers(0, 2**32))
    cdr, crc = LowStateEncoder(mode_machine=5).encode(tick, q, dq, ddq, tau, quat, gyro, acc, rpy)
    msg = _sdk_message(tick, q, dq, ddq, tau, quat, gyro, acc, rpy, 5)
    assert crc == CRC().Crc(msg), 'our CRC differs from the robot SDK CRC'
    msg.crc = crc
    ser = msg.serialize()
    assert cdr == ser.ljust((len(ser) + 3) & ~3, b'\0')
    # And a client decodes it to the values we meant.
    back = type(msg).deserialize(cdr)
    assert back.tick == tick and back.crc == crc
    assert np.allclose([back.motor_state[i].q for i in range(29)], q, atol=1e-5)


def test_python_crc_equals_the_sdk_library():
    words = np.random.default_rng(3).integers(0, 2**32, size=64, dtype=np.uint64).astype(np.uint32)
    core = _load_crc_core()
    assert core is not None, 'the SDK ships crc_amd64.so; it should load'
    assert crc32_words(words) == crc32_words(words, core)
    assert crc32_words(words[:10]) != crc32_words(words[1:11])
