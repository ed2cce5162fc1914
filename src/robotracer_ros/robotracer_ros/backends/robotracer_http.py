"""The authors' HTTP API (RoboTracer's evaluation client and servers, RoboRefer's server).

Design notes: docs/design-notes.md (robotracer_ros.backends.robotracer_http).
"""

from __future__ import annotations

import os
import tempfile
import threading
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
    HTTP_STATUS,
    MODEL,
    BackendAnswer,
    BackendError,
    check_instruction,
    check_rgb,
)
from robotracer_ros.prompts import robotracer_prompt

TRANSPORTS = ('base64', 'paths')
#: inputs -> (depth image, intrinsics, enable_spatial)
INPUT_PARTS = {
    'rgbd_intrinsics': (True, True, 1),
    'rgbd': (True, False, 1),
    'rgb_intrinsics': (False, True, 1),
    'rgb_spatial': (False, False, 1),
    'rgb': (False, False, 0),
}
INPUTS = tuple(INPUT_PARTS)
#: the default inputs of each transport
DEFAULT_INPUTS = {'paths': 'rgbd_intrinsics', 'base64': 'rgbd'}


def inputs_send_depth(inputs: str) -> bool:
    """Whether ``inputs`` sends the depth image to the model.

    Raises:
        ValueError: unknown inputs.
    """
    if inputs not in INPUT_PARTS:
        raise ValueError(f'inputs {inputs!r} is not one of {", ".join(INPUTS)}')
    return INPUT_PARTS[inputs][0]


