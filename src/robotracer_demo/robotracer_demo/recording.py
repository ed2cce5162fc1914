"""MCAP recording of ROS 2 messages as CDR with their schemas (opens in Foxglove).

ROS-free: the recorder takes serialized CDR bytes (what an rclpy ``raw=True`` subscription
delivers, or ``rclpy.serialization.serialize_message``) and the message type name; the schema
text is the type's ``.msg`` file with its dependencies appended, in the format rosbag2 writes
(``MSG: pkg/Type`` blocks separated by ``=`` lines), read from the packages' share folders.
"""

from __future__ import annotations

from collections.abc import Callable
import os
import re
import threading

from mcap.well_known import MessageEncoding, SchemaEncoding
from mcap.writer import CompressionType, Writer

#: Types a .msg field may use without naming a package.
BUILTIN_TYPES = frozenset(
    {
        'bool',
        'byte',
        'char',
        'float32',
        'float64',
        'int8',
        'uint8',
        'int16',
        'uint16',
        'int32',
        'uint32',
        'int64',
        'uint64',
        'string',
        'wstring',
    }
)
SEPARATOR = '=' * 80

MsgLookup = Callable[[str, str], str]


class RecordingError(RuntimeError):
    """A message type cannot be recorded (its definition is missing) or the file is closed."""


def split_type(type_name: str) -> tuple[str, str]:
    """``pkg/msg/Type`` or ``pkg/Type`` -> ``(pkg, Type)``.

    Args:
        type_name: a ROS 2 message type name.

    Returns:
        The package and the message name.

    Raises:
        ValueError: the name is not ``pkg/Type`` or ``pkg/msg/Type``.
    """
    parts = type_name.strip().split('/')
    if len(parts) == 3 and parts[1] == 'msg' and all(parts):
        return parts[0], parts[2]
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise ValueError(f'message type {type_name!r} is not pkg/msg/Type or pkg/Type')


def share_msg_lookup(package: str, name: str) -> str:
    """Read ``share/<package>/msg/<name>.msg`` through the ament index.

    Args:
        package: the interface package, e.g. ``sensor_msgs``.
        name: the message name, e.g. ``Image``.

    Returns:
        The file's text.

    Raises:
        RecordingError: the package is not installed or has no such message file.
    """
    try:
        from ament_index_python.packages import (
            PackageNotFoundError,
            get_package_share_directory,
        )
    except ImportError as exc:  # pragma: no cover - setup.bash provides it
        raise RecordingError('ament_index_python is missing: source setup.bash') from exc
    try:
        share = get_package_share_directory(package)
    except PackageNotFoundError as exc:
        raise RecordingError(f'interface package {package} is not installed') from exc
    path = os.path.join(share, 'msg', f'{name}.msg')
    try:
        with open(path, encoding='utf-8') as f:
            return f.read()
    except OSError as exc:
        raise RecordingError(f'no message definition {package}/{name} at {path}') from exc


def field_types(package: str, text: str) -> list[str]:
    """The non-builtin field types a ``.msg`` text uses, as ``pkg/Type``, in order.

    Args:
        package: the package the text belongs to (for types written without a package).
        text: the ``.msg`` file's text.

    Returns:
        Each referenced message type once, in order of appearance.
    """
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.split('#', 1)[0].strip()
        if not line:
            continue
        token = line.split()[0]
        base = re.sub(r'\[.*\]$', '', token)  # arrays: T[], T[3], T[<=3]
        base = re.sub(r'<=\d+$', '', base)  # bounded strings: string<=10
        if base in BUILTIN_TYPES:
            continue
        if '/' in base:
            pkg, name = split_type(base)
        elif base == 'Header':
            pkg, name = 'std_msgs', 'Header'
        else:
            pkg, name = package, base
        full = f'{pkg}/{name}'
        if full not in out:
            out.append(full)
    return out


