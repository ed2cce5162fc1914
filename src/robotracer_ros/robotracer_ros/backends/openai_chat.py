"""Any OpenAI-compatible chat-completions server (vLLM, SGLang, hosted gateways).

Design notes: docs/design-notes.md (robotracer_ros.backends.openai_chat).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from robotracer_ros import images
from robotracer_ros.backends._http import (
    MAX_RESPONSE_BYTES,
    display_url,
    post_json,
    scrub,
    secrets_of,
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
from robotracer_ros.prompts import build_prompt

MAX_TOKENS_FIELDS = ('max_tokens', 'max_completion_tokens')
_REASONING_FIELDS = ('reasoning_content', 'reasoning')


class OpenAIChatBackend:
    """Client of an OpenAI-compatible ``/chat/completions`` endpoint."""

    name = 'openai'

    def __init__(
        self,
        url: str = 'http://127.0.0.1:8000/v1',
        *,
        model: str = 'Qwen/Qwen3-VL-8B-Instruct',
        api_key_env: str = 'OPENAI_API_KEY',
        prompt_style: str = 'json',
        timeout_s: float = 60.0,
        retries: int = 1,
        max_tokens: int = 8192,
        max_tokens_field: str = 'max_tokens',
        temperature: float = 0.0,
        image_format: str = 'png',
        jpeg_quality: int = 90,
        png_compression: int = 0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        """Configure the client (no request is made here).

        Args:
            url: base URL (``.../v1``); ``/chat/completions`` is appended unless present.
            model: the served model's name.
            api_key_env: name of the environment variable holding the API key ('' = none).
            prompt_style: ``'json'`` (general VLM) or ``'robotracer'`` (tuple prompt).
            timeout_s: per-attempt timeout, seconds.
            retries: extra attempts on connection errors, timeouts, HTTP 429/5xx.
            max_tokens: completion token limit, reasoning included (0 = not sent: the server's
                default). Reasoning models need thousands; a vLLM server refuses a limit over
                its context length minus the prompt (``--max-model-len``).
            max_tokens_field: ``'max_tokens'`` (vLLM, SGLang, Gemini, most gateways) or
                ``'max_completion_tokens'`` (OpenAI's reasoning models refuse ``max_tokens``).
            temperature: sampling temperature (0 = deterministic; negative = not sent).
            image_format: ``'png'`` or ``'jpeg'`` (smaller, faster to encode).
            jpeg_quality: JPEG quality 1-100.
            png_compression: zlib level 0-9 for PNG (0 = uncompressed, fastest to encode).
            max_response_bytes: largest response body accepted (default 1 MiB).

        Raises:
            BackendError: (``config``) bad URL (or one carrying credentials), prompt style,
                image format, timeout or limit.
        """
        if not isinstance(url, str) or not url.startswith(('http://', 'https://')):
            raise BackendError(
                CONFIG, f'url {display_url(str(url))!r} must start with http:// or https://'
            )
        if url_has_credentials(url):
            raise BackendError(
                CONFIG,
                f'url {display_url(url)!r} carries credentials (user:password@); put the API '
                f'key in the environment variable named by api_key_env ({api_key_env!r})',
            )
        if not timeout_s > 0:
            raise BackendError(CONFIG, f'timeout_s must be > 0, got {timeout_s}')
        if max_response_bytes < 1024:
            raise BackendError(
                CONFIG, f'max_response_bytes must be >= 1024, got {max_response_bytes}'
            )
        if prompt_style not in ('json', 'robotracer'):
            raise BackendError(
                CONFIG, f"prompt_style must be 'json' or 'robotracer', got {prompt_style!r}"
            )
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
            raise BackendError(CONFIG, f'max_tokens must be an integer >= 0, got {max_tokens!r}')
        if max_tokens_field not in MAX_TOKENS_FIELDS:
            raise BackendError(
                CONFIG,
                f'max_tokens_field must be one of {", ".join(MAX_TOKENS_FIELDS)}, got '
                f'{max_tokens_field!r}',
            )
        if image_format not in ('png', 'jpeg'):
            raise BackendError(
                CONFIG, f"image_format must be 'png' or 'jpeg', got {image_format!r}"
            )
        base = url.rstrip('/')
        self.url = base if base.endswith('/chat/completions') else base + '/chat/completions'
        self.model = model
        self.api_key_env = api_key_env
        self.prompt_style = prompt_style
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.max_tokens = int(max_tokens)
        self.max_tokens_field = max_tokens_field
        self.temperature = float(temperature)
        self.image_format = image_format
        self.jpeg_quality = int(jpeg_quality)
        self.png_compression = int(png_compression)
        self.max_response_bytes = int(max_response_bytes)

    @property
    def model_id(self) -> str:
        """``openai:<model>``."""
        return f'{self.name}:{self.model}'

    def build_payload(
        self, rgb: np.ndarray, instruction: str, *, mode_3d: bool = True
    ) -> dict[str, Any]:
        """Encode the chat-completions request (exposed for benchmarks and tests).

        Args:
            rgb: (H, W, 3) uint8 RGB.
            instruction: the instruction.
            mode_3d: ask for (x, y, d) or (x, y).

        Returns:
            The JSON payload.

        Raises:
            BackendError: bad image or instruction.
        """
        check_rgb(rgb)
        try:
            prompt = build_prompt(
                check_instruction(instruction), style=self.prompt_style, mode_3d=mode_3d
            )
        except ValueError as exc:
            raise BackendError(CONFIG, f'bad instruction: {exc}') from exc
        if self.image_format == 'jpeg':
            url = images.to_data_url(
                images.encode_jpeg(rgb, quality=self.jpeg_quality), 'image/jpeg'
            )
        else:
            url = images.to_data_url(images.encode_png(rgb, compression=self.png_compression))
        payload: dict[str, Any] = {
            'model': self.model,
            'messages': [
                {
                    'role': 'user',
                    'content': [
                        {'type': 'image_url', 'image_url': {'url': url}},
                        {'type': 'text', 'text': prompt},
                    ],
                }
            ],
        }
        if self.max_tokens > 0:
            payload[self.max_tokens_field] = self.max_tokens
        if self.temperature >= 0:
            payload['temperature'] = self.temperature
        return payload

    def __call__(
        self,
        rgb: np.ndarray,
        depth: np.ndarray | None,
        K: np.ndarray,
        instruction: str,
        *,
        mode_3d: bool = True,
    ) -> BackendAnswer:
        """Ask the server (see :class:`~robotracer_ros.backends.base.TraceBackend`).

        General VLMs see only the colour image; ``depth`` and ``K`` are used later, when the
        answer is lifted.
        """
        t0 = time.perf_counter()
        payload = self.build_payload(rgb, instruction, mode_3d=mode_3d)
        headers = {}
        key = os.environ.get(self.api_key_env, '').strip() if self.api_key_env else ''
        if key:
            if not all(33 <= ord(c) < 127 for c in key):
                raise BackendError(
                    CONFIG,
                    f'the API key in ${self.api_key_env} holds characters an HTTP header cannot '
                    'carry (spaces, line breaks or non-ASCII); check how the variable is set',
                )
            headers['Authorization'] = f'Bearer {key}'
        secrets = secrets_of(headers)
        try:
            reply = post_json(
                self.url,
                payload,
                timeout_s=self.timeout_s,
                retries=self.retries,
                headers=headers,
                max_response_bytes=self.max_response_bytes,
            )
        except BackendError as exc:
            if exc.kind == HTTP_STATUS and exc.status in (401, 403) and not key:
                raise BackendError(
                    exc.kind,
                    f'{exc} (no API key sent: set the environment variable '
                    f'{self.api_key_env or "named by api_key_env"})',
                    status=exc.status,
                ) from exc
            if exc.kind == HTTP_STATUS and exc.status == 400 and _about_token_limit(str(exc)):
                raise BackendError(
                    exc.kind,
                    f'{exc} (the token limit does not fit: lower max_tokens in the model config '
                    f"(now {self.max_tokens}) or raise the server's context length, e.g. vLLM "
                    '--max-model-len)',
                    status=exc.status,
                ) from exc
            raise
        try:
            text, truncated, reasoning = self.parse_reply(reply)
        except BackendError as exc:
            exc.args = (scrub(str(exc), secrets),)
            raise
        return BackendAnswer(
            scrub(text, secrets),
            self.model_id,
            time.perf_counter() - t0,
            truncated=truncated,
            reasoning=scrub(reasoning, secrets),
        )

    def answer_from_reply(self, reply: Any) -> str:
        """The answer text in a decoded chat-completions reply.

        Args:
            reply: the decoded JSON reply.

        Returns:
            ``choices[0].message.content`` (content parts joined), unmodified.

        Raises:
            BackendError: see :meth:`parse_reply`.
        """
        return self.parse_reply(reply)[0]

    def parse_reply(self, reply: Any) -> tuple[str, bool, str]:
        """The answer text, whether it was cut off, and the separate reasoning text.

        Args:
            reply: the decoded JSON reply.

        Returns:
            (``choices[0].message.content`` with content parts joined, unmodified;
            ``finish_reason == 'length'``; ``reasoning_content`` or ``reasoning``, or '').

        Raises:
            BackendError: ``model`` when the model spent its token limit on reasoning and gave
                no answer; ``bad_response`` when there is no ``choices[0].message.content``,
                content that is not text (e.g. ``null`` for a refusal or a tool call), only
                reasoning, or the server's own ``error`` object.
        """
        url = display_url(self.url)
        try:
            choice = reply['choices'][0]
            message = choice['message']
            if 'content' not in message and not any(f in message for f in _REASONING_FIELDS):
                raise KeyError('content')
            content = message.get('content')
        except (KeyError, IndexError, TypeError, AttributeError):
            error = reply.get('error') if isinstance(reply, dict) else None
            if isinstance(error, dict):
                error = error.get('message', error)
            raise BackendError(
                BAD_RESPONSE,
                f'{url} answered without choices[0].message.content'
                + (f' (error: {shorten(str(error))})' if error else ''),
            ) from None
        finish = choice.get('finish_reason') if isinstance(choice, dict) else None
        truncated = finish == 'length'
        reasoning = next(
            (
                message[f]
                for f in _REASONING_FIELDS
                if isinstance(message.get(f), str) and message[f].strip()
            ),
            '',
        )
        if isinstance(content, list):  # content parts
            parts = [p.get('text') for p in content if isinstance(p, dict)]
            content = ''.join(t for t in parts if isinstance(t, str))
        if content is None or (isinstance(content, str) and not content.strip()):
            if truncated:
                raise BackendError(
                    MODEL,
                    f'model error: {url}: the model stopped at its token limit (max_tokens='
                    f'{self.max_tokens or "the server default"}, finish_reason "length") '
                    + (f'after {len(reasoning)} characters of reasoning ' if reasoning else '')
                    + 'and gave no answer: raise max_tokens in the model config',
                )
            if reasoning:
                raise BackendError(
                    BAD_RESPONSE,
                    f'{url} answered only reasoning ({len(reasoning)} characters) and no '
                    f'content (finish_reason {shorten(repr(finish), 30)}): the final answer is '
                    "missing, or the server's reasoning parser took it (vLLM "
                    '--reasoning-parser)',
                )
        if not isinstance(content, str):
            refusal = message.get('refusal') if isinstance(message, dict) else None
            raise BackendError(
                BAD_RESPONSE,
                f'{url} answered content of type {type(content).__name__}, not text'
                + (f' (refusal: {shorten(str(refusal))})' if refusal else ''),
            )
        return content, truncated, reasoning


def _about_token_limit(message: str) -> bool:
    """Whether an HTTP 400 message is a server refusing the token limit (vLLM, OpenAI)."""
    low = message.lower()
    return 'max_tokens' in low or 'max_completion_tokens' in low or 'context length' in low
