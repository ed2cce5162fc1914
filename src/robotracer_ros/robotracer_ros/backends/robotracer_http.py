"""RoboTracer's own HTTP API (the way the authors serve the model).

``POST <url>/query`` with JSON:

- path form (``transport='paths'``; server on the same machine or a shared filesystem):
  ``{"text": prompt, "image_paths": [png], "depth_z_paths": [16-bit png, mm],
  "intrinsics": 3x3, "enable_spatial": 1}`` -- the client writes the PNGs into ``shared_dir``
  (which the server must be able to read at the same path) and deletes them afterwards;
- base64 form (``transport='base64'``; server on another machine):
  ``{"text": prompt, "image_url": ["data:image/png;base64,..."], "depth_url": [...],
  "enable_depth": 1, "intrinsics": 3x3, "enable_spatial": 1}``.

Answer: ``{"result": 1, "answer": "<text>"}``; ``result != 1`` is reported as a model error,
a reply without an ``answer`` string as a bad response (see :meth:`answer_from_reply`).
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any
import uuid

import numpy as np

from robotracer_ros import images
from robotracer_ros.backends._http import (
    MAX_RESPONSE_BYTES,
    display_url,
    post_json,
    shorten,
    url_has_credentials,
)
from robotracer_ros.backends.base import (
    BAD_RESPONSE,
    CONFIG,
    MODEL,
    BackendAnswer,
    BackendError,
    check_instruction,
    check_rgb,
)
from robotracer_ros.prompts import robotracer_prompt

TRANSPORTS = ('base64', 'paths')


class RoboTracerHttpBackend:
    """Client of a RoboTracer API server."""

    name = 'robotracer_http'

    def __init__(
        self,
        url: str = 'http://127.0.0.1:25547',
        *,
        transport: str = 'base64',
        shared_dir: str | None = None,
        model: str = 'RoboTracer',
        timeout_s: float = 60.0,
        retries: int = 1,
        send_depth: bool = True,
        enable_spatial: bool = True,
        png_compression: int = 0,
        keep_files: bool = False,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        """Configure the client (no request is made here).

        Args:
            url: server base URL (``/query`` is appended unless already there).
            transport: ``'base64'`` (images inline) or ``'paths'`` (PNG files in shared_dir).
            shared_dir: folder both client and server see at the same path (``paths`` only);
                None = the system temp folder.
            model: model name for ``model_id``.
            timeout_s: per-attempt timeout, seconds.
            retries: extra attempts on connection errors, timeouts, HTTP 429/5xx.
            send_depth: send the depth image when one is given.
            enable_spatial: the API's ``enable_spatial`` flag (metric 3D reasoning).
            png_compression: zlib level for the PNGs (0-9; 0 = uncompressed, the fastest to
                encode: ~1.5 MB of PNG per 640x480 RGB-D request).
            keep_files: ``paths`` only: keep the written PNGs (debugging).
            max_response_bytes: largest response body accepted (default 1 MiB).

        Raises:
            BackendError: (``config``) bad transport, URL, folder or limit.
        """
        if transport not in TRANSPORTS:
            raise BackendError(CONFIG, f'transport {transport!r} is not one of {TRANSPORTS}')
        if not isinstance(url, str) or not url.startswith(('http://', 'https://')):
            raise BackendError(
                CONFIG, f'url {display_url(str(url))!r} must start with http:// or https://'
            )
        if url_has_credentials(url):
            raise BackendError(
                CONFIG,
                f'url {display_url(url)!r} carries credentials (user:password@); '
                'the RoboTracer API takes none, and secrets never go into URLs',
            )
        if not timeout_s > 0:
            raise BackendError(CONFIG, f'timeout_s must be > 0, got {timeout_s}')
        if max_response_bytes < 1024:
            raise BackendError(
                CONFIG, f'max_response_bytes must be >= 1024, got {max_response_bytes}'
            )
        self.url = (
            url.rstrip('/') if url.rstrip('/').endswith('/query') else (url.rstrip('/') + '/query')
        )
        self.transport = transport
        self.shared_dir = shared_dir or tempfile.gettempdir()
        if transport == 'paths' and not os.path.isdir(self.shared_dir):
            raise BackendError(CONFIG, f'shared_dir {self.shared_dir!r} is not a folder')
        self.model = model
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.send_depth = send_depth
        self.enable_spatial = enable_spatial
        self.png_compression = int(png_compression)
        self.keep_files = keep_files
        self.max_response_bytes = int(max_response_bytes)

    @property
    def model_id(self) -> str:
        """``robotracer_http:<model>``."""
        return f'{self.name}:{self.model}'

    def build_payload(
        self,
        rgb: np.ndarray,
        depth: np.ndarray | None,
        K: np.ndarray,
        instruction: str,
        *,
        mode_3d: bool = True,
    ) -> tuple[dict[str, Any], list[str]]:
        """Encode a request (exposed for benchmarks and tests).

        Args:
            rgb: (H, W, 3) uint8 RGB.
            depth: depth image (uint16 mm or float m) or None.
            K: (3, 3) intrinsics.
            instruction: the instruction.
            mode_3d: 3D or 2D prompt.

        Returns:
            (payload, files written) -- files only for the ``paths`` transport.

        Raises:
            BackendError: bad image or instruction, or files could not be written.
        """
        check_rgb(rgb)
        try:
            prompt = robotracer_prompt(check_instruction(instruction), mode_3d=mode_3d)
        except ValueError as exc:
            raise BackendError(CONFIG, f'bad instruction: {exc}') from exc
        payload: dict[str, Any] = {
            'text': prompt,
            'intrinsics': np.asarray(K, dtype=float).reshape(3, 3).tolist(),
            'enable_spatial': int(self.enable_spatial),
        }
        rgb_png = images.encode_png(rgb, compression=self.png_compression)
        depth_png = None
        if depth is not None and self.send_depth:
            depth_png = images.encode_png(
                images.depth_to_millimetres(depth), compression=self.png_compression
            )
        files: list[str] = []
        if self.transport == 'base64':
            payload['image_url'] = [images.to_data_url(rgb_png)]
            if depth_png is not None:
                payload['depth_url'] = [images.to_data_url(depth_png)]
                payload['enable_depth'] = 1
            return payload, files
        stem = os.path.join(self.shared_dir, f'robotracer_{uuid.uuid4().hex}')
        try:
            with open(stem + '_rgb.png', 'wb') as f:
                f.write(rgb_png)
            files.append(stem + '_rgb.png')
            payload['image_paths'] = [stem + '_rgb.png']
            if depth_png is not None:
                with open(stem + '_depth.png', 'wb') as f:
                    f.write(depth_png)
                files.append(stem + '_depth.png')
                payload['depth_z_paths'] = [stem + '_depth.png']
        except OSError as exc:
            self._cleanup(files)
            raise BackendError(
                CONFIG, f'cannot write images into shared_dir {self.shared_dir!r}: {exc}'
            ) from exc
        return payload, files

    def _cleanup(self, files: list[str]) -> None:
        if self.keep_files:
            return
        for path in files:
            try:
                os.remove(path)
            except OSError:
                pass

    def __call__(
        self,
        rgb: np.ndarray,
        depth: np.ndarray | None,
        K: np.ndarray,
        instruction: str,
        *,
        mode_3d: bool = True,
    ) -> BackendAnswer:
        """Ask the server for a trace (see :class:`~robotracer_ros.backends.base.TraceBackend`)."""
        t0 = time.perf_counter()
        payload, files = self.build_payload(rgb, depth, K, instruction, mode_3d=mode_3d)
        try:
            reply = post_json(
                self.url,
                payload,
                timeout_s=self.timeout_s,
                retries=self.retries,
                max_response_bytes=self.max_response_bytes,
            )
        finally:
            self._cleanup(files)
        answer = self.answer_from_reply(reply)
        return BackendAnswer(answer, self.model_id, time.perf_counter() - t0)

    def answer_from_reply(self, reply: Any) -> str:
        """The answer text in a decoded ``/query`` reply.

        Args:
            reply: the decoded JSON reply.

        Returns:
            ``reply["answer"]``, unmodified.

        Raises:
            BackendError: ``model`` when the server reports ``result`` other than 1 (with its
                ``error``/``message``), ``bad_response`` when the reply is not a JSON object or
                has no ``answer`` string (naming the keys it has).
        """
        url = display_url(self.url)
        if not isinstance(reply, dict):
            raise BackendError(
                BAD_RESPONSE, f'{url} answered a JSON {type(reply).__name__}, not an object'
            )
        if 'result' in reply and not _is_one(reply['result']):
            reason = reply.get('error') or reply.get('message') or reply.get('answer') or ''
            raise BackendError(
                MODEL,
                f'{url} reported result={shorten(repr(reply["result"]), 40)}'
                + (f': {shorten(str(reason))}' if reason else ''),
            )
        answer = reply.get('answer')
        if not isinstance(answer, str):
            keys = ', '.join(shorten(repr(k), 30) for k in list(reply)[:8]) or 'none'
            what = (
                'no "answer" field'
                if 'answer' not in reply
                else f'"answer" of type {type(answer).__name__}, not text'
            )
            raise BackendError(BAD_RESPONSE, f'{url} answered {what} (keys: {keys})')
        return answer


def _is_one(value: Any) -> bool:
    """The API's success flag: 1 (also 1.0 or true)."""
    return isinstance(value, (int, float)) and value == 1
