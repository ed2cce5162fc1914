"""Score questions and summarise a run, with TraceSpatial-Bench's rules.

Design notes: docs/design-notes.md (robotracer_eval.scoring).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from robotracer_eval import geometry3d, metrics
from robotracer_eval.bench_data import BenchDataError, BenchFolder, Question, parse_answer
from robotracer_eval.metrics import Intrinsics, PathScores

SUMMARY_KEYS = (
    'n',
    'skipped',
    'dfd',
    'hd',
    'rmse',
    'mae',
    'start_rate',
    'end_rate',
    'no_collision_rate',
    'success_rate',
)


@dataclass
class SceneData:
    """What the benchmark folder (or a simulator) provides about a question's scene.

    Attributes:
        size: ``(W, H)`` of the image (2D) or depth image (3D), or None (then estimated).
        mask: (H, W) target mask, or None.
        depth_mm: (H, W) depth in millimetres, or None.
        object_points: the target's cleaned cloud (computed from mask and depth when None).
        occupancy: the obstacles' grid (computed from mask and depth when None).
    """

    size: tuple[int, int] | None = None
    mask: np.ndarray | None = None
    depth_mm: np.ndarray | None = None
    object_points: np.ndarray | None = None
    occupancy: geometry3d.OccupancyGrid | None = None


@dataclass
class QuestionScore:
    """Scores of one question (None: not computed; see ``notes``).

    Attributes:
        qid: question id.
        mode: ``'2d'`` or ``'3d'``.
        scored: False when the question was skipped (it then counts as a failure).
        path: DFD/HD/RMSE/MAE (2D: image units; 3D: metres).
        start_ok: 2D: first point in the mask; 3D: start distance < 0.2 m.
        end_ok: 2D: an end point in the projected box; 3D: end distance < 0.2 m.
        collision: 3D only: the moved object overlaps obstacles by more than 20 %.
        success: 3D only: start and end and no collision.
        start_distance: 3D, metres.
        end_distance: 3D, metres.
        max_collision_ratio: 3D, largest overlap along the trace.
        derived_2d: 3D only: the 2D figures of the projected traces.
        size_estimated: the image size was estimated from the intrinsics.
        notes: why something was skipped.
        execution: ``--world --execute``: what the simulated robot did (success, final error).
    """

    qid: Any
    mode: str
    scored: bool = True
    path: PathScores | None = None
    start_ok: bool | None = None
    end_ok: bool | None = None
    collision: bool | None = None
    success: bool | None = None
    start_distance: float | None = None
    end_distance: float | None = None
    max_collision_ratio: float | None = None
    derived_2d: dict | None = None
    size_estimated: bool = False
    notes: list[str] = field(default_factory=list)
    execution: dict | None = None

    def to_json(self) -> dict:
        """A JSON-ready dict."""
        d = asdict(self)
        d['path'] = asdict(self.path) if self.path else None
        return d


def estimated_size(intr: Intrinsics) -> tuple[int, int]:
    """Image size guessed from the principal point: ``(round(2 cx), round(2 cy))``."""
    return max(1, round(2 * intr.cx)), max(1, round(2 * intr.cy))


def _size(q: Question, scene: SceneData, intr: Intrinsics, out: QuestionScore) -> tuple[int, int]:
    if scene.size is not None:
        return scene.size
    out.size_estimated = True
    return estimated_size(intr)


def score_2d(q: Question, parser: str, scene: SceneData) -> QuestionScore:
    """Score a 2D answer (``[(x, y), ...]``; a depth, if any, is ignored).

    Args:
        q: the question.
        parser: ``tuples`` or ``json`` (see :func:`bench_data.parse_answer`).
        scene: size and mask (either may be None).

    Returns:
        The scores. An empty prediction counts as two points at (0, 0); one point is doubled.
    """
    out = QuestionScore(q.qid, '2d')
    try:
        intr = Intrinsics.from_matrix(q.intrinsics)
    except ValueError as exc:
        out.scored = False
        out.notes.append(f'no usable intrinsics: {exc}')
        out.start_ok = out.end_ok = False
        return out
    w, h = _size(q, scene, intr, out)
    try:
        parsed = parse_answer(q.answer, parser)
    except ValueError as exc:
        parsed = np.zeros((0, 2))
        out.notes.append(f'answer not parsed: {exc}')
    xy = parsed[:, :2] if parsed.ndim == 2 and parsed.shape[1] >= 2 else np.zeros((0, 2))
    pred = xy * np.array([w, h], dtype=float)
    if len(pred) == 0:
        pred = np.zeros((2, 2))
        out.notes.append('no points in the answer: scored as two points at (0, 0)')
    elif len(pred) == 1:
        pred = np.repeat(pred, 2, axis=0)
    gt = metrics.project(q.trajectory, intr)
    if np.all(np.isfinite(pred)):
        out.path = metrics.path_scores(pred, gt, scale=(w, h))
    else:
        out.notes.append('answer has non-numeric coordinates: no path metrics')
    if scene.mask is not None:
        out.start_ok = metrics.start_in_mask(pred[0], scene.mask)
    else:
        out.notes.append('start in mask: needs the mask (benchmark folder)')
    out.end_ok = (
        metrics.end_in_box_2d(
            pred, metrics.box_to_image(q.bbox_center, q.bbox_extent, q.bbox_rotation, intr)
        )
        if q.has_box
        else False
    )
    return out


def score_3d(q: Question, parser: str, scene: SceneData) -> QuestionScore:
    """Score a 3D answer (``[(x, y, d), ...]``).

    Args:
        q: the question.
        parser: ``tuples`` or ``json``.
        scene: size, mask, depth (any may be None; see the module table).

    Returns:
        The scores; ``scored`` False when the row is skipped (no intrinsics, no parse, no d).
    """
    out = QuestionScore(q.qid, '3d')

    def skip(why: str) -> QuestionScore:
        out.scored = False
        out.success = False
        out.notes.append(why)
        return out

    try:
        intr = Intrinsics.from_matrix(q.intrinsics)
    except ValueError as exc:
        return skip(f'no usable intrinsics: {exc}')
    w, h = _size(q, scene, intr, out)
    try:
        parsed = parse_answer(q.answer, parser)
    except ValueError as exc:
        return skip(f'answer not parsed: {exc}')
    if parsed.ndim != 2 or parsed.shape[1] < 3 or len(parsed) == 0:
        return skip('answer has no (x, y, d) points')
    pred = metrics.backproject(parsed[:, :3], w, h, intr)
    gt = q.trajectory
    finite = bool(np.all(np.isfinite(pred)))
    if finite:
        out.path = metrics.path_scores(pred, gt)
        # the benchmark's consistency check: the same traces projected to the image
        pa = metrics.project(metrics.resample_by_arclength(pred), intr) / (w, h)
        ga = metrics.project(metrics.resample_by_arclength(gt), intr) / (w, h)
        rmse, mae = metrics.rmse_mae(pa, ga)
        raw_uv = metrics.project(pred, intr)
        d2: dict[str, Any] = {
            'dfd': metrics.discrete_frechet(pa, ga),
            'hd': metrics.hausdorff(pa, ga),
            'rmse': rmse,
            'mae': mae,
            'start_in_mask': None
            if scene.mask is None
            else metrics.start_in_mask(raw_uv[0], scene.mask),
            'end_in_box': metrics.end_in_box_2d(
                raw_uv, metrics.box_to_image(q.bbox_center, q.bbox_extent, q.bbox_rotation, intr)
            )
            if q.has_box
            else False,
        }
        out.derived_2d = d2
    else:
        out.notes.append('some answer points lack a depth: no path metrics')
    # start
    obj = scene.object_points
    if obj is None and scene.depth_mm is not None:
        if scene.mask is not None:
            obj = geometry3d.object_cloud(scene.mask, scene.depth_mm, intr)
        else:  # the benchmark fails the start when the mask cannot be read
            obj = np.zeros((0, 3))
        scene.object_points = obj
    if obj is not None:
        try:
            out.start_distance = metrics.start_distance_3d(pred[0], obj, gt[0])
        except ValueError as exc:
            out.notes.append(f'start: {exc}')
    else:
        out.start_distance = float(np.linalg.norm(pred[0] - gt[0]))
        out.notes.append('start: distance to the ground-truth start only (no mask/depth)')
    # end
    if q.has_box:
        out.end_distance = metrics.end_distance_3d(
            pred, q.bbox_center, q.bbox_extent, q.bbox_rotation
        )
    else:
        out.notes.append('end: no destination box')
    # collision
    grid = scene.occupancy
    if grid is None and scene.depth_mm is not None and obj is not None and len(obj):
        try:
            grid = scene.occupancy = geometry3d.scene_occupancy(scene.depth_mm, scene.mask, intr)
        except ValueError as exc:
            out.notes.append(f'collision: {exc}; counted as no collision')
            out.collision = False
    if grid is not None and obj is not None and len(obj):
        ratios = geometry3d.collision_ratios(grid, obj, pred)
        out.max_collision_ratio = float(ratios.max()) if len(ratios) else 0.0
        out.collision = geometry3d.collides(ratios)
    elif grid is not None or scene.depth_mm is not None:
        out.collision = False
        out.notes.append('collision: no object cloud; counted as no collision')
    elif out.collision is None:
        out.notes.append('collision: needs the depth image and mask (benchmark folder)')
    out.start_ok = out.start_distance is not None and out.start_distance < (
        metrics.START_THRESHOLD_M
    )
    out.end_ok = out.end_distance is not None and out.end_distance < metrics.END_THRESHOLD_M
    if out.collision is not None:
        out.success = bool(out.start_ok and out.end_ok and not out.collision)
    return out


def load_scene(bench: BenchFolder | None, q: Question, mode: str) -> tuple[SceneData, list[str]]:
    """Read what a question needs from the benchmark folder.

    Returns:
        The scene data (empty without a folder) and notes on files that could not be read.
    """
    scene = SceneData()
    notes: list[str] = []
    if bench is None:
        return scene, notes
    try:
        if mode == '2d':
            scene.size = bench.image_size(q.image_path)
        else:
            scene.depth_mm = bench.depth_mm(q.depth_path)
            scene.size = (scene.depth_mm.shape[1], scene.depth_mm.shape[0])
    except BenchDataError as exc:
        notes.append(str(exc))
    try:
        scene.mask = bench.mask(q.mask_path)
    except BenchDataError as exc:
        notes.append(str(exc))
    return scene, notes


def score_questions(
    questions: Sequence[Question],
    mode: str,
    parser: str,
    bench: BenchFolder | None = None,
    progress: Callable[[int, int], None] | None = None,
    cache: dict | None = None,
) -> list[QuestionScore]:
    """Score every question.

    Args:
        questions: the predictions.
        mode: ``'2d'`` or ``'3d'``.
        parser: answer parser.
        bench: the benchmark folder, or None.
        progress: called with ``(done, total)`` after each question.
        cache: a dict kept across calls (e.g. models compared on one benchmark): each scene's
            object cloud and occupancy grid are computed once.

    Returns:
        One score per question, in order.
    """
    scorer = score_2d if mode == '2d' else score_3d
    out = []
    for i, q in enumerate(questions):
        key = (mode, q.depth_path, q.mask_path, q.image_path, repr(q.intrinsics))
        if cache is not None and key in cache:
            scene, notes = cache[key]
        else:
            scene, notes = load_scene(bench, q, mode)
            if cache is not None and bench is not None:
                cache[key] = (scene, notes)
        s = scorer(q, parser, scene)
        s.notes[:0] = list(notes)
        out.append(s)
        if progress:
            progress(i + 1, len(questions))
    return out


def _rate(flags: Sequence[bool | None]) -> float | None:
    vals = [bool(f) for f in flags if f is not None]
    return float(np.mean(vals)) if vals else None


def summarise(scores: Sequence[QuestionScore], mode: str) -> dict[str, Any]:
    """Average a run into the summary object.

    Returns:
        ``n``, ``skipped`` (questions not scored), ``dfd``, ``hd``, ``rmse``, ``mae`` (2D in
        image units, 3D in metres), ``start_rate``, ``end_rate``, ``no_collision_rate``,
        ``success_rate`` (0..1; None where not computed), plus ``mode``, ``n_path``,
        ``n_outliers``, ``size_estimated`` (count), ``skipped_metrics`` (metric → reason) and,
        in 3D, ``start_distance`` / ``end_distance`` (means, m) and ``derived_2d``.
    """
    n = len(scores)
    scored = [s for s in scores if s.scored]
    avg = metrics.average_path_scores([s.path for s in scored])
    out: dict[str, Any] = {
        'mode': mode,
        'n': n,
        'skipped': n - len(scored),
        'dfd': avg['dfd'],
        'hd': avg['hd'],
        'rmse': avg['rmse'],
        'mae': avg['mae'],
        'n_path': avg['n_path'],
        'n_outliers': avg['n_outliers'],
        'size_estimated': sum(1 for s in scores if s.size_estimated),
    }
    skipped_metrics: dict[str, str] = {}
    if mode == '2d':
        starts = [s.start_ok for s in scores]
        out['start_rate'] = _rate(starts) if all(v is not None for v in starts) else None
        if out['start_rate'] is None:
            skipped_metrics['start_rate'] = 'needs the target masks (--bench-dir)'
        out['end_rate'] = _rate([bool(s.end_ok) for s in scores])
        out['no_collision_rate'] = None
        out['success_rate'] = None
        skipped_metrics['no_collision_rate'] = 'a 3D metric'
        skipped_metrics['success_rate'] = 'a 3D metric'
    else:
        out['start_rate'] = _rate([s.start_ok for s in scored])
        out['end_rate'] = _rate([s.end_ok for s in scored])
        cols = [s.collision for s in scored]
        if scored and all(c is not None for c in cols):
            out['no_collision_rate'] = 1.0 - float(np.mean([bool(c) for c in cols]))
            out['success_rate'] = sum(1 for s in scored if s.success) / max(n, 1)
        else:
            out['no_collision_rate'] = None
            out['success_rate'] = None
            skipped_metrics['no_collision_rate'] = 'needs depth images and masks (--bench-dir)'
            skipped_metrics['success_rate'] = 'needs the collision check (--bench-dir)'
        if any('ground-truth start only' in ' '.join(s.notes) for s in scored):
            skipped_metrics['start_rate'] = (
                'partial: distance to the ground-truth start only (the target cloud needs '
                '--bench-dir)'
            )
        sd = [s.start_distance for s in scored if s.start_distance is not None]
        ed = [s.end_distance for s in scored if s.end_distance is not None]
        out['start_distance'] = float(np.mean(sd)) if sd else None
        out['end_distance'] = float(np.mean(ed)) if ed else None
        d2 = [s.derived_2d for s in scored if s.derived_2d]
        if d2:
            avg2 = metrics.average_path_scores(
                [PathScores(d['dfd'], d['hd'], d['rmse'], d['mae']) for d in d2]
            )
            out['derived_2d'] = {k: avg2[k] for k in ('dfd', 'hd', 'rmse', 'mae')} | {
                'start_in_mask_rate': _rate([d['start_in_mask'] for d in d2]),
                'end_in_box_rate': _rate([d['end_in_box'] for d in d2]),
            }
    if out['size_estimated']:
        skipped_metrics['image_size'] = (
            f'estimated from the principal point for {out["size_estimated"]} question(s): '
            'path metrics are approximate (give --bench-dir)'
        )
    out['skipped_metrics'] = skipped_metrics
    return out
