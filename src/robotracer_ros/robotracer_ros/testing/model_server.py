"""A recording model server on 127.0.0.1 for the perception tests and benchmark.

``ModelServer`` speaks RoboTracer's API (``POST /query``, path and base64 forms) and the
OpenAI chat-completions API (``POST /v1/chat/completions``). Each request is decoded the way a
real server would (PNG files read from disk or from data URLs) and recorded; the reply comes from
a replaceable ``reply`` function, so tests can make the server answer well, answer nonsense,
fail with an HTTP status, send non-JSON or be slow.

(:mod:`~robotracer_ros.testing.fault_server` is the one that misbehaves at the transport level.)
"""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import threading
import time
from typing import Any

import numpy as np

from robotracer_ros import images

GOOD_3D = '[(500, 500, 1.0), (600, 450, 0.95), (700, 400, 0.9), (750, 400, 0.9)]'


class Reply:
    """What the server sends back: an answer text, or a raw status/body, after a delay."""

    def __init__(
        self,
        answer: str | None = GOOD_3D,
        *,
        status: int = 200,
        body: bytes | None = None,
        delay_s: float = 0.0,
        result: int = 1,
    ) -> None:
        self.answer = answer
        self.status = status
        self.body = body
        self.delay_s = delay_s
        self.result = result


class ModelServer:
    """Threaded HTTP server on 127.0.0.1 with a RoboTracer and an OpenAI-compatible endpoint."""

    def __init__(
        self, reply: Callable[[dict[str, Any]], Reply] | None = None, *, decode: bool = True
    ) -> None:
        self.decode = decode
        self.reply = reply or (lambda req: Reply())
        self.requests: list[dict[str, Any]] = []
        self.server_time_s: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'
            disable_nagle_algorithm = True  # like real servers: no Nagle/delayed-ACK stalls

            def log_message(self, fmt: str, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                t0 = time.perf_counter()
                length = int(self.headers.get('Content-Length', 0))
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw)
                except ValueError:
                    payload = {}
                req = {'path': self.path, 'headers': dict(self.headers), 'json': payload}
                try:
                    if outer.decode:
                        req.update(outer._decode(self.path, payload))
                except Exception as exc:  # record what the server could not read
                    req['decode_error'] = f'{type(exc).__name__}: {exc}'
                outer.requests.append(req)
                rep = outer.reply(req)
                if rep.delay_s:
                    time.sleep(rep.delay_s)
                if rep.body is not None:
                    body = rep.body
                elif self.path.endswith('/chat/completions'):
                    body = json.dumps(
                        {
                            'id': 'chatcmpl-test',
                            'object': 'chat.completion',
                            'model': payload.get('model', ''),
                            'choices': [
                                {
                                    'index': 0,
                                    'finish_reason': 'stop',
                                    'message': {'role': 'assistant', 'content': rep.answer},
                                }
                            ],
                        }
                    ).encode()
                else:
                    body = json.dumps({'result': rep.result, 'answer': rep.answer}).encode()
                outer.server_time_s.append(time.perf_counter() - t0)
                try:
                    self.send_response(rep.status)
                    self.send_header('Content-Type', 'application/json')
                    self.send_header('Content-Length', str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # client gave up (timeout)
                    pass

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f'http://127.0.0.1:{self.port}'
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @staticmethod
    def _decode(path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Decode the images like the real servers (files from paths, or data URLs)."""
        out: dict[str, Any] = {}
        if path.endswith('/query'):
            if 'image_paths' in payload:
                out['rgb'] = images.read_image(payload['image_paths'][0])
                if payload.get('depth_z_paths'):
                    out['depth_mm'] = images.read_depth(payload['depth_z_paths'][0])
            if 'image_url' in payload:
                out['rgb'] = images.decode_image(images.from_data_url(payload['image_url'][0])[1])
                if payload.get('depth_url'):
                    out['depth_mm'] = images.decode_image(
                        images.from_data_url(payload['depth_url'][0])[1]
                    )
            out['K'] = np.asarray(payload.get('intrinsics'))
            out['text'] = payload.get('text')
        elif path.endswith('/chat/completions'):
            content = payload['messages'][0]['content']
            url = next(p['image_url']['url'] for p in content if p['type'] == 'image_url')
            out['rgb'] = images.decode_image(images.from_data_url(url)[1])
            out['text'] = next(p['text'] for p in content if p['type'] == 'text')
        return out

    def __enter__(self) -> ModelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
