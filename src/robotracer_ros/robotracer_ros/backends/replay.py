"""Recorded answers from a JSONL file, for regression tests, benchmarks and demos offline.

Each line: ``{"instruction": "...", "answer": "...", "model_id": "...", "elapsed_s": 0.5}``
(only ``answer`` is required). ``match='instruction'`` answers with the first line whose
instruction equals the request's (whitespace-normalised, case-insensitive), falling back to
lines without an instruction; ``match='sequence'`` plays the lines in order (``loop`` to wrap).
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np

from robotracer_ros.backends.base import CONFIG, MODEL, BackendAnswer, BackendError


def _norm(text: str) -> str:
    return ' '.join(str(text).split()).lower()


class ReplayBackend:
    """Answer from recorded lines instead of a model."""

    name = 'replay'

    def __init__(self, path: str, *, match: str = 'instruction', loop: bool = True) -> None:
        """Load the recording.

        Args:
            path: JSONL file.
            match: ``'instruction'`` or ``'sequence'``.
            loop: ``sequence`` only: start over after the last line.

        Raises:
            BackendError: (``config``) missing file, bad line (with its number), no lines, or
                an unknown match mode.
        """
        if match not in ('instruction', 'sequence'):
            raise BackendError(CONFIG, f"match must be 'instruction' or 'sequence', got {match!r}")
        self.path = path
        self.match = match
        self.loop = loop
        self.records: list[dict] = []
        try:
            with open(path, encoding='utf-8') as f:
                for lineno, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except ValueError as exc:
                        raise BackendError(CONFIG, f'{path}:{lineno}: not JSON: {exc}') from exc
                    if not isinstance(rec, dict) or not isinstance(rec.get('answer'), str):
                        raise BackendError(CONFIG, f'{path}:{lineno}: needs an "answer" string')
                    self.records.append(rec)
        except OSError as exc:
            raise BackendError(CONFIG, f'cannot read replay file {path!r}: {exc}') from exc
        if not self.records:
            raise BackendError(CONFIG, f'replay file {path!r} has no answers')
        self._next = 0
        self._lock = threading.Lock()

    def __call__(
        self,
        rgb: np.ndarray,
        depth: np.ndarray | None,
        K: np.ndarray,
        instruction: str,
        *,
        mode_3d: bool = True,
    ) -> BackendAnswer:
        """Return the recorded answer for this request.

        Raises:
            BackendError: (``model``) no recorded answer for the instruction, or the sequence
                is exhausted.
        """
        t0 = time.perf_counter()
        if self.match == 'sequence':
            with self._lock:
                if self._next >= len(self.records):
                    if not self.loop:
                        raise BackendError(MODEL, f'replay file {self.path!r} is exhausted')
                    self._next = 0
                rec = self.records[self._next]
                self._next += 1
        else:
            want = _norm(instruction)
            rec = next((r for r in self.records if _norm(r.get('instruction', '')) == want), None)
            if rec is None:
                rec = next((r for r in self.records if 'instruction' not in r), None)
            if rec is None:
                raise BackendError(
                    MODEL, f'replay file {self.path!r} has no answer for {instruction!r}'
                )
        elapsed = float(rec.get('elapsed_s', time.perf_counter() - t0))
        return BackendAnswer(rec['answer'], str(rec.get('model_id', 'replay:recorded')), elapsed)
