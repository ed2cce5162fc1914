"""A small JSON-over-HTTP client with deadlines, bounded retries and errors that say why.

Design notes: docs/design-notes.md (robotracer_ros.backends._http).
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
import re
import socket
import threading
import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request
import uuid

import numpy as np

from robotracer_ros.backends.base import (
    BAD_RESPONSE,
    HTTP_STATUS,
    NON_JSON,
    SERVER_DOWN,
    TIMEOUT,
    BackendError,
)

LOG = logging.getLogger(__name__)
_RETRYABLE = (SERVER_DOWN, TIMEOUT)
MAX_RESPONSE_BYTES = 1024 * 1024
_MAX_ERROR_BODY = 64 * 1024
_SECRET_HEADERS = ('authorization', 'proxy-authorization', 'x-api-key', 'api-key')
_REDACTED = '[redacted]'
_HTML_RE = re.compile(r'<\s*(?:!doctype|html|head|body|title)\b', re.IGNORECASE)
_TITLE_RE = re.compile(r'<title[^>]*>([^<]{0,300})<', re.IGNORECASE)
_TAG_RE = re.compile(r'<[^>]{0,1000}>')


def shorten(text: str, n: int = 200) -> str:
    """One line, at most ``n`` characters, non-printable characters shown as ``?``."""
    text = ' '.join(text[: 8 * n].split())
    text = ''.join(c if c.isprintable() else '?' for c in text)
    return text if len(text) <= n else text[:n] + '...'


def describe_body(raw: bytes) -> str:
    """A short, printable description of a response body for an error message.

    Args:
        raw: the body as received.

    Returns:
        ``(empty body)``, ``an HTML page titled '...'``, or the body's start on one line.
    """
    if not raw.strip():
        return '(empty body)'
    text = raw[:_MAX_ERROR_BODY].decode('utf-8', 'replace')
    if _HTML_RE.search(text[:2000]):
        title = _TITLE_RE.search(text[:4096])
        shown = shorten(title.group(1), 80) if title else ''
        if shown:
            return f'an HTML page titled {shown!r}'
        return f'an HTML page: {shorten(_TAG_RE.sub(" ", text), 120)}'
    return shorten(text)


def display_url(url: str) -> str:
    """The URL as shown in messages and logs: no user info, no query string, no fragment."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ''
        if ':' in host:
            host = f'[{host}]'
        port = f':{parts.port}' if parts.port else ''
    except ValueError:
        return '(unparseable URL)'
    return f'{parts.scheme}://{host}{port}{parts.path}'


def url_has_credentials(url: str) -> bool:
    """True when ``url`` carries user info (``http://user:key@host``)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    return parts.username is not None or parts.password is not None


def secrets_of(headers: dict[str, str] | None) -> list[str]:
    """The sensitive values in ``headers`` (whole values and their token part), longest first."""
    out: set[str] = set()
    for name, value in (headers or {}).items():
        if name.lower() in _SECRET_HEADERS and value:
            out.add(value)
            token = value.split(None, 1)[-1]
            if len(token) >= 4:
                out.add(token)
    return sorted(out, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret replaced by ``[redacted]``."""
    for s in secrets:
        if s:
            text = text.replace(s, _REDACTED)
    return text


def worst_case_s(timeout_s: float, retries: int, backoff_s: float = 0.2) -> float:
    """The longest :func:`post_json` can take: every attempt at its deadline plus back-offs."""
    attempts = max(0, int(retries)) + 1
    return attempts * timeout_s + backoff_s * (2 ** (attempts - 1) - 1)


_BIG = 4096


def _needs_no_escape(raw: bytes) -> bool:
    """True when ``json.dumps`` writes this ASCII text unchanged.

    That is: printable characters only (0x20-0x7e: no control characters), no quote, no
    backslash.

    Vectorised (numpy's min/max and memchr) instead of ``str.isprintable``'s per-character
    lookup, which took longer than base64-encoding the images.
    """
    if raw.find(b'"') >= 0 or raw.find(b'\\') >= 0:
        return False
    a = np.frombuffer(raw, np.uint8)
    return int(a.min()) >= 0x20 and int(a.max()) <= 0x7E


