"""HTTP server that behaves like the authors' model servers, answered by the :class:`Oracle`.

Design notes: docs/design-notes.md (robotracer_sim.oracle.server).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import io
import json
import logging
import os
from pathlib import Path
import tempfile
import threading
import time
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from robotracer_sim.oracle.core import Oracle

LOG = logging.getLogger(__name__)
DEFAULT_HOST = '127.0.0.1'
DEFAULT_PORT = 25547
MAX_BODY = 64 * 1024 * 1024
#: what the model answers a prompt without any image
NO_IMAGE = 'I need an image of the scene to point at the trace.'

#: Flask's (Werkzeug 3) default error pages, byte for byte
FLASK_ERROR_PAGES: dict[int, bytes] = {
    400: b'<!doctype html>\n<html lang=en>\n<title>400 Bad Request</title>\n<h1>Bad Request</h1>\n'
    b'<p>The browser (or proxy) sent a request that this server could not understand.</p>\n',
    404: b'<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n'
    b'<p>The requested URL was not found on the server. If you entered the URL manually please '
    b'check your spelling and try again.</p>\n',
    405: b'<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n'
    b'<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n',
    413: b'<!doctype html>\n<html lang=en>\n<title>413 Request Entity Too Large</title>\n'
    b'<h1>Request Entity Too Large</h1>\n<p>The data value transmitted exceeds the capacity '
    b'limit.</p>\n',
    415: b'<!doctype html>\n<html lang=en>\n<title>415 Unsupported Media Type</title>\n'
    b'<h1>Unsupported Media Type</h1>\n<p>Did not attempt to load JSON data because the request '
    b'Content-Type was not &#39;application/json&#39;.</p>\n',
    500: b'<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n'
    b'<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was unable '
    b'to complete your request. Either the server is overloaded or there is an error in the '
    b'application.</p>\n',
}
FLASK_HTML = 'text/html; charset=utf-8'


class ServerFailure(RuntimeError):
    """What makes the authors' handler raise: Flask answers its 500 page."""


class ForbiddenPath(ServerFailure):
    """A path outside the shared folder; the file is not opened."""


def flask_json(value: dict[str, Any]) -> bytes:
    """A body as Flask's ``jsonify`` writes it: sorted keys, compact, a final newline."""
    return (json.dumps(value, sort_keys=True, separators=(',', ':')) + '\n').encode()


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
    """A decoded ``/query`` request: what the model sees.

    Attributes:
        text: the prompt.
        width: width of the (first) image, pixels; 0 without an image.
        height: its height.
        k: the intrinsics the model was given (paths form, ``enable_spatial`` 1), or None.
        has_depth: a depth image came with the request.
        form: ``'base64'`` or ``'paths'``.
    """

    text: str
    width: int
    height: int
    k: np.ndarray | None
    has_depth: bool
    form: str


def _image(stream: Any, where: str) -> Image.Image:
    try:
        img = Image.open(stream)  # reads the header: size and mode
        img.verify()  # checks the file's integrity without decoding the pixels
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ServerFailure(f'{where} is not a readable image: {exc}') from None
    return img


def _decoded(value: Any, key: str) -> Image.Image:
    """``base64.b64decode(value)`` then an image, as the authors' ``decode_base64_to_file``."""
    try:
        raw = base64.b64decode(value)  # not validating: other characters are dropped
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ServerFailure(f'{key}: base64.b64decode failed: {exc}') from None
    return _image(io.BytesIO(raw), f'{key} (decoded base64)')


def _opened(value: Any, key: str, shared_dir: str | None) -> Image.Image:
    if not isinstance(value, str):
        raise ServerFailure(f'{key}: expected a path string, got {type(value).__name__}')
    path = Path(value) if shared_dir is None else check_shared_path(value, key, shared_dir)
    if not path.is_file():
        raise ServerFailure(f'{key}: No such file: {value!r}')
    return _image(path, f'{key} ({value})')


def _list(data: dict, key: str, default: Any) -> list:
    value = data.get(key, default)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ServerFailure(f'{key}: expected a list, got {type(value).__name__}')
    return value


def _intrinsics(value: Any) -> np.ndarray:
    try:
        k = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ServerFailure(f'intrinsics must be a 3x3 list of numbers, got {value!r}') from None
    if k.shape != (3, 3) or not np.all(np.isfinite(k)):
        raise ServerFailure(f'intrinsics must be a 3x3 list of finite numbers, got {value!r}')
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ServerFailure(f'intrinsics: fx and fy must be > 0, got {k[0, 0]}, {k[1, 1]}')
    return k


