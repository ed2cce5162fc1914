"""robotracer_ros.cdr against rclpy's own serialization (every alignment case)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip('rclpy')

from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from robotracer_ros import cdr, images  # noqa: E402


def _image(frame_id: str, encoding: str, arr: np.ndarray, sec: int, nsec: int) -> Image:
    f = images.numpy_to_image_fields(arr, encoding)
    m = Image(encoding=f.encoding, height=f.height, width=f.width, step=f.step, data=f.data)
    m.header.frame_id = frame_id
    m.header.stamp.sec, m.header.stamp.nanosec = sec, nsec
    return m


@pytest.mark.parametrize('frame_id', ['', 'a', 'ab', 'abc', 'abcd', 'camera_color_optical_frame'])
@pytest.mark.parametrize('encoding', ['rgb8', '16UC1', '32FC1', 'mono8'])
def test_parse_image_reads_what_rclpy_serialized(frame_id, encoding):
    rng = np.random.default_rng(len(frame_id))
    shape = (3, 5, 3) if encoding == 'rgb8' else (3, 5)
    dtype = {'rgb8': np.uint8, 'mono8': np.uint8, '16UC1': np.uint16, '32FC1': np.float32}
    arr = (rng.random(shape) * 200).astype(dtype[encoding])
    msg = _image(frame_id, encoding, arr, 1_796_000_123, 456_789_000)
    raw = serialize_message(msg)
    got = cdr.parse_image(raw)
    assert got.frame_id == frame_id and got.encoding == encoding
    assert (got.height, got.width, got.step, got.is_bigendian) == (
        msg.height,
        msg.width,
        msg.step,
        msg.is_bigendian,
    )
    assert got.stamp_s == pytest.approx(1_796_000_123.456789, abs=1e-6)
    assert bytes(got.data) == bytes(msg.data)
    back = images.image_to_numpy(
        got.encoding, got.height, got.width, got.step, got.data, got.is_bigendian
    )
    np.testing.assert_array_equal(back, arr)
    assert cdr.stamp_of(raw) == got.stamp_s


def test_stamp_of_any_message_with_a_header():
    info = CameraInfo(width=640, height=480)
    info.header.stamp.sec, info.header.stamp.nanosec = 42, 500_000_000
    assert cdr.stamp_of(serialize_message(info)) == 42.5


def test_truncated_or_foreign_buffers_are_refused_naming_the_field():
    raw = serialize_message(_image('cam', 'mono8', np.zeros((4, 4), np.uint8), 1, 2))
    with pytest.raises(ValueError, match='data needs bytes'):
        cdr.parse_image(raw[:-3])
    with pytest.raises(ValueError, match='encoding'):
        cdr.parse_image(raw[:30])
    with pytest.raises(ValueError, match='unknown CDR encapsulation 7b22'):
        cdr.parse_image(b'{"not": "cdr"}')
    with pytest.raises(ValueError, match='at least 4 bytes'):
        cdr.parse_image(b'\x00')
