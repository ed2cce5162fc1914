"""Offscreen RGB-D rendering of a MuJoCo model camera in one pass (the UR5's and the G1's).

``mujoco.Renderer`` draws the scene twice for colour + depth; this renderer draws it once and
reads both buffers (``mjr_readPixels``), which halves the cost of an RGB-D frame. Depth comes
from MuJoCo's reversed-Z float depth buffer and is converted to metric *z-depth* (distance along
the optical axis, what RGB-D cameras report), not range. Pixels without a surface, or farther
than ``depth_max``, read 0 ("no return", as in a RealSense depth image).

The EGL context is made current only for the duration of :meth:`RgbdRenderer.render`, so any
thread may render (calls are serialised by a lock).
"""

from __future__ import annotations

import threading

import mujoco
import numpy as np


class RgbdRenderer:
    """Render colour and aligned z-depth from one of a model's cameras.

    Args:
        model: the compiled model (its offscreen buffer must be at least ``width``×``height``).
        camera_id: index of the model camera to render.
        width: image width in pixels.
        height: image height in pixels.
        depth_max: depth beyond this (metres) is reported as 0.
        max_geoms: capacity of the render scene (geoms drawn at most; meshes count one each).

    Raises:
        ValueError: the image is larger than the model's offscreen buffer.
        RuntimeError: no OpenGL context could be created (set ``MUJOCO_GL=egl``).

    """

    def __init__(
        self,
        model: mujoco.MjModel,
        camera_id: int,
        width: int,
        height: int,
        depth_max: float = 6.0,
        max_geoms: int = 2000,
    ) -> None:
        if width > model.vis.global_.offwidth or height > model.vis.global_.offheight:
            raise ValueError(
                f'image {width}x{height} exceeds the offscreen buffer '
                f'{model.vis.global_.offwidth}x{model.vis.global_.offheight}'
            )
        self._model = model
        self.width, self.height, self.depth_max = width, height, float(depth_max)
        self._lock = threading.Lock()
        try:
            self._gl = mujoco.GLContext(width, height)
        except Exception as exc:
            raise RuntimeError(
                f'cannot create an OpenGL context for offscreen rendering ({exc}); '
                'set MUJOCO_GL=egl and install libegl1 libegl-mesa0 libgl1'
            ) from exc
        self._scene = mujoco.MjvScene(model, maxgeom=max_geoms)
        self._option = mujoco.MjvOption()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._camera.fixedcamid = camera_id
        self._rect = mujoco.MjrRect(0, 0, width, height)
        with self._gl.as_current():
            self._ctx = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100.value)
            mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self._ctx)
            self._ctx.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self._rgb = np.empty((height, width, 3), dtype=np.uint8)
        self._depth = np.empty((height, width), dtype=np.float32)
        extent = model.stat.extent
        znear = np.float32(model.vis.map.znear * extent)
        zfar = np.float32(model.vis.map.zfar * extent)
        c = -(zfar + znear) / (zfar - znear)
        d = -(np.float32(2) * zfar * znear) / (zfar - znear)
        self._c = float(np.float32(-0.5) * c - np.float32(0.5))
        self._d = float(np.float32(-0.5) * d)
        self._zfar = float(zfar)

    def update(self, data: mujoco.MjData) -> None:
        """Copy the current state into the render scene (call under the world's lock)."""
        mujoco.mjv_updateScene(
            self._model,
            data,
            self._option,
            None,
            self._camera,
            mujoco.mjtCatBit.mjCAT_ALL.value,
            self._scene,
        )

    def render(self) -> tuple[np.ndarray, np.ndarray]:
        """Draw the scene captured by the last :meth:`update`.

        Returns:
            ``(rgb, depth)``: uint8 H×W×3 and float32 H×W z-depth in metres (0 = no return).
            Both are new arrays the caller owns.

        """
        with self._lock, self._gl.as_current():
            mujoco.mjr_render(self._rect, self._scene, self._ctx)
            mujoco.mjr_readPixels(self._rgb, self._depth, self._rect, self._ctx)
        rgb = np.flipud(self._rgb).copy()
        raw = np.flipud(self._depth).astype(np.float64)
        with np.errstate(divide='ignore'):
            z = self._d / (raw + self._c)
        valid = (raw > 0) & (z > 0) & (z < min(self.depth_max, self._zfar * 0.999))
        depth = np.where(valid, z, 0.0).astype(np.float32)
        return rgb, depth

    def close(self) -> None:
        """Free the GL resources (the renderer is unusable afterwards)."""
        with self._lock:
            if getattr(self, '_ctx', None) is not None:
                with self._gl.as_current():
                    self._ctx.free()
                self._ctx = None
            if getattr(self, '_gl', None) is not None:
                self._gl.free()
                self._gl = None
