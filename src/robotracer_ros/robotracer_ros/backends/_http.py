"""A small JSON-over-HTTP client with timeouts, bounded retries and errors that say why."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
from typing import Any
import urllib.error
import urllib.request
import uuid

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


def _short(text: str, n: int = 200) -> str:
    text = ' '.join(text.split())
    return text if len(text) <= n else text[:n] + '...'


_BIG = 4096


def encode_json(payload: Any) -> bytes:
    """``json.dumps(payload)`` as UTF-8 bytes, fast for payloads holding large data URLs.

    Base64 data URLs (megabytes of image) need no JSON escaping; they are spliced into the
    encoded text instead of being scanned character by character by ``json.dumps``.

    Args:
        payload: a JSON-serialisable value.

    Returns:
        The encoded JSON.

    Raises:
        TypeError, ValueError: the payload is not JSON-serialisable.
    """
    big: list[str] = []
    tag = uuid.uuid4().hex  # placeholders no text in the payload can contain

    def swap(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [swap(x) for x in v]
        if (
            isinstance(v, str)
            and len(v) > _BIG
            and v.startswith('data:')
            and v.isascii()
            and ';base64,' in v[:100]
            and '"' not in v
            and '\\' not in v
        ):
            big.append(v)
            return f'@@{tag}-{len(big) - 1}@@'
        return v

    text = json.dumps(swap(payload))
    if not big:
        return text.encode('utf-8')
    parts: list[bytes] = []
    rest = text
    for i, value in enumerate(big):
        head, rest = rest.split(f'@@{tag}-{i}@@', 1)
        parts += [head.encode('utf-8'), value.encode('ascii')]
    parts.append(rest.encode('utf-8'))
    return b''.join(parts)


def _post_once(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Any:
    req = urllib.request.Request(url, data=body, headers=headers, method='POST')
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        try:
            detail = exc.read().decode('utf-8', 'replace')
        except Exception:  # the body may be unreadable; the status still says enough
            detail = ''
        raise BackendError(
            HTTP_STATUS,
            f'HTTP {exc.code} {exc.reason} from {url}' + (f': {_short(detail)}' if detail else ''),
            status=exc.code,
        ) from exc
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise BackendError(TIMEOUT, f'no answer from {url} within {timeout_s:g} s') from exc
        if isinstance(reason, ConnectionRefusedError):
            raise BackendError(
                SERVER_DOWN, f'cannot reach {url}: connection refused (is the server running?)'
            ) from exc
        raise BackendError(SERVER_DOWN, f'cannot reach {url}: {reason}') from exc
    except TimeoutError as exc:
        raise BackendError(TIMEOUT, f'no answer from {url} within {timeout_s:g} s') from exc
    except (ConnectionError, http.client.HTTPException, OSError) as exc:
        raise BackendError(
            SERVER_DOWN, f'connection to {url} failed: {type(exc).__name__}: {exc}'
        ) from exc
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        shown = _short(raw.decode('utf-8', 'replace')) or '(empty body)'
        raise BackendError(NON_JSON, f'the answer from {url} is not JSON: {shown}') from exc


def post_json(
    url: str,
    payload: dict[str, Any],
    *,
    timeout_s: float,
    retries: int = 1,
    backoff_s: float = 0.2,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST a JSON payload and return the decoded JSON answer.

    Retries (at most ``retries`` more times) when the server is down, timed out, or answered
    HTTP 429/5xx; never on other 4xx or non-JSON answers. Header values (API keys) are never
    logged or put into error messages.

    Args:
        url: full URL.
        payload: JSON-serialisable body.
        timeout_s: per-attempt timeout, seconds.
        retries: extra attempts after the first (0 = no retry).
        backoff_s: wait before the first retry, doubled each time.
        headers: extra request headers.

    Returns:
        The decoded JSON value.

    Raises:
        BackendError: ``server_down``, ``timeout``, ``http_status`` or ``non_json``, with the
            URL and the reason in the message (the last attempt's error).
    """
    try:
        body = encode_json(payload)
    except (TypeError, ValueError) as exc:
        raise BackendError(
            BAD_RESPONSE, f'request payload is not JSON-serialisable: {exc}'
        ) from exc
    hdrs = {'Content-Type': 'application/json', 'Accept': 'application/json'}
    hdrs.update(headers or {})
    attempts = max(0, int(retries)) + 1
    delay = backoff_s
    for attempt in range(1, attempts + 1):
        try:
            return _post_once(url, body, hdrs, timeout_s)
        except BackendError as exc:
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
                url,
                attempt,
                attempts,
                exc,
                delay,
            )
            time.sleep(delay)
            delay *= 2
    raise AssertionError('unreachable')
