"""Model backends behind one protocol.

``(rgb, depth | None, K, instruction, *, mode_3d)`` -> :class:`BackendAnswer` (text, model id,
elapsed time); failures raise :class:`BackendError`.

==================  =================================================================
``robotracer_http``  RoboTracer's API server (``POST /query``; path or base64 form)
``openai``           any OpenAI-compatible chat-completions server (vLLM, SGLang, ...)
``transformers``     a local checkpoint (``AutoModelForImageTextToText``)
``replay``           recorded answers (JSONL)
==================  =================================================================
"""

from __future__ import annotations

from collections.abc import Callable
import inspect
from typing import Any

from robotracer_ros.backends.base import (
    CONFIG,
    BackendAnswer,
    BackendError,
    TraceBackend,
)

__all__ = ['BACKENDS', 'BackendAnswer', 'BackendError', 'TraceBackend', 'make_backend']


def _robotracer_http() -> Callable[..., TraceBackend]:
    from robotracer_ros.backends.robotracer_http import RoboTracerHttpBackend

    return RoboTracerHttpBackend


def _openai() -> Callable[..., TraceBackend]:
    from robotracer_ros.backends.openai_chat import OpenAIChatBackend

    return OpenAIChatBackend


def _transformers() -> Callable[..., TraceBackend]:
    from robotracer_ros.backends.transformers_local import TransformersBackend

    return TransformersBackend


def _replay() -> Callable[..., TraceBackend]:
    from robotracer_ros.backends.replay import ReplayBackend

    return ReplayBackend


BACKENDS: dict[str, Callable[[], Callable[..., TraceBackend]]] = {
    'robotracer_http': _robotracer_http,
    'openai': _openai,
    'transformers': _transformers,
    'replay': _replay,
}


def make_backend(name: str, **options: Any) -> TraceBackend:
    """Create a backend by name.

    Args:
        name: ``robotracer_http``, ``openai``, ``transformers`` or ``replay``.
        **options: the backend's constructor arguments (e.g. ``url``, ``model``, ``timeout_s``;
            ``model_path`` for transformers, ``path`` for replay). Options whose value is
            ``None`` or ``''`` are left at the backend's default.

    Returns:
        The backend.

    Raises:
        BackendError: (``config``) unknown name, unknown option (listing the accepted ones),
            or the backend's own configuration error.
    """
    if name not in BACKENDS:
        raise BackendError(CONFIG, f'unknown backend {name!r}; known: {", ".join(BACKENDS)}')
    cls = BACKENDS[name]()
    params = inspect.signature(cls.__init__).parameters
    accepted = [p for p in params if p != 'self']
    opts = {k: v for k, v in options.items() if v is not None and v != ''}
    unknown = sorted(set(opts) - set(accepted))
    if unknown:
        raise BackendError(
            CONFIG,
            f'backend {name!r} does not take option(s) {", ".join(unknown)}; it takes: '
            f'{", ".join(accepted)}',
        )
    return cls(**opts)