def message_definition(type_name: str, lookup: MsgLookup = share_msg_lookup) -> str:
    """The full ROS 2 message definition of a type: its text plus every dependency's.

    Args:
        type_name: e.g. ``sensor_msgs/msg/Image``.
        lookup: ``(package, name) -> .msg text`` (default: the installed share folders).

    Returns:
        The concatenated definition (rosbag2's format), as MCAP's ``ros2msg`` schema encoding
        expects.

    Raises:
        ValueError: a malformed type name.
        RecordingError: a definition cannot be found.
    """
    pkg, name = split_type(type_name)
    main = lookup(pkg, name)
    blocks = [main.strip()]
    seen = {f'{pkg}/{name}'}
    queue = field_types(pkg, main)
    while queue:
        dep = queue.pop(0)
        if dep in seen:
            continue
        seen.add(dep)
        dpkg, dname = split_type(dep)
        text = lookup(dpkg, dname)
        blocks.append(f'{SEPARATOR}\nMSG: {dep}\n{text.strip()}')
        queue.extend(t for t in field_types(dpkg, text) if t not in seen)
    return '\n'.join(blocks) + '\n'


class McapRecorder:
    """Write CDR-serialized ROS 2 messages to an MCAP file (profile ``ros2``), thread-safe.

    Args:
        path: output file (its folder must exist).
        lookup: where message definitions come from (default: installed share folders).
        compression: chunk compression (zstd by default; images shrink a lot).
    """

    def __init__(
        self,
        path: str,
        lookup: MsgLookup = share_msg_lookup,
        compression: CompressionType = CompressionType.ZSTD,
    ) -> None:
        self.path = path
        self._lookup = lookup
        self._file = open(path, 'wb')  # noqa: SIM115 - closed in close()
        self._writer = Writer(self._file, compression=compression)
        self._writer.start(profile='ros2', library='robotracer_demo')
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.counts: dict[str, int] = {}

    def add_topic(self, topic: str, type_name: str) -> None:
        """Register a topic and its message type (idempotent).

        Args:
            topic: the ROS topic name.
            type_name: its message type, e.g. ``sensor_msgs/msg/Image``.

        Raises:
            ValueError: a malformed type name, or the topic was registered with another type.
            RecordingError: the type's definition cannot be found, or the file is closed.
        """
        pkg, name = split_type(type_name)
        canonical = f'{pkg}/msg/{name}'
        with self._lock:
            if self._closed:
                raise RecordingError(f'{self.path} is closed')
            if topic in self._channels:
                return
            if canonical not in self._schemas:
                text = message_definition(canonical, self._lookup)
                self._schemas[canonical] = self._writer.register_schema(
                    canonical, SchemaEncoding.ROS2, text.encode()
                )
            self._channels[topic] = self._writer.register_channel(
                topic, MessageEncoding.CDR, self._schemas[canonical]
            )
            self.counts[topic] = 0

    def write(self, topic: str, cdr: bytes, log_time_ns: int, publish_time_ns: int = 0) -> None:
        """Append one serialized message.

        Args:
            topic: a topic registered with :meth:`add_topic`.
            cdr: the CDR bytes, with their 4-byte encapsulation header.
            log_time_ns: receive time, ns since the epoch.
            publish_time_ns: the message's own time (header stamp), ns; 0 = ``log_time_ns``.

        Raises:
            RecordingError: the topic is not registered or the file is closed.
        """
        with self._lock:
            if self._closed:
                raise RecordingError(f'{self.path} is closed')
            channel = self._channels.get(topic)
            if channel is None:
                raise RecordingError(f'topic {topic} was not registered (add_topic first)')
            self._writer.add_message(
                channel,
                log_time=int(log_time_ns),
                data=bytes(cdr),
                publish_time=int(publish_time_ns or log_time_ns),
                sequence=self.counts[topic],
            )
            self.counts[topic] += 1

    def close(self) -> None:
        """Finish the file (writes the summary section); further writes raise."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._writer.finish()
            finally:
                self._file.close()


def header_stamp_ns(cdr: bytes) -> int:
    """Stamp of a CDR message whose first field is a ``std_msgs/Header`` (little endian).

    Args:
        cdr: serialized message with the 4-byte encapsulation header.

    Returns:
        ``sec * 1e9 + nanosec``, or 0 if the bytes are too short.
    """
    if len(cdr) < 12:
        return 0
    sec = int.from_bytes(cdr[4:8], 'little', signed=True)
    nanosec = int.from_bytes(cdr[8:12], 'little', signed=False)
    return sec * 1_000_000_000 + nanosec
