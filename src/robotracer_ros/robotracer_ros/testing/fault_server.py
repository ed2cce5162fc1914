"""A real HTTP model server on 127.0.0.1 that misbehaves on request.

Design notes: docs/design-notes.md (robotracer_ros.testing.fault_server).
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import socket
import struct
import threading
import time
from typing import Any

GOOD_3D = '[(500, 500, 1.0), (560, 480, 0.98), (620, 460, 0.96), (680, 460, 0.96)]'
GOOD_2D = '[(500, 500), (560, 480), (620, 460), (680, 460)]'
FAULT_KINDS = (
    'none',
    'reset',
    'close',
    'slow',
    'drip',
    'status',
    'html',
    'raw',
    'no_answer',
    'echo_key',
)
HTML_PAGE = (
    b'<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n'
    b'<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx/1.25.3</center>'
    b'</body></html>\n'
)
_MAX_WAIT_S = 30.0


class FaultServer:
    """Threaded HTTP model server on 127.0.0.1 whose behaviour can be switched per request.

    Args:
        port: TCP port (0: a free one; see :attr:`url`).

    Use as a context manager (``with FaultServer() as s: ...``) or call :meth:`start` and
    :meth:`stop`.
    """

    def __init__(self, port: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._fault: dict[str, Any] = {'kind': 'none'}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'
            disable_nagle_algorithm = True
            timeout = 10.0  # a client that stalls mid-request does not hold a thread forever

            def log_message(self, fmt: str, *args: Any) -> None:  # quiet in tests
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                self._reply(200, json.dumps({'status': 'ok'}).encode())

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                try:
                    length = int(self.headers.get('Content-Length', 0))
                except ValueError:
                    length = 0
                raw = self.rfile.read(length) if length > 0 else b''
                try:
                    payload = json.loads(raw)
                except ValueError:
                    payload = None
                with outer._lock:
                    fault = dict(outer._fault)
                    outer.requests.append(
                        {'path': self.path, 'headers': dict(self.headers), 'json': payload}
                    )
                try:
                    outer._serve(self, fault, payload)
                except OSError:  # the client gave up (its deadline): nothing to answer
                    self.close_connection = True

            def _reply(
                self,
                status: int,
                body: bytes,
                ctype: str = 'application/json',
                reason: str | None = None,
                headers: dict[str, str] | None = None,
            ) -> None:
                self.send_response(status, reason)
                self.send_header('Content-Type', ctype)
                self.send_header('Content-Length', str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that went away is not the server's error

        self._httpd = Server(('127.0.0.1', port), Handler)
        self.host = '127.0.0.1'
        self.port = int(self._httpd.server_address[1])
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (RoboTracer's API at ``/query``, OpenAI's at ``/v1``)."""
        return f'http://{self.host}:{self.port}'

    def set_fault(self, kind: str = 'none', **params: Any) -> None:
        """Misbehave from the next request on.

        Args:
            kind: one of :data:`FAULT_KINDS`.
            **params: ``answer`` (text), ``status`` (HTTP code), ``body`` (bytes),
                ``delay_s`` (``slow``), ``drip_s`` (``drip``), ``content_type`` and
                ``headers`` (extra response headers; ``status`` and ``raw``).

        Raises:
            ValueError: unknown kind.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f'unknown fault {kind!r}; known: {", ".join(FAULT_KINDS)}')
        with self._lock:
            self._fault = {'kind': kind, **params}

    def clear_fault(self) -> None:
        """Answer normally again."""
        self.set_fault('none')

    def start(self) -> FaultServer:
        """Serve from a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={'poll_interval': 0.05},  # stop() returns promptly
                name='fault-server',
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping handlers and close the socket."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ behaviour

    @staticmethod
    def envelope(path: str, answer: str | None, *, with_answer: bool = True) -> bytes:
        """The success body of either API around ``answer``."""
        if path.rstrip('/').endswith('/chat/completions'):
            message: dict[str, Any] = {'role': 'assistant'}
            if with_answer:
                message['content'] = answer
            return json.dumps(
                {
                    'id': 'chatcmpl-fault',
                    'object': 'chat.completion',
                    'model': 'fault-server',
                    'choices': [{'index': 0, 'finish_reason': 'stop', 'message': message}]
                    if with_answer
                    else [],
                }
            ).encode()
        body: dict[str, Any] = {'result': 1}
        if with_answer:
            body['answer'] = answer
        return json.dumps(body).encode()

    def _serve(self, h: Any, fault: dict[str, Any], payload: Any) -> None:
        kind = fault['kind']
        answer = fault.get('answer', GOOD_3D)
        if kind == 'slow':
            self._stopping.wait(min(float(fault.get('delay_s', 5.0)), _MAX_WAIT_S))
            kind = 'none'
        if kind == 'none':
            h._reply(200, self.envelope(h.path, answer))
        elif kind in ('reset', 'close'):
            h.close_connection = True
            if kind == 'reset':  # SO_LINGER 0: close() sends RST instead of FIN
                h.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)
                )
            else:
                h.connection.shutdown(socket.SHUT_RDWR)
            h.connection.close()
        elif kind == 'drip':
            body = self.envelope(h.path, answer)
            h.send_response(200)
            h.send_header('Content-Type', 'application/json')
            h.send_header('Content-Length', str(len(body)))
            h.end_headers()
            h.wfile.flush()
            t_end = time.monotonic() + _MAX_WAIT_S
            for i in range(len(body)):
                if self._stopping.wait(float(fault.get('drip_s', 0.2))):
                    break
                if time.monotonic() > t_end:
                    break
                h.wfile.write(body[i : i + 1])
                h.wfile.flush()
            h.close_connection = True
        elif kind == 'status':
            status = int(fault.get('status', 500))
            body = fault.get('body')
            if body is None:
                body = json.dumps({'error': {'message': f'fault server: HTTP {status}'}}).encode()
            h._reply(status, body, headers=fault.get('headers'))
        elif kind == 'html':
            h._reply(int(fault.get('status', 502)), fault.get('body', HTML_PAGE), 'text/html')
        elif kind == 'raw':
            h._reply(
                int(fault.get('status', 200)),
                fault.get('body', b'Internal Server Error'),
                fault.get('content_type', 'text/plain'),
                headers=fault.get('headers'),
            )
        elif kind == 'no_answer':
            h._reply(200, self.envelope(h.path, None, with_answer=False))
        elif kind == 'echo_key':
            auth = h.headers.get('Authorization', '') or '(none)'
            status = int(fault.get('status', 401))
            body = json.dumps(
                {'error': {'message': f'Incorrect API key provided: {auth}', 'key': auth}}
            ).encode()
            h._reply(status, body, reason=f'Bad key {auth}')
