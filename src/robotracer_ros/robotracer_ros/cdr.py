"""Read a serialized ``sensor_msgs/Image`` (CDR) without building a Python message.

A subscription created with ``raw=True`` hands its callback the message as rmw serialized it:
the 4-byte CDR encapsulation header, then the fields in order, each aligned to its own size
relative to the end of that header. Reading the few scalar fields here and viewing the pixel
data in place (a ``memoryview`` of the received buffer, no copy) costs microseconds, where
rclpy's conversion into a ``sensor_msgs.msg.Image`` copies the pixels into a Python
``array`` first. ``rclpy.serialization.deserialize_message`` gives the same values (tested).

Design notes: docs/design-notes.md (robotracer_ros.cdr).
"""

from __future__ import annotations

from dataclasses import dataclass
import struct

_LITTLE = (b'\x00\x01', b'\x00\x03')  # CDR_LE, PL_CDR_LE
_BIG = (b'\x00\x00', b'\x00\x02')  # CDR_BE, PL_CDR_BE


@dataclass(frozen=True)
class CdrImage:
    """The fields of a serialized ``sensor_msgs/Image``; ``data`` views the raw buffer."""

    stamp_s: float
    frame_id: str
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview


class _Reader:
    def __init__(self, raw: bytes | memoryview) -> None:
        self.buf = memoryview(raw).cast('B')
        if len(self.buf) < 4:
            raise ValueError(f'a serialized message needs at least 4 bytes, got {len(self.buf)}')
        head = bytes(self.buf[:2])
        if head in _LITTLE:
            self.order = '<'
        elif head in _BIG:
            self.order = '>'
        else:
            raise ValueError(f'unknown CDR encapsulation {head.hex()}')
        self.pos = 4

    def _align(self, n: int) -> None:
        self.pos += (-(self.pos - 4)) % n

    def _need(self, n: int, what: str) -> None:
        if self.pos + n > len(self.buf):
            raise ValueError(
                f'serialized Image ends at byte {len(self.buf)}, {what} needs bytes '
                f'{self.pos}..{self.pos + n}'
            )

    def u32(self, what: str) -> int:
        self._align(4)
        self._need(4, what)
        (v,) = struct.unpack_from(self.order + 'I', self.buf, self.pos)
        self.pos += 4
        return v

    def i32(self, what: str) -> int:
        self._align(4)
        self._need(4, what)
        (v,) = struct.unpack_from(self.order + 'i', self.buf, self.pos)
        self.pos += 4
        return v

    def u8(self, what: str) -> int:
        self._need(1, what)
        v = self.buf[self.pos]
        self.pos += 1
        return v

    def string(self, what: str) -> str:
        n = self.u32(what + ' length')
        self._need(n, what)
        text = bytes(self.buf[self.pos : self.pos + n]).rstrip(b'\x00')
        self.pos += n
        return text.decode('utf-8', errors='replace')

    def octets(self, what: str) -> memoryview:
        n = self.u32(what + ' length')
        self._need(n, what)
        view = self.buf[self.pos : self.pos + n]
        self.pos += n
        return view


def stamp_of(raw: bytes | memoryview) -> float:
    """The header stamp (s) of any serialized message that starts with a ``std_msgs/Header``."""
    r = _Reader(raw)
    sec = r.i32('header.stamp.sec')
    return sec + r.u32('header.stamp.nanosec') * 1e-9


def parse_image(raw: bytes | memoryview) -> CdrImage:
    """Read a serialized ``sensor_msgs/Image``.

    Args:
        raw: what a ``raw=True`` subscription received.

    Returns:
        The fields, ``data`` a read-only view into ``raw`` (keep ``raw`` alive with it).

    Raises:
        ValueError: not a CDR buffer, or shorter than its fields say.
    """
    r = _Reader(raw)
    sec = r.i32('header.stamp.sec')
    stamp_s = sec + r.u32('header.stamp.nanosec') * 1e-9
    frame_id = r.string('header.frame_id')
    height = r.u32('height')
    width = r.u32('width')
    encoding = r.string('encoding')
    is_bigendian = r.u8('is_bigendian')
    step = r.u32('step')
    data = r.octets('data')
    return CdrImage(stamp_s, frame_id, height, width, encoding, is_bigendian, step, data)
