"""TraceSpatial-Bench's files: predictions in the published JSONL format, answers, raw data.

A predictions file (RoboTracer's ``Evaluation/outputs/<Model>_<2D|3D>.jsonl``) has one JSON
object per question: ``question_id``, ``prompt``, ``model_prediction`` (the raw answer),
``trajectory`` (ground truth, camera frame, metres, y down), ``bbox_center`` /
``bbox_extent`` (full side lengths) / ``bbox_rotation`` (local → camera) of the destination,
``gt_depth_intrinsics`` (3×3 or 4×4) and the benchmark-relative ``image_path``,
``gt_depth_path`` (16-bit PNG, millimetres) and ``mask_path`` (the target, > 0 inside) under
the benchmark folder's ``raw_data/``.

Answers are read as the benchmark reads them (:func:`parse_answer`): RoboTracer's tuples
``[(x, y), ...]`` / ``[(x, y, d), ...]`` with x, y in 0–1000, or, for general VLMs (the
benchmark's ``Qwen`` / ``Gemini`` runs), the points of the first fenced code block's JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
import json
from pathlib import Path
import re
from typing import Any

import numpy as np

TUPLES = 'tuples'
JSON = 'json'
PRODUCT = 'product'
PARSERS = (TUPLES, JSON, PRODUCT)

_TUPLE = re.compile(r'\(([-+]?\d+\.?\d*(?:,\s*[-+]?\d+\.?\d*)*?)\)')
_FENCE = re.compile(r'```(?:\w+)?\n(.*?)```', re.DOTALL)


class BenchDataError(ValueError):
    """A predictions file or a benchmark file cannot be read; the message says which and why."""


# ---------------------------------------------------------------------------------- answers


def parse_tuples(text: str) -> np.ndarray:
    """RoboTracer's answer ``[(x, y[, d]), ...]`` → points with x, y / 1000 (rounded to 1e-6).

    Tuples with fewer than 2 numbers are ignored; when some tuples have a depth and others do
    not, the missing depths are NaN.

    Returns:
        (N, 2) or (N, 3) float array; (0, 2) when nothing parses.
    """
    if not isinstance(text, str) or not text.strip():
        return np.zeros((0, 2))
    pts: list[tuple[float, ...]] = []
    for match in _TUPLE.findall(text):
        nums = [float(s.strip()) for s in match.split(',')]
        if len(nums) < 2:
            continue
        xy = (round(nums[0] / 1000.0, 6), round(nums[1] / 1000.0, 6))
        pts.append(xy + ((nums[2],) if len(nums) >= 3 else ()))
    if not pts:
        return np.zeros((0, 2))
    if max(len(p) for p in pts) == 2:
        return np.array(pts, dtype=float)
    arr = np.full((len(pts), 3), np.nan)
    for i, p in enumerate(pts):
        arr[i, : len(p)] = p
    return arr


def parse_json_block(text: str) -> np.ndarray:
    """A general VLM's answer: every ``[x, y]`` / ``[x, y, d]`` list in the first fenced block.

    x, y are divided by 1000 (rounded to 1e-6); d is kept.

    Returns:
        (N, 2) or (N, 3); (0, 3) when there is no fenced block or it is not JSON.

    Raises:
        ValueError: the block mixes 2- and 3-number points (the benchmark fails on these too).
    """
    m = _FENCE.search(text if isinstance(text, str) else '')
    if not m:
        return np.empty((0, 3))
    try:
        data = json.loads(m.group(1).strip())
    except json.JSONDecodeError:
        return np.empty((0, 3))
    found: list[list[float]] = []

    def visit(obj: Any) -> None:
        if isinstance(obj, list):
            if len(obj) in (2, 3) and all(isinstance(v, (int, float)) for v in obj):
                found.append(obj)
            else:
                for item in obj:
                    visit(item)
        elif isinstance(obj, dict):
            for value in obj.values():
                visit(value)

    visit(data)
    out = []
    for p in found:
        xy = [round(p[0] / 1000.0, 6), round(p[1] / 1000.0, 6)]
        out.append(xy + ([float(p[2])] if len(p) == 3 else []))
    if not out:
        return np.empty((0,))
    if len({len(p) for p in out}) > 1:
        raise ValueError('answer mixes 2D and 3D points')
    return np.array(out, dtype=float)


def parser_for_model(model_name: str) -> str:
    """The answer parser the benchmark uses for a model name.

    ``RoboTracer`` → tuples; ``Qwen`` / ``Gemini`` → JSON block; anything else → tuples.
    """
    if 'RoboTracer' in model_name:
        return TUPLES
    if 'Qwen' in model_name or 'Gemini' in model_name:
        return JSON
    return TUPLES


def parse_product(text: str) -> np.ndarray:
    """Read an answer as the robot does (``robotracer_ros.parsing.parse_trace``).

    Not the benchmark's rule: the product's parser also reads unfenced JSON, point objects and
    picks the most complete list; a refused answer is scored as an empty one.

    Returns:
        (N, 2) or (N, 3) with x, y / 1000; (0, 2) when the parser refuses the answer.
    """
    from robotracer_ros.parsing import parse_trace

    try:
        parsed = parse_trace(text)
    except ValueError:
        return np.zeros((0, 2))
    xy = parsed.xy / 1000.0
    return xy if parsed.depth is None else np.column_stack([xy, parsed.depth])


def parse_answer(text: str, parser: str) -> np.ndarray:
    """Parse an answer with ``parser``: ``tuples``, ``json`` or ``product`` (see those).

    Raises:
        ValueError: unknown parser, or an answer the parser refuses.
    """
    if parser == TUPLES:
        return parse_tuples(text)
    if parser == JSON:
        return parse_json_block(text)
    if parser == PRODUCT:
        return parse_product(text)
    raise ValueError(f'unknown parser {parser!r}; known: {", ".join(PARSERS)}')


# ---------------------------------------------------------------------------------- files


@dataclass(frozen=True)
class Question:
    """One benchmark question with its prediction.

    Attributes:
        qid: ``question_id``.
        prompt: the instruction.
        answer: ``model_prediction`` (the raw answer text; '' when absent).
        trajectory: (N, 3) ground truth, camera frame, metres.
        bbox_center: (3,) destination box centre, or None.
        bbox_extent: (3,) full side lengths, or None.
        bbox_rotation: (3, 3) local → camera, or None.
        intrinsics: the ``gt_depth_intrinsics`` matrix as given, or None.
        image_path: benchmark-relative path of the colour image.
        depth_path: benchmark-relative path of the depth PNG (millimetres).
        mask_path: benchmark-relative path of the target mask.
        raw: the whole JSON object (written back unchanged with the scores).
    """

    qid: Any
    prompt: str
    answer: str
    trajectory: np.ndarray
    bbox_center: np.ndarray | None
    bbox_extent: np.ndarray | None
    bbox_rotation: np.ndarray | None
    intrinsics: Any
    image_path: str
    depth_path: str
    mask_path: str
    raw: dict

    @property
    def has_box(self) -> bool:
        """The destination box is given."""
        return (
            self.bbox_center is not None
            and self.bbox_extent is not None
            and self.bbox_rotation is not None
        )


def _array(d: dict, key: str, shape: tuple[int, ...]) -> np.ndarray | None:
    v = d.get(key)
    if v is None:
        return None
    return np.asarray(v, dtype=float).reshape(shape)


def question_from_json(d: dict, where: str = '') -> Question:
    """Build a :class:`Question` from one JSON object.

    Raises:
        BenchDataError: no ground-truth trajectory, or a malformed field (named).
    """
    try:
        traj = np.asarray(d['trajectory'], dtype=float)
        if traj.ndim != 2 or traj.shape[1] != 3 or len(traj) < 1:
            raise ValueError(f'trajectory must be (N, 3), got shape {traj.shape}')
        return Question(
            qid=d.get('question_id', d.get('id')),
            prompt=str(d.get('prompt', '')),
            answer=d.get('model_prediction') or '',
            trajectory=traj,
            bbox_center=_array(d, 'bbox_center', (3,)),
            bbox_extent=_array(d, 'bbox_extent', (3,)),
            bbox_rotation=_array(d, 'bbox_rotation', (3, 3)),
            intrinsics=d.get('gt_depth_intrinsics'),
            image_path=str(d.get('image_path', '')),
            depth_path=str(d.get('gt_depth_path', '')),
            mask_path=str(d.get('mask_path', '')),
            raw=d,
        )
    except KeyError as exc:
        raise BenchDataError(f'{where}: missing field {exc.args[0]!r}') from None
    except (TypeError, ValueError) as exc:
        raise BenchDataError(f'{where}: {exc}') from None


def read_jsonl(path: str | Path) -> list[dict]:
    """Read a JSON-lines file (blank lines skipped).

    Raises:
        BenchDataError: the file cannot be read or a line is not a JSON object.
    """
    rows = []
    try:
        with open(path, encoding='utf-8') as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BenchDataError(f'{path}:{i}: not JSON ({exc.msg})') from None
                if not isinstance(obj, dict):
                    raise BenchDataError(f'{path}:{i}: not a JSON object')
                rows.append(obj)
    except OSError as exc:
        raise BenchDataError(f'cannot read {path}: {exc.strerror or exc}') from None
    return rows


def read_predictions(path: str | Path) -> list[Question]:
    """Read a predictions file in the published format.

    Raises:
        BenchDataError: unreadable file or malformed question (file and line named).
    """
    return [
        question_from_json(d, f'{path}: question {i}') for i, d in enumerate(read_jsonl(path), 1)
    ]


def read_questions(path: str | Path) -> list[Question]:
    """Read questions: ``trajectory_dataset.json`` or a JSONL file in the published format.

    The benchmark folder's ``trajectory_dataset.json`` is a JSON list of questions with ``id``;
    a predictions file's answers are ignored by the caller.

    Raises:
        BenchDataError: unreadable or malformed.
    """
    p = Path(path)
    if p.suffix != '.json':
        return read_predictions(p)
    try:
        data = json.loads(p.read_text(encoding='utf-8'))
    except (OSError, ValueError) as exc:
        raise BenchDataError(f'cannot read {p}: {exc}') from None
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise BenchDataError(f'{p}: expected a JSON list of question objects')
    out = []
    for i, d in enumerate(data, 1):
        d = dict(d)
        d.setdefault('question_id', d.get('id'))
        out.append(question_from_json(d, f'{p}: question {i}'))
    return out


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    """Write JSON lines (creating the folder)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, 'w', encoding='utf-8') as f:
        for r in rows:
            f.write(json.dumps(r) + '\n')


