"""A recording model server on 127.0.0.1 for the perception tests and benchmark.

``ModelServer`` speaks the authors' API the way their Flask servers do (``POST /query``; RoboTracer
``API/Qwen3VL.py``, RoboRefer ``API/api.py`` and the path form of RoboTracer's evaluation client)
and the OpenAI chat-completions API (``POST /v1/chat/completions``). Each request is decoded the
way the real server would: ``image_url``/``depth_url`` entries through ``base64.b64decode`` and
an image decoder (so a ``data:`` prefix fails, as it does there), ``image_paths``/
``depth_z_paths`` read from disk. What the real server could not read gets Flask's HTML
"500 Internal Server Error" page, a body that is not JSON its "400 Bad Request" page. Every
request is recorded (with its raw body); the reply comes from a replaceable ``reply`` function,
so tests can make the server answer well, answer nonsense, fail with an HTTP status, send
non-JSON or be slow.

(:mod:`~robotracer_ros.testing.fault_server` is the one that misbehaves at the transport level.)
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import threading
import time
from typing import Any

import numpy as np

from robotracer_ros import images

GOOD_3D = '[(500, 500, 1.0), (600, 450, 0.95), (700, 400, 0.9), (750, 400, 0.9)]'

#: the bodies of Flask's (Werkzeug 3) default error pages, as the authors' servers send them
#: (``Content-Type: text/html; charset=utf-8``); robotracer_sim's oracle sends the same bytes
FLASK_ERROR_PAGES: dict[int, bytes] = {
    400: b'<!doctype html>\n<html lang=en>\n<title>400 Bad Request</title>\n<h1>Bad Request</h1>\n'
    b'<p>The browser (or proxy) sent a request that this server could not understand.</p>\n',
    404: b'<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n'
    b'<p>The requested URL was not found on the server. If you entered the URL manually please '
    b'check your spelling and try again.</p>\n',
    405: b'<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n'
    b'<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n',
    415: b'<!doctype html>\n<html lang=en>\n<title>415 Unsupported Media Type</title>\n'
    b'<h1>Unsupported Media Type</h1>\n<p>Did not attempt to load JSON data because the request '
    b'Content-Type was not &#39;application/json&#39;.</p>\n',
    500: b'<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n'
    b'<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was unable '
    b'to complete your request. Either the server is overloaded or there is an error in the '
    b'application.</p>\n',
}
FLASK_HTML = 'text/html; charset=utf-8'


def flask_json(value: dict[str, Any]) -> bytes:
    """A body as Flask's ``jsonify`` writes it: sorted keys, compact, a final newline."""
    return (json.dumps(value, sort_keys=True, separators=(',', ':')) + '\n').encode()


class Reply:
    """What the server sends back: an answer text, or a raw status/body, after a delay.

    Attributes (chat completions only): ``finish_reason``, ``reasoning`` (sent as
    ``reasoning_field``) and ``content_null`` (``content`` is ``null``).
    """

    def __init__(
        self,
        answer: str | None = GOOD_3D,
        *,
        status: int = 200,
        body: bytes | None = None,
        delay_s: float = 0.0,
        result: int = 1,
        content_type: str = 'application/json',
        finish_reason: str = 'stop',
        reasoning: str | None = None,
        reasoning_field: str = 'reasoning_content',
    ) -> None:
        self.answer = answer
        self.status = status
        self.body = body
        self.delay_s = delay_s
        self.result = result
        self.content_type = content_type
        self.finish_reason = finish_reason
        self.reasoning = reasoning
        self.reasoning_field = reasoning_field


class ModelServer:
    """Threaded HTTP server on 127.0.0.1 with the authors' and an OpenAI-compatible endpoint."""

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

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header('Content-Type', ctype)
                    self.send_header('Content-Length', str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # client gave up (timeout)
                    pass

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                t0 = time.perf_counter()
                length = int(self.headers.get('Content-Length', 0))
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw)
                except ValueError:
                    payload = None
                req: dict[str, Any] = {
                    'path': self.path,
                    'headers': dict(self.headers),
                    'json': payload,
                    'body': raw,
                }
                authors = self.path.rstrip('/').endswith('/query')
                if authors and payload is None:  # Flask's request.get_json()
                    req['decode_error'] = 'the body is not JSON'
                    outer.requests.append(req)
                    self._send(400, FLASK_ERROR_PAGES[400], FLASK_HTML)
                    return
                try:
                    if outer.decode:
                        req.update(outer._decode(self.path, payload))
                except Exception as exc:  # what the real server could not read
                    req['decode_error'] = f'{type(exc).__name__}: {exc}'
                outer.requests.append(req)
                if authors and 'decode_error' in req:  # the Flask app raised: its 500 page
                    self._send(500, FLASK_ERROR_PAGES[500], FLASK_HTML)
                    return
                rep = outer.reply(req)
                if rep.delay_s:
                    time.sleep(rep.delay_s)
                if rep.body is not None:
                    body = rep.body
                elif self.path.endswith('/chat/completions'):
                    message: dict[str, Any] = {'role': 'assistant', 'content': rep.answer}
                    if rep.reasoning is not None:
                        message[rep.reasoning_field] = rep.reasoning
                    body = json.dumps(
                        {
                            'id': 'chatcmpl-test',
                            'object': 'chat.completion',
                            'model': (payload or {}).get('model', ''),
                            'choices': [
                                {
                                    'index': 0,
                                    'finish_reason': rep.finish_reason,
                                    'message': message,
                                }
                            ],
                        }
                    ).encode()
                else:
                    body = flask_json({'result': rep.result, 'answer': rep.answer})
                outer.server_time_s.append(time.perf_counter() - t0)
                self._send(rep.status, body, rep.content_type)

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f'http://127.0.0.1:{self.port}'
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @staticmethod
    def _decode(path: str, payload: Any) -> dict[str, Any]:
        """Decode the images like the real servers (files from paths, or raw base64)."""
        out: dict[str, Any] = {}
        if path.rstrip('/').endswith('/query'):
            data = payload  # the authors' servers call data.get(...) on it
            if data.get('image_paths') is not None:  # RoboTracer's spatial-encoder form
                out['rgb'] = images.read_image(data['image_paths'][0])
                if data.get('depth_z_paths'):
                    out['depth_mm'] = images.read_depth(data['depth_z_paths'][0])
                if data.get('intrinsics') is not None:
                    out['K'] = np.asarray(data['intrinsics'], dtype=float)
            else:  # query_server's base64 form: base64.b64decode(str) as the servers do
                urls = data.get('image_url', [])
                if urls:
                    out['rgb'] = images.decode_image(base64.b64decode(urls[0]))
                depth_urls = data.get('depth_url', [])
                if data.get('enable_depth', 0) == 1 and depth_urls:
                    if len(depth_urls) != len(urls):
                        raise AssertionError("Depth URL's number is not equal to Image URL's")
                    out['depth_mm'] = images.decode_image(base64.b64decode(depth_urls[0]))
            out['text'] = data.get('text', '')
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