def encode_json(payload: Any) -> bytes:
    """The request body: ``json.dumps(payload, allow_nan=False)`` as UTF-8 bytes, fast.

    Byte for byte what ``requests.post(url, json=payload)`` sends (the authors' client):
    ``json.dumps`` with its default ``", "``/``": "`` separators and ASCII escapes, no NaN.
    Long strings that need no JSON escaping (base64 images, data URLs: megabytes) are spliced
    into the encoded text instead of being scanned character by character by ``json.dumps``.

    Args:
        payload: a JSON-serialisable value.

    Returns:
        The encoded JSON.

    Raises:
        TypeError, ValueError: the payload is not JSON-serialisable (or holds NaN/infinity).
    """
    big: list[bytes] = []
    tag = uuid.uuid4().hex  # placeholders no text in the payload can contain

    def swap(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [swap(x) for x in v]
        if isinstance(v, str) and len(v) > _BIG and v.isascii():  # isascii: a flag, O(1)
            raw = v.encode('ascii')
            if _needs_no_escape(raw):
                big.append(raw)
                return f'@@{tag}-{len(big) - 1}@@'
        return v

    text = json.dumps(swap(payload), allow_nan=False)
    if not big:
        return text.encode('utf-8')
    parts: list[bytes] = []
    rest = text
    for i, value in enumerate(big):
        head, rest = rest.split(f'@@{tag}-{i}@@', 1)
        parts += [head.encode('utf-8'), value]
    parts.append(rest.encode('utf-8'))
    return b''.join(parts)


def decode_json_body(raw: bytes, url: str) -> Any:
    """Decode a response body as JSON.

    Args:
        raw: the body.
        url: the URL it came from (for the message; shown without credentials).

    Returns:
        The decoded value.

    Raises:
        BackendError: (``non_json``) the body is not UTF-8 JSON; the message shows its start.
    """
    try:
        return json.loads(raw)
    except RecursionError:
        raise BackendError(
            NON_JSON, f'the answer from {display_url(url)} is JSON nested too deeply'
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise BackendError(
            NON_JSON, f'the answer from {display_url(url)} is not JSON: {describe_body(raw)}'
        ) from None


class _Watchdog:
    """Shuts the attempt's socket down at its deadline, so no read can outlive it."""

    def __init__(self, timeout_s: float) -> None:
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self.fired = False
        self._done = False
        self._timer = threading.Timer(timeout_s, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._socks.append(sock)
            fired = self.fired
        if fired:
            self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        try:  # the plain socket's shutdown, also under TLS: wakes any blocked read
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            socks = list(self._socks)
        for s in socks:
            self._shutdown(s)

    def finish(self) -> bool:
        """Stop the timer; True when the deadline passed first (the result may be cut off)."""
        self._timer.cancel()
        with self._lock:
            self._done = True
            return self.fired


class _WatchedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, watchdog: _Watchdog, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._watchdog = watchdog

    def connect(self) -> None:
        super().connect()
        self._watchdog.watch(self.sock)


class _WatchedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, watchdog: _Watchdog, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._watchdog = watchdog

    def connect(self) -> None:
        super().connect()
        self._watchdog.watch(self.sock)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self._watchdog = watchdog

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(
            functools.partial(_WatchedHTTPConnection, watchdog=self._watchdog), req
        )


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self._watchdog = watchdog

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(
            functools.partial(_WatchedHTTPSConnection, watchdog=self._watchdog),
            req,
            context=self._context,
        )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: the 3xx becomes an ``http_status`` error (keys stay with the host)."""

    def redirect_request(self, *args: Any, **kw: Any) -> None:
        return None


def _read_bounded(resp: Any, limit: int, url: str) -> bytes:
    length = resp.headers.get('Content-Length')
    if length is not None and length.strip().isdigit() and int(length) > limit:
        raise BackendError(
            BAD_RESPONSE,
            f'the answer from {display_url(url)} is {int(length)} bytes, over the '
            f'{limit}-byte limit (max_response_bytes)',
        )
    raw = resp.read(limit + 1)
    if len(raw) > limit:
        raise BackendError(
            BAD_RESPONSE,
            f'the answer from {display_url(url)} is over the {limit}-byte limit '
            '(max_response_bytes)',
        )
    return raw


def _post_once(
    url: str, body: bytes, headers: dict[str, str], timeout_s: float, max_bytes: int
) -> Any:
    shown = display_url(url)
    req = urllib.request.Request(url, data=body, headers=headers, method='POST')
    watchdog = _Watchdog(timeout_s)
    opener = urllib.request.build_opener(
        _HTTPHandler(watchdog), _HTTPSHandler(watchdog), _NoRedirect()
    )
    late = f'no complete answer from {shown} within {timeout_s:g} s'
    try:
        with opener.open(req, timeout=timeout_s) as resp:
            raw = _read_bounded(resp, max_bytes, url)
    except BackendError:
        watchdog.finish()
        raise
    except urllib.error.HTTPError as exc:
        try:
            detail = exc.read(_MAX_ERROR_BODY) if exc.fp is not None else b''
        except Exception:  # the body may be unreadable; the status still says enough
            detail = b''
        finally:
            exc.close()
        if watchdog.finish():
            raise BackendError(TIMEOUT, late) from None
        where = f'HTTP {exc.code} {shorten(str(exc.reason or ""), 80)}'.rstrip()
        if 300 <= exc.code < 400:
            target = display_url(exc.headers.get('Location', '') or '') if exc.headers else ''
            raise BackendError(
                HTTP_STATUS,
                f'{where} from {shown}: redirected'
                + (f' to {target}' if target else '')
                + '; redirects are not followed (use the final URL)',
                status=exc.code,
            ) from None
        raise BackendError(
            HTTP_STATUS,
            f'{where} from {shown}' + (f': {describe_body(detail)}' if detail.strip() else ''),
            status=exc.code,
        ) from None
    except Exception as exc:  # every transport failure becomes a BackendError that says why
        if watchdog.finish() or _is_timeout(exc):
            raise BackendError(TIMEOUT, late) from None
        raise _transport_error(exc, shown) from None
    if watchdog.finish():
        raise BackendError(TIMEOUT, late)
    return decode_json_body(raw, url)


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc.reason, str):
        exc = exc.reason  # type: ignore[assignment]
    return isinstance(exc, (TimeoutError, socket.timeout))


def _transport_error(exc: BaseException, shown: str) -> BackendError:
    reason: BaseException | str = exc
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
    if isinstance(reason, ConnectionRefusedError):
        return BackendError(
            SERVER_DOWN, f'cannot reach {shown}: connection refused (is the server running?)'
        )
    if isinstance(reason, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        return BackendError(
            SERVER_DOWN,
            f'{shown} closed the connection without an answer '
            f'({type(reason).__name__}: {shorten(str(reason), 120)})',
        )
    if isinstance(reason, socket.gaierror):
        return BackendError(SERVER_DOWN, f'cannot reach {shown}: unknown host ({reason})')
    if isinstance(reason, http.client.IncompleteRead):
        return BackendError(
            BAD_RESPONSE,
            f'the answer from {shown} was cut off ({len(reason.partial)} bytes received, '
            f'{reason.expected} more expected)',
        )
    if isinstance(reason, (http.client.HTTPException, ValueError)):
        return BackendError(
            BAD_RESPONSE,
            f'{shown} sent a broken HTTP response ({type(reason).__name__}: '
            f'{shorten(str(reason), 120)})',
        )
    if isinstance(reason, (OSError, str)):
        what = reason if isinstance(reason, str) else f'{type(reason).__name__}: {reason}'
        return BackendError(SERVER_DOWN, f'cannot reach {shown}: {shorten(str(what), 160)}')
    return BackendError(
        BAD_RESPONSE,
        f'request to {shown} failed unexpectedly ({type(reason).__name__}: '
        f'{shorten(str(reason), 120)})',
    )


def post_json(
    url: str,
    payload: dict[str, Any],
    *,
    timeout_s: float,
    retries: int = 1,
    backoff_s: float = 0.2,
    headers: dict[str, str] | None = None,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
) -> Any:
    """POST a JSON payload and return the decoded JSON answer.

    Retries (at most ``retries`` more times) when the server is down, timed out, or answered
    HTTP 429/5xx; never on other 4xx, non-JSON or oversized answers. Returns or raises within
    :func:`worst_case_s` ``(timeout_s, retries, backoff_s)``. Sensitive header values (API keys)
    are never logged or put into error messages, even when the server echoes them.

    Args:
        url: full URL.
        payload: JSON-serialisable body.
        timeout_s: deadline of each attempt (connect + send + complete answer), seconds.
        retries: extra attempts after the first (0 = no retry).
        backoff_s: wait before the first retry, doubled each time.
        headers: extra request headers.
        max_response_bytes: largest response body accepted.

    Returns:
        The decoded JSON value.

    Raises:
        BackendError: ``server_down``, ``timeout``, ``http_status``, ``non_json`` or
            ``bad_response``, with the URL and the reason in the message (the last attempt's
            error).
    """
    secrets = secrets_of(headers)
    try:
        body = encode_json(payload)
    except (TypeError, ValueError) as exc:
        raise BackendError(
            BAD_RESPONSE, f'request payload is not JSON-serialisable: {exc}'
        ) from None
    hdrs = {'Content-Type': 'application/json', 'Accept': 'application/json'}
    hdrs.update(headers or {})
    attempts = max(0, int(retries)) + 1
    delay = backoff_s
    for attempt in range(1, attempts + 1):
        try:
            return _post_once(url, body, hdrs, timeout_s, max_response_bytes)
        except BackendError as exc:
            exc.args = (scrub(str(exc), secrets),)
            retryable = exc.kind in _RETRYABLE or (
                exc.kind == HTTP_STATUS
                and exc.status is not None
                and (exc.status == 429 or exc.status >= 500)
            )
            if not retryable or attempt == attempts:
                if attempts > 1:
                    exc.args = (f'{exc} (after {attempt} attempt(s))',)
                raise
            LOG.warning(
                'request to %s failed (attempt %d/%d): %s; retrying in %.2f s',
                display_url(url),
                attempt,
                attempts,
                exc,
                delay,
            )
            time.sleep(delay)
            delay *= 2
    raise AssertionError('unreachable')
