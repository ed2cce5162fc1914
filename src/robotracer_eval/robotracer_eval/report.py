"""Results for people: the summary table, one PNG chart per metric, runs side by side."""

from __future__ import annotations

from collections.abc import Sequence
import json
from pathlib import Path
import sys
from typing import Any, TextIO

# (key, column title, format, better): the paper's columns, in its order
COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ('dfd', 'DFD', '.4f', 'lower'),
    ('hd', 'HD', '.4f', 'lower'),
    ('rmse', 'RMSE', '.4f', 'lower'),
    ('mae', 'MAE', '.4f', 'lower'),
    ('start_rate', 'start', '.1%', 'higher'),
    ('end_rate', 'end', '.1%', 'higher'),
    ('no_collision_rate', 'no-coll.', '.1%', 'higher'),
    ('success_rate', 'success', '.1%', 'higher'),
)


def _cell(value: Any, fmt: str) -> str:
    return '-' if value is None else format(value, fmt)


def format_table(runs: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """A plain-text table, one row per run.

    Args:
        runs: ``(name, summary)`` pairs (summaries from :func:`scoring.summarise`).

    Returns:
        The table, with a line saying the units and which metrics were not computed.
    """
    head = ['model', 'mode', 'n', 'skipped'] + [c[1] for c in COLUMNS]
    rows = [
        [name, s.get('mode', ''), str(s['n']), str(s['skipped'])]
        + [_cell(s.get(k), f) for k, _, f, _ in COLUMNS]
        for name, s in runs
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        '  '.join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [head, *rows]
    ]
    modes = {s.get('mode') for _, s in runs}
    unit = []
    if '2d' in modes:
        unit.append('2D distances in image units (pixels / [W, H])')
    if '3d' in modes:
        unit.append('3D distances in metres')
    notes = ['; '.join(unit) + '; DFD > 100 left out of the averages.']
    for name, s in runs:
        for metric, why in (s.get('skipped_metrics') or {}).items():
            notes.append(f'{name}: {metric}: {why}')
    return '\n'.join(lines + [''] + notes)


def write_charts(out_dir: str | Path, runs: Sequence[tuple[str, dict[str, Any]]]) -> list[Path]:
    """One bar chart per metric (a bar per run) as ``<out_dir>/<metric>.png``.

    Metrics no run computed are skipped.

    Returns:
        The files written.
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    names = [n for n, _ in runs]
    for key, title, fmt, better in COLUMNS:
        values = [s.get(key) for _, s in runs]
        if all(v is None for v in values):
            continue
        fig, ax = plt.subplots(figsize=(max(3.0, 1.2 * len(runs) + 1.5), 3.2), dpi=100)
        ys = [0.0 if v is None else float(v) for v in values]
        bars = ax.bar(range(len(ys)), ys, color='#4c72b0')
        for b, v in zip(bars, values, strict=True):
            ax.annotate(
                _cell(v, fmt),
                (b.get_x() + b.get_width() / 2, b.get_height()),
                ha='center',
                va='bottom',
                fontsize=8,
            )
        ax.set_xticks(range(len(ys)), names, rotation=20, ha='right', fontsize=8)
        ax.set_title(f'{title} ({better} is better)', fontsize=10)
        if fmt.endswith('%'):
            ax.set_ylim(0, 1.1)
        ax.margins(y=0.15)
        fig.tight_layout()
        path = out / f'{key}.png'
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def write_summary(out_dir: str | Path, name: str, summary: dict[str, Any]) -> Path:
    """Write ``<out_dir>/summary.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / 'summary.json'
    path.write_text(json.dumps({'model': name, **summary}, indent=1) + '\n')
    return path


class Progress:
    """``done/total`` on stderr: rewritten in place on a terminal, every 10 % otherwise.

    Args:
        what: the unit (``questions``, ``episodes``).
        stream: where to write (stderr).
        enabled: False: silent.
    """

    def __init__(self, what: str, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.what = what
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self._last = -1

    def __call__(self, done: int, total: int) -> None:
        """Report progress."""
        if not self.enabled or total <= 0:
            return
        tty = getattr(self.stream, 'isatty', lambda: False)()
        if tty:
            end = '\n' if done == total else ''
            self.stream.write(f'\r  {done}/{total} {self.what}{end}')
        else:
            decile = done * 10 // total
            if decile == self._last and done != total:
                return
            self._last = decile
            self.stream.write(f'  {done}/{total} {self.what}\n')
        self.stream.flush()
