"""``robotracer eval``: score a trace model with TraceSpatial-Bench's metrics.

Design notes: docs/design-notes.md (robotracer_eval.cli).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
from typing import Any

PROG = 'robotracer eval'


def _error(msg: object, code: int = 2) -> int:
    print(f'{PROG}: {msg}', file=sys.stderr)
    return code


def _emit(
    args: argparse.Namespace,
    runs: list[tuple[str, dict[str, Any]]],
    scores: dict[str, list] | None = None,
) -> int:
    from robotracer_eval import report
    from robotracer_eval.bench_data import write_jsonl

    out = (
        Path(args.out)
        if args.out
        else Path('out/eval') / (runs[0][0] if len(runs) == 1 else 'compare')
    )
    table = report.format_table(runs)
    if not args.no_files:
        out.mkdir(parents=True, exist_ok=True)
        for name, summary in runs:
            sub = out if len(runs) == 1 else out / name
            report.write_summary(sub, name, summary)
            if scores and name in scores:
                write_jsonl(sub / 'scores.jsonl', [s.to_json() for s in scores[name]])
        (out / 'table.txt').write_text(table + '\n')
        report.write_charts(out, runs)
    if args.json:
        if len(runs) == 1:
            print(json.dumps({'model': runs[0][0], **runs[0][1]}))
        else:
            print(json.dumps({name: s for name, s in runs}))
    else:
        print(table)
        if not args.no_files:
            print(f'\nwritten: {out}/ (summary.json, scores.jsonl, table.txt, <metric>.png)')
    return 0


def _mode(args: argparse.Namespace) -> str | None:
    return '2d' if args.two_d else ('3d' if args.three_d else None)


def _score_file(
    args: argparse.Namespace, path: str, bench: Any, cache: dict
) -> tuple[str, dict[str, Any], list]:
    from robotracer_eval import bench_data, report, scoring

    questions = bench_data.read_predictions(path)
    if args.limit:
        questions = questions[: args.limit]
    name = args.model_name if args.model_name and not args.compare else Path(path).stem
    mode = _mode(args) or bench_data.guess_mode(path, questions)
    parser = args.parser if args.parser != 'auto' else bench_data.parser_for_model(name)
    progress = report.Progress(f'questions ({name})', enabled=not args.quiet)
    scores = scoring.score_questions(questions, mode, parser, bench, progress, cache)
    summary = scoring.summarise(scores, mode)
    summary['parser'] = parser
    return name, summary, scores


def run_predictions(args: argparse.Namespace) -> int:
    """Score one predictions file, or several side by side (``--compare``)."""
    from robotracer_eval.bench_data import BenchDataError, BenchFolder

    try:
        bench = BenchFolder(args.bench_dir) if args.bench_dir else None
        files = args.compare or [args.predictions]
        cache: dict = {}  # scene geometry computed once for all compared files
        results = [_score_file(args, f, bench, cache) for f in files]
    except BenchDataError as exc:
        return _error(exc)
    runs = [(n, s) for n, s, _ in results]
    return _emit(args, runs, {n: sc for n, _, sc in results})


def run_live(args: argparse.Namespace) -> int:
    """Ask a live model every benchmark question, write the predictions file, score it."""
    from robotracer_eval import live
    from robotracer_eval.bench_data import BenchDataError

    try:
        name, summary, scores = live.evaluate_live(args)
    except BenchDataError as exc:
        return _error(exc)
    except live.ModelError as exc:
        return _error(exc, 1)
    return _emit(args, [(name, summary)], {name: scores})


def run_world(args: argparse.Namespace) -> int:
    """Randomised simulator scenes."""
    from robotracer_eval import sim_scenes

    try:
        name, summary, scores = sim_scenes.evaluate_world(args)
    except ValueError as exc:
        return _error(exc)
    except sim_scenes.ModelError as exc:
        return _error(exc, 1)
    return _emit(args, [(name, summary)], {name: scores})


def run(args: argparse.Namespace) -> int:
    """Dispatch on the source of predictions."""
    sources = [bool(args.predictions), bool(args.compare), bool(args.world)]
    if args.model and not args.world:
        sources.append(True)
    if sum(sources) != 1:
        return _error(
            'give one of --predictions FILE, --compare FILE FILE..., --model BACKEND '
            '(with --bench-dir), or --world ur5|g1'
        )
    if args.two_d and args.three_d:
        return _error('--2d and --3d exclude each other')
    if args.world:
        return run_world(args)
    if args.model:
        if not args.bench_dir:
            return _error('--model needs --bench-dir (the benchmark folder to ask about)')
        return run_live(args)
    return run_predictions(args)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand."""
    p = sub.add_parser(
        'eval',
        help="score a trace model with TraceSpatial-Bench's metrics (file, live model, sim)",
        description="Score a trace model with TraceSpatial-Bench's metrics (DFD, HD, RMSE, "
        'MAE, start/end success, collision, overall success) on a predictions file, a live '
        'model over the benchmark folder, or randomised simulator scenes.',
    )
    src = p.add_argument_group('what to score')
    src.add_argument('--predictions', metavar='FILE.jsonl', help='predictions, published format')
    src.add_argument('--compare', nargs='+', metavar='FILE.jsonl', help='several side by side')
    src.add_argument('--bench-dir', metavar='DIR', help='TraceSpatial-Bench folder (raw_data/)')
    src.add_argument(
        '--questions',
        metavar='FILE.jsonl',
        help="--model: the questions (default: DIR/trajectory_dataset.json, the benchmark's "
        'list; a predictions file in the published format also works)',
    )
    src.add_argument('--world', choices=['ur5', 'g1'], help='randomised simulator scenes')
    src.add_argument('--episodes', type=int, default=20, help='--world: scenes (default 20)')
    src.add_argument('--seed', type=int, default=0, help='--world: random seed (default 0)')
    src.add_argument(
        '--noise',
        type=float,
        default=0.0,
        metavar='M',
        help='--world oracle: Gaussian noise on each trace point, metres (default 0)',
    )
    src.add_argument(
        '--failure-rate',
        type=float,
        default=0.0,
        metavar='P',
        help='--world oracle: probability of a malformed answer (default 0)',
    )
    src.add_argument(
        '--occupancy',
        choices=['simulator', 'tsdf'],
        default='simulator',
        help="--world: obstacles from the simulator's ground truth (default) or the "
        "benchmark's TSDF of the rendered depth",
    )
    src.add_argument(
        '--camera-jitter',
        type=float,
        default=0.03,
        metavar='M',
        help='--world: std of the camera centre and look-at point per episode, m (default '
        "0.03; the G1's head camera moves on its head)",
    )
    src.add_argument(
        '--execute', action='store_true', help='--world: the robot also executes each trace'
    )
    src.add_argument(
        '--depth-source',
        choices=['fused', 'model', 'sensor'],
        default=None,
        help='--execute: how the perception pipeline lifts the answer (default: ur5 fused, as '
        'config/perception.yaml; g1 as config/g1.yaml, model)',
    )
    src.add_argument('--limit', type=int, help='score only the first N questions / episodes')
    how = p.add_argument_group('how to score')
    mode = how.add_mutually_exclusive_group()
    mode.add_argument('--2d', dest='two_d', action='store_true', help='2D traces [(x, y), ...]')
    mode.add_argument('--3d', dest='three_d', action='store_true', help='3D traces (x, y, d)')
    how.add_argument(
        '--parser',
        choices=['auto', 'tuples', 'json', 'product'],
        default='auto',
        help="answer parsing: the benchmark's rule by model name (auto: RoboTracer -> tuples, "
        "Qwen/Gemini -> fenced JSON), or the robot's own parser (product)",
    )
    how.add_argument('--model-name', help='name in the table (default: the file name)')
    out = p.add_argument_group('output')
    out.add_argument('--out', metavar='DIR', help='output folder (default out/eval/<name>)')
    out.add_argument('--no-files', action='store_true', help='write nothing, only print')
    out.add_argument('--json', action='store_true', help='print the summary as one JSON object')
    out.add_argument('--quiet', action='store_true', help='no progress on stderr')
    g = p.add_argument_group('live model (--model BACKEND; as `robotracer query`)')
    g.add_argument(
        '--model',
        metavar='BACKEND',
        help='robotracer_http, openai, transformers, '
        'replay; with --world also: oracle (in-process ground truth)',
    )
    g.add_argument('--url', help='server URL (robotracer_http, openai)')
    g.add_argument('--served-model', dest='served_model', help='openai: the served model name')
    g.add_argument('--timeout', type=float, help='per-attempt timeout, seconds')
    g.add_argument('--retries', type=int, help='extra attempts on connection errors/5xx')
    g.add_argument('--transport', choices=['base64', 'paths'], help='robotracer_http form')
    g.add_argument('--shared-dir', help='robotracer_http paths form: folder the server reads')
    g.add_argument('--api-key-env', help='openai: environment variable holding the API key')
    g.add_argument('--prompt-style', choices=['json', 'robotracer'], help='openai/transformers')
    g.add_argument('--model-path', help='transformers: local checkpoint folder')
    g.add_argument('--device', help='transformers: torch device')
    g.add_argument('--dtype', choices=['auto', 'float32', 'float16', 'bfloat16'])
    g.add_argument('--replay', metavar='FILE', help='replay: JSONL file of recorded answers')
    g.add_argument('--option', action='append', metavar='KEY=VALUE', help='other backend option')
    p.set_defaults(func=run)