def parse_query(body: Any, shared_dir: str | None = None) -> Query:
    """Read a decoded ``/query`` body the way the authors' servers do (either form).

    Args:
        body: the decoded JSON.
        shared_dir: the only folder the path form may read (None: any path; for tools).

    Returns:
        The :class:`Query`.

    Raises:
        ServerFailure: what makes the authors' handler raise (Flask: HTTP 500); the message
            names the field (:class:`ForbiddenPath` for a path outside ``shared_dir``).
    """
    if not isinstance(body, dict):
        raise ServerFailure(f"'{type(body).__name__}' object has no attribute 'get'")
    data = body
    text = data.get('text', '')
    if not isinstance(text, str):
        raise ServerFailure(f'text must be a string, got {type(text).__name__}')
    has_depth = False
    k = None
    if data.get('image_paths') is not None:  # query_server_spatial_encoder
        form = 'paths'
        imgs = [_opened(v, 'image_paths', shared_dir) for v in _list(data, 'image_paths', [])]
        for v in _list(data, 'depth_z_paths', None):
            depth = _opened(v, 'depth_z_paths', shared_dir)
            if depth.mode not in ('I;16', 'I;16B', 'I;16L', 'I'):
                raise ServerFailure(
                    f'depth_z_paths: expected a 16-bit single-channel PNG, got mode {depth.mode}'
                )
            has_depth = True
        spatial = data.get('enable_spatial', 0)
        if data.get('intrinsics') is not None:
            intrinsics = _intrinsics(data['intrinsics'])
            k = intrinsics if spatial == 1 else None
    else:  # query_server (base64)
        form = 'base64'
        urls = _list(data, 'image_url', [])
        imgs = [_decoded(v, 'image_url') for v in urls]
        depth_urls = _list(data, 'depth_url', [])
        if data.get('enable_depth', 0) == 1 and depth_urls:
            if len(depth_urls) != len(urls):
                raise ServerFailure(
                    "AssertionError: Depth URL's number is not equal to Image URL's number"
                )
            for v in depth_urls:
                _decoded(v, 'depth_url')
            has_depth = True
    width, height = (imgs[0].width, imgs[0].height) if imgs else (0, 0)
    return Query(text=text, width=width, height=height, k=k, has_depth=has_depth, form=form)


def is_json_mimetype(content_type: str) -> bool:
    """Flask's ``request.is_json``: ``application/json`` or ``application/*+json``."""
    mt = content_type.split(';', 1)[0].strip().lower()
    return mt == 'application/json' or (mt.startswith('application/') and mt.endswith('+json'))


class _Handler(BaseHTTPRequestHandler):
    server: _OracleHTTPServer
    protocol_version = 'HTTP/1.1'
    timeout = 30.0  # a client that stalls mid-request does not hold a thread forever

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(
        self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _page(self, status: int, why: str = '', headers: dict[str, str] | None = None) -> None:
        if why:
            self.server.last_error = why
            LOG.error('oracle: %s %s -> HTTP %d: %s', self.command, self.path, status, why)
        self._send(status, FLASK_ERROR_PAGES[status], FLASK_HTML, headers)

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        path = self.path.split('?', 1)[0]
        if path == '/':
            self._send(200, b'Hello, World!', FLASK_HTML)
        elif path == '/query':
            self._page(405, headers={'Allow': 'OPTIONS, POST'})
        else:
            self._page(404)

    def do_POST(self) -> None:  # noqa: N802 (stdlib name)
        path = self.path.split('?', 1)[0]
        try:
            length = int(self.headers.get('Content-Length', '0'))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._page(413 if length > MAX_BODY else 400, f'Content-Length {length}')
            return
        raw = self.rfile.read(length)
        if path != '/query':
            self._page(405 if path == '/' else 404)
            return
        if not is_json_mimetype(self.headers.get('Content-Type', '')):
            self._page(415, 'the request Content-Type is not application/json')
            return
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self._page(400, f'the body is not JSON: {exc}')
            return
        try:
            q = parse_query(body, self.server.shared_dir)
        except ServerFailure as exc:
            self._page(500, str(exc))
            return
        started = time.monotonic()
        if q.width == 0:
            text = NO_IMAGE
        else:
            try:
                ans = self.server.oracle.answer(q.text, q.width, q.height, q.k)
            except Exception as exc:  # an oracle bug: Flask's 500 page, the reason in the log
                self._page(500, f'oracle failed: {type(exc).__name__}: {exc}')
                return
            self.server.last_answer = ans
            text = ans.text
        remaining = self.server.oracle.config.latency - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)
        self._send(200, flask_json({'result': 1, 'answer': text}), 'application/json')


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
        self.last_error = ''


class OracleServer:
    """The oracle behind the authors' HTTP API, served from a background thread.

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

    @property
    def last_error(self) -> str:
        """Why the last failed request failed (what Flask would log), or ''."""
        return self._httpd.last_error

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
