"""4x4 homogeneous rigid transforms (numpy), the ROS-free half of "points into the target frame".

Naming: ``T_a_b`` maps points expressed in frame ``b`` into frame ``a`` (``p_a = T_a_b @ p_b``);
it is also the pose of frame ``b`` in frame ``a`` — what ``tf2`` returns for
``lookup_transform(target_frame=a, source_frame=b)``. Quaternions are ``(x, y, z, w)`` like
``geometry_msgs/Quaternion``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import threading

import numpy as np


def quaternion_to_matrix(q: Sequence[float]) -> np.ndarray:
    """Rotation matrix of a quaternion (normalised first).

    Args:
        q: (x, y, z, w).

    Returns:
        (3, 3) float64 rotation matrix.

    Raises:
        ValueError: not 4 finite values, or (near) zero norm.
    """
    arr = np.asarray(q, dtype=np.float64).reshape(-1)
    if arr.shape != (4,) or not np.all(np.isfinite(arr)):
        raise ValueError(f'quaternion must be 4 finite values (x, y, z, w), got {list(arr)}')
    norm = float(np.linalg.norm(arr))
    if norm < 1e-9:
        raise ValueError('quaternion has zero norm')
    x, y, z, w = arr / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """Quaternion (x, y, z, w) of a rotation matrix, with w >= 0.

    Args:
        R: (3, 3) rotation matrix.

    Returns:
        (4,) float64 unit quaternion.
    """
    m = np.asarray(R, dtype=np.float64)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
    out = np.asarray(q)
    out /= np.linalg.norm(out)
    return -out if out[3] < 0 else out


def transform_from_translation_quaternion(
    translation: Sequence[float], quaternion: Sequence[float]
) -> np.ndarray:
    """Build ``T_parent_child`` from the child frame's position and orientation in the parent.

    Args:
        translation: (x, y, z) metres.
        quaternion: (x, y, z, w).

    Returns:
        (4, 4) float64 homogeneous transform.

    Raises:
        ValueError: bad translation or quaternion.
    """
    t = np.asarray(translation, dtype=np.float64).reshape(-1)
    if t.shape != (3,) or not np.all(np.isfinite(t)):
        raise ValueError(f'translation must be 3 finite values (x, y, z), got {list(t)}')
    T = np.eye(4)
    T[:3, :3] = quaternion_to_matrix(quaternion)
    T[:3, 3] = t
    return T


def validate_transform(T: np.ndarray, *, tol: float = 1e-6) -> np.ndarray:
    """Check that T is a finite 4x4 rigid transform.

    Args:
        T: candidate transform.
        tol: tolerance on orthonormality and the last row.

    Returns:
        T as a (4, 4) float64 array.

    Raises:
        ValueError: wrong shape, non-finite, not a rotation, or bad last row.
    """
    m = np.asarray(T, dtype=np.float64)
    if m.shape != (4, 4):
        raise ValueError(f'transform must be 4x4, got shape {m.shape}')
    if not np.all(np.isfinite(m)):
        raise ValueError('transform contains non-finite values')
    if np.abs(m[3] - (0.0, 0.0, 0.0, 1.0)).max() > tol:
        raise ValueError(f'last row of the transform must be [0, 0, 0, 1], got {m[3].tolist()}')
    R = m[:3, :3]
    if np.abs(R @ R.T - np.eye(3)).max() > 1e-4 or np.linalg.det(R) < 0:
        raise ValueError('the rotation part of the transform is not a proper rotation')
    return m


def invert_transform(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform (``T_b_a`` from ``T_a_b``).

    Args:
        T: (4, 4) rigid transform.

    Returns:
        (4, 4) inverse.
    """
    m = np.asarray(T, dtype=np.float64)
    out = np.eye(4)
    out[:3, :3] = m[:3, :3].T
    out[:3, 3] = -m[:3, :3].T @ m[:3, 3]
    return out


