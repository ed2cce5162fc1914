"""HTTP server speaking RoboTracer's model API, answered by the :class:`Oracle`.

``POST /query`` with a JSON body, in either of the API's two forms:

- paths (client and server share a folder)::

    {"text": "<prompt>", "image_paths": ["/shared/rgb.png"],
     "depth_z_paths": ["/shared/depth.png"], "intrinsics": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],
     "enable_spatial": 1}

- base64 (server elsewhere)::

    {"text": "<prompt>", "image_url": ["data:image/png;base64,..."],
     "depth_url": ["data:image/png;base64,..."], "intrinsics": [...], "enable_depth": 1}

Answer: ``200 {"result": 1, "answer": "[(x, y, d), ...]"}``. A request the server cannot use
(not JSON, no text, no or unreadable image, bad intrinsics, unreadable depth) gets
``400 {"result": 0, "error": "<what was wrong>"}``; an unknown path 404, the same shape.
``GET /health`` answers ``{"status": "ok"}``.

The path form reads only files inside the server's shared folder (``shared_dir``, default the
system temp folder, where the ``robotracer_http`` backend writes its PNGs by default): a path
that is relative, holds a ``..`` component, or resolves (symlinks followed) outside the folder is
refused with ``403 {"result": 0, "error": ...}`` before the file is opened.

The image is read to learn its size (the trace is projected for that size and the request's
intrinsics; without intrinsics, the world camera's scaled to the size). The depth image, when
sent, must decode as a single-channel 16-bit PNG (millimetres); the oracle does not need it
(it knows the ground truth). The server binds 127.0.0.1 by default.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import io
import json
import math
import os
from pathlib import Path
import tempfile
import threading
import time
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from robotracer_sim.oracle.core import Oracle

DEFAULT_HOST = '127.0.0.1'
DEFAULT_PORT = 25547
MAX_BODY = 64 * 1024 * 1024


class RequestError(ValueError):
    """A request the API rejects with HTTP 400; the message says what was wrong."""

    status = 400


class ForbiddenPath(RequestError):
    """A path outside the shared folder (HTTP 403); the file is not opened."""

    status = 403


def check_shared_path(source: str, key: str, shared_dir: str) -> Path:
    """Resolve a request's file path, allowing only files inside ``shared_dir``.

    Args:
        source: the path from the request.
        key: the field it came from (for the message).
        shared_dir: the folder the server may read.

    Returns:
        The resolved path (symlinks followed), inside ``shared_dir``.

    Raises:
        ForbiddenPath: relative, holds ``..``, or resolves outside ``shared_dir``.
    """
    if '\x00' in source:
        raise ForbiddenPath(f'{key}: the path holds a NUL character')
    if not os.path.isabs(source):
        raise ForbiddenPath(f'{key}: {source!r} is not an absolute path in the shared folder')
    if '..' in Path(source).parts:
        raise ForbiddenPath(
            f"{key}: {source!r} holds '..'; give a plain path in the shared folder"
        )
    root = os.path.realpath(shared_dir)
    real = os.path.realpath(source)
    if os.path.commonpath([root, real]) != root:
        raise ForbiddenPath(
            f'{key}: {source!r} is outside the shared folder {shared_dir!r}'
            + (' (through a symlink)' if real != os.path.normpath(source) else '')
            + '; the server reads only files there'
        )
    return Path(real)


@dataclass(frozen=True)
class Query:
    """A decoded ``/query`` request."""

    text: str
    width: int
    height: int
    k: np.ndarray | None
    has_depth: bool


def _one(body: dict, key: str) -> Any:
    v = body.get(key)
    if isinstance(v, list):
        if not v:
            raise RequestError(f'{key} is an empty list')
        return v[0]
    return v


def _open_image(source: str, key: str, shared_dir: str | None = None) -> Image.Image:
    if source.startswith('data:'):
        head, _, data = source.partition(',')
        if ';base64' not in head:
            raise RequestError(f'{key}: only base64 data URLs are supported')
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(f'{key}: invalid base64 data') from None
        stream: Any = io.BytesIO(raw)
        where = f'{key} (data URL)'
    else:
        p = Path(source) if shared_dir is None else check_shared_path(source, key, shared_dir)
        if not p.is_file():
            raise RequestError(f'{key}: file not found: {source}')
        stream = p
        where = f'{key} ({source})'
    try:
        img = Image.open(stream)  # reads the header: size and mode
        img.verify()  # checks the file's integrity without decoding the pixels
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise RequestError(f'{where} is not a readable image: {exc}') from None
    return img


def _intrinsics(value: Any) -> np.ndarray:
    try:
        k = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise RequestError(f'intrinsics must be a 3x3 list of numbers, got {value!r}') from None
    if k.shape == (4,):  # tolerate [fx, fy, cx, cy]
        fx, fy, cx, cy = k
        k = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    if k.shape != (3, 3) or not np.all(np.isfinite(k)):
        raise RequestError(f'intrinsics must be a 3x3 list of finite numbers, got {value!r}')
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise RequestError(f'intrinsics: fx and fy must be > 0, got {k[0, 0]}, {k[1, 1]}')
    return k


def parse_query(body: Any, shared_dir: str | None = None) -> Query:
    """Validate and decode a ``/query`` body (either form).

    Args:
        body: the decoded JSON.
        shared_dir: the only folder the path form may read (None: any path; for tools).

    Returns:
        The :class:`Query`.

    Raises:
        RequestError: anything the API cannot use; the message names the field
            (:class:`ForbiddenPath` for a path outside ``shared_dir``).

    """
    if not isinstance(body, dict):
        raise RequestError('the body must be a JSON object')
    text = body.get('text')
    if not isinstance(text, str) or not text.strip():
        raise RequestError('text (the prompt) is missing or empty')
    if body.get('image_paths') is not None:
        key = 'image_paths'
    elif body.get('image_url') is not None:
        key = 'image_url'
    else:
        raise RequestError('no image: give image_paths (files) or image_url (base64 data URLs)')
    src = _one(body, key)
    if not isinstance(src, str):
        raise RequestError(f'{key} must be a list of strings')
    img = _open_image(src, key, shared_dir)
    has_depth = False
    for dkey in ('depth_z_paths', 'depth_url'):
        if body.get(dkey) is None:
            continue
        dsrc = _one(body, dkey)
        if not isinstance(dsrc, str):
            raise RequestError(f'{dkey} must be a list of strings')
        depth = _open_image(dsrc, dkey, shared_dir)
        if depth.mode not in ('I;16', 'I;16B', 'I;16L', 'I'):
            raise RequestError(
                f'{dkey}: expected a 16-bit single-channel PNG, got mode {depth.mode}'
            )
        has_depth = True
    k = None if body.get('intrinsics') is None else _intrinsics(body['intrinsics'])
    for flag in ('enable_spatial', 'enable_depth'):
        v = body.get(flag, 0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise RequestError(f'{flag} must be 0 or 1, got {v!r}')
    return Query(text=text, width=img.width, height=img.height, k=k, has_depth=has_depth)


class _Handler(BaseHTTPRequestHandler):
    server: _OracleHTTPServer
    protocol_version = 'HTTP/1.1'
    timeout = 30.0  # a client that stalls mid-request does not hold a thread forever

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        if self.path.rstrip('/') in ('/health', ''):
            self._send(200, {'status': 'ok', 'model': 'robotracer_sim oracle'})
        else:
            self._send(404, {'result': 0, 'error': f'no such endpoint: GET {self.path}'})

    def do_POST(self) -> None:  # noqa: N802 (stdlib name)
        if self.path.rstrip('/') != '/query':
            self._send(404, {'result': 0, 'error': f'no such endpoint: POST {self.path}'})
            return
        try:
            length = int(self.headers.get('Content-Length', '0'))
        except ValueError:
            length = -1
        if length <= 0 or length > MAX_BODY:
            self.close_connection = True
            self._send(400, {'result': 0, 'error': f'bad Content-Length (1..{MAX_BODY} bytes)'})
            return
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self._send(400, {'result': 0, 'error': f'the body is not JSON: {exc}'})
            return
        try:
            q = parse_query(body, self.server.shared_dir)
        except RequestError as exc:
            self._send(exc.status, {'result': 0, 'error': str(exc)})
            return
        started = time.monotonic()
        try:
            ans = self.server.oracle.answer(q.text, q.width, q.height, q.k)
        except Exception as exc:  # an oracle bug: a 500 that says what, not a dropped socket
            self.log_error('oracle failed: %r', exc)
            self._send(500, {'result': 0, 'error': f'oracle failed: {type(exc).__name__}'})
            return
        remaining = self.server.oracle.config.latency - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)
        self.server.last_answer = ans
        self._send(200, {'result': 1, 'answer': ans.text})


class _OracleHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, addr: tuple[str, int], oracle: Oracle, verbose: bool, shared_dir: str
    ) -> None:
        super().__init__(addr, _Handler)
        self.oracle = oracle
        self.verbose = verbose
        self.shared_dir = shared_dir
        self.last_answer = None


class OracleServer:
    """The oracle behind RoboTracer's HTTP API, served from a background thread.

    Args:
        oracle: the oracle that answers.
        host: address to bind (default 127.0.0.1: this machine only).
        port: TCP port (default 25547; 0 picks a free one, see :attr:`port`).
        verbose: log each request to stderr.
        shared_dir: the only folder the path form may read (default: the system temp folder,
            the ``robotracer_http`` backend's default ``shared_dir``).

    Raises:
        OSError: the port is taken (the message names it).
        ValueError: ``shared_dir`` is not a folder.

    """

    def __init__(
        self,
        oracle: Oracle,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        verbose: bool = False,
        shared_dir: str | None = None,
    ) -> None:
        self.shared_dir = shared_dir or tempfile.gettempdir()
        if not os.path.isdir(self.shared_dir):
            raise ValueError(f'shared_dir {self.shared_dir!r} is not a folder')
        try:
            self._httpd = _OracleHTTPServer((host, port), oracle, verbose, self.shared_dir)
        except OSError as exc:
            raise OSError(f'cannot bind the oracle server to {host}:{port}: {exc}') from exc
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL (``http://127.0.0.1:25547``); the API is at ``<url>/query``."""
        return f'http://{self.host}:{self.port}'

    @property
    def last_answer(self):
        """The last :class:`OracleAnswer` served (for logs and tests), or None."""
        return self._httpd.last_answer

    def start(self) -> OracleServer:
        """Start serving in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, name='oracle-http', daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> OracleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
