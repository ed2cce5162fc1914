"""The backend protocol shared by every model backend, its answer type and its error type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable
import unicodedata

import numpy as np

from robotracer_ros.prompts import MAX_INSTRUCTION_CHARS, clean_instruction

# BackendError.kind values
SERVER_DOWN = 'server_down'
TIMEOUT = 'timeout'
HTTP_STATUS = 'http_status'
NON_JSON = 'non_json'
BAD_RESPONSE = 'bad_response'
CONFIG = 'config'
MODEL = 'model'


class BackendError(RuntimeError):
    """A backend could not produce an answer; the message says why (never includes secrets).

    Attributes:
        kind: one of ``server_down``, ``timeout``, ``http_status``, ``non_json``,
            ``bad_response``, ``config``, ``model``.
        status: the HTTP status for ``http_status`` errors, else None.
    """

    def __init__(self, kind: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


@dataclass(frozen=True)
class BackendAnswer:
    """A model's raw answer.

    Attributes:
        text: the answer text, unmodified.
        model_id: ``"<backend>:<model>"``, e.g. ``"robotracer_http:RoboTracer"``.
        elapsed_s: round-trip time of the request (encoding + transport + inference), seconds.
        truncated: the model stopped at its token limit (the answer may be cut off).
        reasoning: the model's separate reasoning text, when the server returned one
            (reasoning models); never parsed.
    """

    text: str
    model_id: str
    elapsed_s: float
    truncated: bool = False
    reasoning: str = ''


@runtime_checkable
class TraceBackend(Protocol):
    """``backend(rgb, depth, K, instruction, mode_3d=...) -> BackendAnswer``.

    Args (of ``__call__``):
        rgb: (H, W, 3) uint8 RGB colour image.
        depth: (H', W') depth registered to the colour image (uint16 millimetres or float
            metres) or None.
        K: (3, 3) colour intrinsics.
        instruction: natural-language instruction.
        mode_3d: ask for a 3D ``(x, y, d)`` trace (True) or a 2D one.

    Raises (of ``__call__``):
        BackendError: the model could not be asked or did not answer.
    """

    name: str
    #: ``"<backend>:<model>"`` (for logs; each answer carries its own)
    model_id: str

    def __call__(
        self,
        rgb: np.ndarray,
        depth: np.ndarray | None,
        K: np.ndarray,
        instruction: str,
        *,
        mode_3d: bool = True,
    ) -> BackendAnswer:
        """Ask the model for a trace answer (see the class docstring)."""
        ...


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    """Validate the colour image a backend receives.

    Args:
        rgb: candidate image.

    Returns:
        The image as an ndarray.

    Raises:
        BackendError: (kind ``config``) not an (H, W, 3) uint8 image.
    """
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise BackendError(CONFIG, f'rgb must be (H, W, 3) uint8, got {arr.shape} {arr.dtype}')
    return arr


_ALLOWED_CONTROLS = frozenset('\t\n\r')


def check_instruction(instruction: str) -> str:
    """Validate an instruction and normalise it for a prompt; it is only ever data.

    The instruction is quoted into the prompt as text (its ``"`` become ``'``, so it cannot
    close the prompt's quotes), sent as a JSON string, and never evaluated; text that imitates
    the answer format stays part of the question. Limits: not empty, at most
    ``MAX_INSTRUCTION_CHARS`` (1000) characters after whitespace is collapsed, and no control
    characters other than tab and line breaks (which become spaces) -- an escape sequence or a
    NUL in an instruction is a mistake or an attack, and is refused rather than silently
    dropped.

    Args:
        instruction: the user's instruction.

    Returns:
        The instruction on one line, trimmed, with ``"`` replaced by ``'``.

    Raises:
        ValueError: not a string, empty, too long, or holds a control character (the message
            names it and its position).
    """
    if not isinstance(instruction, str):
        raise ValueError(f'instruction must be a string, got {type(instruction).__name__}')
    if len(instruction) > 4 * MAX_INSTRUCTION_CHARS + 1024:  # refuse huge input before scanning
        raise ValueError(
            f'instruction is {len(instruction)} characters, over the {MAX_INSTRUCTION_CHARS} limit'
        )
    for i, ch in enumerate(instruction):
        if ch in _ALLOWED_CONTROLS:
            continue
        if unicodedata.category(ch) in ('Cc', 'Cs'):
            raise ValueError(
                f'instruction holds the control character U+{ord(ch):04X} at position {i}; '
                'instructions must be plain text'
            )
    return clean_instruction(instruction)