class RoboTracerHttpBackend:
    """Client of the authors' ``/query`` API (see the module docstring)."""

    name = 'robotracer_http'

    def __init__(
        self,
        url: str = 'http://127.0.0.1:25547',
        *,
        transport: str = 'base64',
        inputs: str | None = None,
        shared_dir: str | None = None,
        model: str = 'RoboTracer',
        timeout_s: float = 60.0,
        retries: int = 1,
        png_compression: int = 0,
        keep_files: bool = False,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        """Configure the client (no request is made here).

        Args:
            url: server base URL (``/query`` is appended unless already there).
            transport: ``'base64'`` (images in the request; the released servers) or
                ``'paths'`` (PNG files in shared_dir; RoboTracer's spatial-encoder client).
            inputs: what the model is given, one of :data:`INPUTS`; None: the transport's
                default (:data:`DEFAULT_INPUTS`: ``rgbd`` for base64, ``rgbd_intrinsics`` for
                paths).
            shared_dir: folder both client and server see at the same path (``paths`` only);
                None = the system temp folder. Made absolute.
            model: model name for ``model_id``.
            timeout_s: per-attempt timeout, seconds.
            retries: extra attempts on connection errors, timeouts, HTTP 429/5xx.
            png_compression: zlib level for the PNGs (0-9; 0 = uncompressed, by far the
                fastest to encode: ~1.5 MB of PNG per 640x480 RGB-D request, ~2 MB of base64).
            keep_files: ``paths`` only: keep the written PNGs (debugging).
            max_response_bytes: largest response body accepted (default 1 MiB).

        Raises:
            BackendError: (``config``) bad transport, inputs (or inputs the transport cannot
                carry), URL, folder or limit.
        """
        if transport not in TRANSPORTS:
            raise BackendError(CONFIG, f'transport {transport!r} is not one of {TRANSPORTS}')
        inputs = inputs or DEFAULT_INPUTS[transport]
        if inputs not in INPUT_PARTS:
            raise BackendError(CONFIG, f'inputs {inputs!r} is not one of {", ".join(INPUTS)}')
        if transport == 'base64' and INPUT_PARTS[inputs][1]:
            raise BackendError(
                CONFIG,
                f'inputs {inputs!r} sends the camera intrinsics, which the base64 form of the '
                "authors' API cannot carry (their client sends image_url, depth_url, "
                "enable_depth and text only): use transport paths (RoboTracer's "
                'spatial-encoder form) or inputs rgbd / rgb_spatial / rgb',
            )
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
        self.inputs = inputs
        self.shared_dir = os.path.abspath(shared_dir or tempfile.gettempdir())
        if transport == 'paths' and not os.path.isdir(self.shared_dir):
            raise BackendError(CONFIG, f'shared_dir {self.shared_dir!r} is not a folder')
        self.model = model
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.png_compression = int(png_compression)
        self._scratch = threading.local()  # per-thread PNG buffers, reused request to request
        self.keep_files = keep_files
        self.max_response_bytes = int(max_response_bytes)

    @property
    def model_id(self) -> str:
        """``robotracer_http:<model>``."""
        return f'{self.name}:{self.model}'

    @property
    def sends_depth(self) -> bool:
        """Whether requests carry the depth image (when the frame has one)."""
        return INPUT_PARTS[self.inputs][0]

    def build_payload(
        self,
        rgb: np.ndarray,
        depth: np.ndarray | None,
        K: np.ndarray,
        instruction: str,
        *,
        mode_3d: bool = True,
    ) -> tuple[dict[str, Any], list[str]]:
        """Encode a request exactly as the authors' client does (for benchmarks and tests).

        Args:
            rgb: (H, W, 3) uint8 RGB.
            depth: depth image (uint16 mm or float m) or None.
            K: (3, 3) intrinsics.
            instruction: the instruction.
            mode_3d: 3D or 2D prompt.

        Returns:
            (payload, files written) -- files only for the ``paths`` transport. The payload's
            keys are in the authors' order; ``json.dumps(payload)`` is the request body.

        Raises:
            BackendError: bad image or instruction, or files could not be written.
        """
        check_rgb(rgb)
        try:
            prompt = robotracer_prompt(check_instruction(instruction), mode_3d=mode_3d)
        except ValueError as exc:
            raise BackendError(CONFIG, f'bad instruction: {exc}') from exc
        send_depth, send_k, enable_spatial = INPUT_PARTS[self.inputs]
        rgb_png = self._png(rgb, 'rgb')
        depth_png = None
        if depth is not None and send_depth:
            depth_png = self._png(images.depth_to_millimetres(depth), 'depth')
        if self.transport == 'base64':  # query_server's request_data, in its key order
            payload: dict[str, Any] = {
                'image_url': [_b64(rgb_png)],
                'depth_url': [_b64(depth_png)] if depth_png is not None else [],
                'enable_depth': enable_spatial,
                'text': prompt,
            }
            return payload, []
        files: list[str] = []
        stem = os.path.join(self.shared_dir, f'robotracer_{uuid.uuid4().hex}')
        try:
            with open(stem + '_rgb.png', 'wb') as f:
                f.write(rgb_png)
            files.append(stem + '_rgb.png')
            if depth_png is not None:
                with open(stem + '_depth.png', 'wb') as f:
                    f.write(depth_png)
                files.append(stem + '_depth.png')
        except OSError as exc:
            self._cleanup(files)
            raise BackendError(
                CONFIG, f'cannot write images into shared_dir {self.shared_dir!r}: {exc}'
            ) from exc
        # query_server_spatial_encoder's request_data, in its key order
        payload = {
            'image_paths': [files[0]],
            'depth_z_paths': [files[1]] if depth_png is not None else None,
            'intrinsics': (np.asarray(K, dtype=float).reshape(3, 3).tolist() if send_k else None),
            'enable_spatial': enable_spatial,
            'text': prompt,
        }
        return payload, files

    def _png(self, image: np.ndarray, slot: str) -> bytes | memoryview:
        """The PNG file of ``image`` at ``png_compression``.

        Level 0 writes into this thread's buffer for ``slot`` (``rgb``/``depth``), reused by
        the next request: the caller base64-encodes or writes the view before that.
        """
        if self.png_compression == 0:
            scratch = self._scratch.__dict__
            buf = scratch.get(slot)
            view = images.encode_png_buffer(image, buf)
            if buf is None or buf.size < view.nbytes:
                scratch[slot] = np.empty(view.nbytes + 4096, np.uint8)  # from the next call on
            return view
        return images.encode_png(image, compression=self.png_compression)

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
        except BackendError as exc:
            raise self.explain(exc) from None
        finally:
            self._cleanup(files)
        answer = self.answer_from_reply(reply)
        return BackendAnswer(answer, self.model_id, time.perf_counter() - t0)

    def explain(self, exc: BackendError) -> BackendError:
        """Say what an HTTP error status from the authors' (Flask) servers usually means.

        Args:
            exc: the error of the request.

        Returns:
            A ``model`` error for HTTP 500 (the server raised while serving), an
            ``http_status`` error with the likely cause for 400/404/405/415, else ``exc``.
        """
        if exc.kind != HTTP_STATUS or exc.status is None:
            return exc
        url = display_url(self.url)
        if exc.status == 500:
            where = (
                f'the files in shared_dir {self.shared_dir!r} it must open'
                if self.transport == 'paths'
                else 'the base64 images it must decode'
            )
            return BackendError(
                MODEL,
                f'model error: {url} failed while serving the request ({exc}); the server '
                "raised an exception (its log has the traceback): the authors' servers do so "
                f'when the request is not the form they read (transport={self.transport}), '
                f'when they cannot read {where}, or when the model fails (e.g. out of GPU '
                'memory)',
                status=exc.status,
            )
        hints = {
            400: 'the server could not read the request body as JSON',
            404: f'there is no /query endpoint at {url}: is model_url a RoboTracer API server?',
            405: f'{url} does not take POST: is model_url a RoboTracer API server?',
            415: 'the server wants Content-Type: application/json',
        }
        if exc.status in hints:
            return BackendError(HTTP_STATUS, f'{exc} ({hints[exc.status]})', status=exc.status)
        return exc

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
                f'model error: {url} reported result={shorten(repr(reply["result"]), 40)} '
                '(1 means success)' + (f': {shorten(str(reason))}' if reason else ''),
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


def _b64(data: bytes | memoryview) -> str:
    """The authors' ``encode_image``: ``base64.b64encode(data).decode('utf-8')``, faster."""
    return images.b64_text(data)


def _is_one(value: Any) -> bool:
    """The API's success flag: 1 (also 1.0 or true)."""
    return isinstance(value, (int, float)) and value == 1