def apply_transform(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map points with a homogeneous transform (NaN rows stay NaN).

    Args:
        T: (4, 4) transform ``T_target_source``.
        points: (N, 3) points in the source frame.

    Returns:
        (N, 3) points in the target frame.
    """
    m = np.asarray(T, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return p @ m[:3, :3].T + m[:3, 3]


#: ``(target_frame, source_frame, stamp_s) → T_target_source``; raises LookupError when unknown
TransformLookup = Callable[[str, str, float], np.ndarray]


class TfThenParameter:
    """Transforms from tf2 when it has them, else from the configured (parameter) transform.

    A real cell may publish its camera pose on ``/tf_static`` (hand-eye calibration) or only
    set it in the config (``static_transform``); the simulator does either. Asking tf2 first
    and falling back to the parameter serves both, and the log says which source answered each
    pair of frames (once, and again whenever the source changes).

    Args:
        tf_lookup: the tf2 lookup (raises LookupError when tf2 lacks the transform), or None
            where tf2 is not importable.
        parameter_lookup: the lookup from configured transforms (raises LookupError).
        log: where the "which source" lines go.
        parameter_name: the parameter's name in those lines.
    """

    def __init__(
        self,
        tf_lookup: TransformLookup | None,
        parameter_lookup: TransformLookup,
        log: Callable[[str], None] = lambda _m: None,
        parameter_name: str = 'static_transform',
    ) -> None:
        self._tf = tf_lookup
        self._parameter = parameter_lookup
        self._log = log
        self._parameter_name = parameter_name
        self._lock = threading.Lock()
        #: (target, source) → the source that answered last ('tf2' or 'parameter')
        self.used: dict[tuple[str, str], str] = {}

    def _note(self, target: str, source: str, how: str, why: str = '') -> None:
        with self._lock:
            if self.used.get((target, source)) == how:
                return
            self.used[(target, source)] = how
        if how == 'tf2':
            self._log(f'transform {source} -> {target}: from tf2')
        else:
            self._log(
                f'transform {source} -> {target}: from the {self._parameter_name} parameter'
                + (f' (tf2 has none: {why})' if why else ' (tf2 not available)')
            )

    def __call__(self, target: str, source: str, stamp_s: float) -> np.ndarray:
        """``T_target_source`` from tf2, else from the parameter.

        Raises:
            LookupError: neither has it (names both reasons).
        """
        if target == source:
            return np.eye(4)
        tf_error = ''
        if self._tf is not None:
            try:
                T = self._tf(target, source, stamp_s)
            except LookupError as exc:
                tf_error = str(exc)
            else:
                self._note(target, source, 'tf2')
                return T
        try:
            T = self._parameter(target, source, stamp_s)
        except LookupError as exc:
            if self._tf is None:
                raise
            raise LookupError(f'{tf_error}; and {exc}') from exc
        self._note(target, source, 'parameter', tf_error)
        return T


class Tf2Lookup:
    """``tf2_ros.Buffer.lookup_transform`` as a :data:`TransformLookup`.

    tf2 raises several exception types (``LookupException``, ``ConnectivityException``,
    ``ExtrapolationException``, ...); all become LookupError naming tf2's reason, which is what
    :class:`TfThenParameter` falls back on.

    Args:
        buffer: a ``tf2_ros.Buffer`` (filled by a ``TransformListener``).
        timeout_s: longest wait for the transform to become available, s (0: answer at once).
    """

    def __init__(self, buffer: object, timeout_s: float = 0.0) -> None:
        self.buffer = buffer
        self.timeout_s = float(timeout_s)

    def __call__(self, target: str, source: str, stamp_s: float) -> np.ndarray:
        """``T_target_source`` at ``stamp_s`` (0: the latest tf2 has).

        Raises:
            LookupError: tf2 does not have it (its message, prefixed ``tf2: ``).
        """
        from rclpy.duration import Duration
        from rclpy.time import Time

        try:
            tf = self.buffer.lookup_transform(  # type: ignore[attr-defined]
                target,
                source,
                Time(nanoseconds=int(stamp_s * 1e9)),
                timeout=Duration(nanoseconds=int(self.timeout_s * 1e9)),
            )
        except Exception as exc:  # noqa: BLE001 - tf2 raises several exception types
            raise LookupError(f'tf2: {exc}') from exc
        t, q = tf.transform.translation, tf.transform.rotation
        return transform_from_translation_quaternion([t.x, t.y, t.z], [q.x, q.y, q.z, q.w])
