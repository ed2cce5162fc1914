"""A live model over the benchmark folder, through the robot's own perception code path.

Each question's colour image, depth image (millimetres) and intrinsics go to the model with
the question's instruction through the same backend objects the perception node uses
(``robotracer_ros.backends``: ``robotracer_http``, ``openai``, ``transformers``, ``replay``);
the answer is also lifted by the product's pipeline (``robotracer_ros.pipeline``) and its
verdict recorded. The predictions are written in the published format (the question's fields
with ``model_prediction`` set to the raw answer) and scored like any predictions file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from robotracer_eval import bench_data, report, scoring

QUESTIONS_FILE = 'trajectory_dataset.json'  # the benchmark folder's question list


class ModelError(RuntimeError):
    """The model could not be created or never answered."""


def backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """Backend constructor options from the command line (unset ones left out).

    Raises:
        ValueError: a ``--option`` without ``=``.
    """
    opts: dict[str, Any] = {
        'url': args.url,
        'timeout_s': args.timeout,
        'retries': args.retries,
        'transport': args.transport,
        'shared_dir': args.shared_dir,
        'api_key_env': args.api_key_env,
        'prompt_style': args.prompt_style,
        'model_path': args.model_path,
        'device': args.device,
        'dtype': args.dtype,
        'path': args.replay,
    }
    if args.served_model:
        opts['model_name' if args.model == 'transformers' else 'model'] = args.served_model
    for item in args.option or []:
        if '=' not in item:
            raise ValueError(f'--option {item!r} must be KEY=VALUE')
        key, value = item.split('=', 1)
        try:
            opts[key] = json.loads(value)
        except ValueError:
            opts[key] = value
    return {k: v for k, v in opts.items() if v is not None}


def _backend(args: argparse.Namespace) -> Any:
    from robotracer_ros.backends import BackendError, make_backend

    try:
        return make_backend(args.model, **backend_options(args))
    except (BackendError, ValueError) as exc:
        raise ModelError(f'cannot create backend {args.model}: {exc}') from exc


def ask(
    backend: Any, q: bench_data.Question, bench: bench_data.BenchFolder, mode_3d: bool
) -> dict[str, Any]:
    """Ask the model one question; return its row in the published format.

    Returns:
        The question's fields with ``model_prediction`` (the raw answer, '' on failure),
        ``model_id``, ``elapsed_s``, ``error`` (on failure) and ``product_status`` /
        ``product_note`` (the perception pipeline's verdict on the answer).
    """
    from robotracer_ros.backends import BackendError
    from robotracer_ros.pipeline import answer_to_trace

    row = dict(q.raw)
    rgb = bench.rgb(q.image_path)
    depth = bench.depth_mm(q.depth_path)
    k = np.asarray(q.intrinsics, dtype=float)[:3, :3]
    try:
        ans = backend(rgb, depth, k, q.prompt, mode_3d=mode_3d)
    except BackendError as exc:
        row.update(model_prediction='', error=f'{exc.kind}: {exc}')
        return row
    row.update(model_prediction=ans.text, model_id=ans.model_id, elapsed_s=ans.elapsed_s)
    try:
        tr = answer_to_trace(
            ans.text,
            width=rgb.shape[1],
            height=rgb.shape[0],
            K=k,
            depth=depth,
            expect_depth=mode_3d or None,
        )
        row.update(product_status=tr.status_name, product_note=tr.note)
    except ValueError as exc:
        row.update(product_status='invalid', product_note=str(exc))
    return row


def evaluate_live(args: argparse.Namespace) -> tuple[str, dict[str, Any], list]:
    """Run ``robotracer eval --model ... --bench-dir ...``.

    Returns:
        ``(name, summary, per-question scores)``.

    Raises:
        BenchDataError: the benchmark folder or questions file cannot be read.
        ModelError: the backend cannot be created or no question got an answer.
    """
    bench = bench_data.BenchFolder(args.bench_dir)
    qfile = Path(args.questions) if args.questions else bench.root / QUESTIONS_FILE
    questions = bench_data.read_questions(qfile)
    if args.limit:
        questions = questions[: args.limit]
    mode = '2d' if args.two_d else '3d'
    backend = _backend(args)
    name = args.model_name or f'{args.model}_{mode.upper()}'
    progress = report.Progress(f'questions asked ({name})', enabled=not args.quiet)
    rows = []
    for i, q in enumerate(questions):
        rows.append(ask(backend, q, bench, mode == '3d'))
        progress(i + 1, len(questions))
    if rows and all(r.get('error') for r in rows):
        raise ModelError(f'no question got an answer; first error: {rows[0]["error"]}')
    out = Path(args.out) if args.out else Path('out/eval') / name
    pred_path = out / f'{name}.jsonl'
    bench_data.write_jsonl(pred_path, rows)
    parser = args.parser
    if parser == 'auto':
        parser = 'tuples' if args.model in ('robotracer_http', 'replay') else 'product'
    scored = [bench_data.question_from_json(r, str(pred_path)) for r in rows]
    scores = scoring.score_questions(
        scored, mode, parser, bench, report.Progress('questions scored', enabled=not args.quiet)
    )
    summary = scoring.summarise(scores, mode)
    summary.update(parser=parser, predictions=str(pred_path))
    return name, summary, scores
