"""Recorded answers from a JSONL file, for regression tests, benchmarks and demos offline.

Design notes: docs/design-notes.md (robotracer_ros.backends.replay).
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import numpy as np

from robotracer_ros.backends.base import CONFIG, MODEL, BackendAnswer, BackendError

MATCHES = ('instruction', 'sequence', 'question_id')


def _norm(text: str) -> str:
    return ' '.join(str(text).split()).lower()


def _record(rec: Any, where: str) -> dict[str, Any]:
    """One line as ``{"instruction"?, "answer", "_failed"?, ...}`` (both formats)."""
    if not isinstance(rec, dict):
        raise BackendError(CONFIG, f'{where}: a line must be a JSON object')
    if isinstance(rec.get('answer'), str):
        return rec
    if 'model_prediction' in rec:  # the authors' evaluation output
        pred = rec['model_prediction']
        if pred is not None and not isinstance(pred, str):
            raise BackendError(CONFIG, f'{where}: "model_prediction" must be text or null')
        out = dict(rec)
        out['answer'] = pred or ''
        if isinstance(rec.get('prompt'), str):
            out['instruction'] = rec['prompt']
        if not (pred or '').strip():
            out['_failed'] = str(rec.get('error') or 'the recorded prediction is empty')
        return out
    raise BackendError(CONFIG, f'{where}: needs an "answer" (or "model_prediction") string')


class ReplayBackend:
    """Answer from recorded lines instead of a model."""

    name = 'replay'

    def __init__(
        self,
        path: str,
        *,
        match: str = 'instruction',
        loop: bool = True,
        question_id: int | str | None = None,
    ) -> None:
        """Load the recording.

        Args:
            path: JSONL file.
            match: ``'instruction'``, ``'sequence'`` or ``'question_id'``.
            loop: ``sequence`` only: start over after the last line.
            question_id: ``question_id`` only: the question to answer.

        Raises:
            BackendError: (``config``) missing file, bad line (with its number), no lines, an
                unknown match mode, or a question id the file does not hold.
        """
        if match not in MATCHES:
            raise BackendError(CONFIG, f'match must be one of {", ".join(MATCHES)}, got {match!r}')
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
                    self.records.append(_record(rec, f'{path}:{lineno}'))
        except OSError as exc:
            raise BackendError(CONFIG, f'cannot read replay file {path!r}: {exc}') from exc
        if not self.records:
            raise BackendError(CONFIG, f'replay file {path!r} has no answers')
        self.model_id = 'replay:' + os.path.splitext(os.path.basename(path))[0]
        self.question = None
        if match == 'question_id':
            if question_id is None:
                raise BackendError(CONFIG, "match 'question_id' needs question_id")
            self.question = next(
                (r for r in self.records if str(r.get('question_id')) == str(question_id)), None
            )
            if self.question is None:
                raise BackendError(
                    CONFIG, f'replay file {path!r} has no question_id {question_id!r}'
                )
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
            BackendError: (``model``) no recorded answer for the instruction, the sequence is
                exhausted, or the recorded request failed.
        """
        t0 = time.perf_counter()
        if self.question is not None:
            rec = self.question
        elif self.match == 'sequence':
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
        if '_failed' in rec:
            qid = f' (question_id {rec["question_id"]})' if 'question_id' in rec else ''
            raise BackendError(MODEL, f'the recorded request failed{qid}: {rec["_failed"]}')
        elapsed = float(rec.get('elapsed_s', time.perf_counter() - t0))
        return BackendAnswer(rec['answer'], str(rec.get('model_id', self.model_id)), elapsed)