def guess_mode(path: str | Path, questions: list[Question]) -> str:
    """``'2d'`` or ``'3d'``: from the file name (``..._2D.jsonl``) or else the answers' depth."""
    name = Path(path).stem.upper()
    if name.endswith('_3D') or name.endswith('-3D'):
        return '3d'
    if name.endswith('_2D') or name.endswith('-2D'):
        return '2d'
    for q in questions:
        for parser in (TUPLES, JSON):
            try:
                pts = parse_answer(q.answer, parser)
            except ValueError:
                continue
            if pts.ndim == 2 and len(pts):
                return '3d' if pts.shape[1] >= 3 else '2d'
    return '3d'


class BenchFolder:
    """The benchmark folder: files under ``<dir>/raw_data/``.

    Args:
        root: the benchmark folder (the one holding ``raw_data/``).

    Raises:
        BenchDataError: the folder has no ``raw_data``.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not (self.root / 'raw_data').is_dir():
            raise BenchDataError(f'{self.root} has no raw_data/ folder (the benchmark layout)')

    def path(self, rel: str) -> Path:
        """Absolute path of a benchmark-relative path."""
        return self.root / 'raw_data' / rel

    def _open(self, rel: str):  # noqa: ANN202
        from PIL import Image

        try:
            return Image.open(self.path(rel))
        except (OSError, ValueError) as exc:
            raise BenchDataError(f'cannot read {self.path(rel)}: {exc}') from None

    def image_size(self, rel: str) -> tuple[int, int]:
        """``(W, H)`` of an image (header only)."""
        with self._open(rel) as im:
            return int(im.size[0]), int(im.size[1])

    def rgb(self, rel: str) -> np.ndarray:
        """(H, W, 3) uint8 colour image."""
        with self._open(rel) as im:
            return np.asarray(im.convert('RGB'))

    def depth_mm(self, rel: str) -> np.ndarray:
        """(H, W) depth as stored (millimetres)."""
        with self._open(rel) as im:
            a = np.asarray(im)
        return a[..., 0] if a.ndim == 3 else a

    def mask(self, rel: str) -> np.ndarray:
        """(H, W) uint8 mask (the first channel of a colour mask)."""
        with self._open(rel) as im:
            a = np.asarray(im)
        if a.ndim == 3:
            a = a[..., 0]
        return a.astype(np.uint8)
