"""Write ``tracespatial_3d_cases.jsonl``: 3D answers in the style of the published ones.

Run from this folder (``python make_3d_cases.py``); the output is committed, this script says
how it was made. Three groups of cases:

- ``rt-<id>``: RoboTracer's own 2D answer on TraceSpatial-Bench question ``id`` (its x, y as
  published, ``RoboTracer_Intrinsics_Depth_2D.jsonl``), each point given the depth of the
  question's ground-truth trajectory at the same fraction of its length, written as RoboTracer
  writes 3D answers: ``[(x, y, d), ...]``, d in metres with 3 decimals;
- ``gemini-<id>``: Gemini 3 Pro's 2D answer (prose, quoted single points, a fenced JSON list)
  with the fenced list made 3D the same way, ``[x, y, d]`` with 2 decimals, as Gemini writes;
- hand-written cases: what real answers also do (repeated points, a hook at the end, long legs,
  reasoning sections, 0-1 coordinates) and what no camera can see (a spike, a point beyond the
  depth range, zero or negative depth, NaN).

Each line: ``case``, ``question_id`` (derived cases), ``prompt``, ``model_prediction``,
``gt_depth_intrinsics`` (3x3), ``width``/``height`` (the image size: the principal point
doubled, rounded to 32 px; the benchmark's sizes are not published), ``coordinates`` (the model
config setting to read it with) and what the perception node's default pipeline must make of
it: ``expect`` (``valid`` = every point kept; ``degraded`` with ``dropped`` point numbers;
``invalid``; ``error`` with ``reason``, a fragment of the parser's message).
"""

from __future__ import annotations

import json
import pathlib
import re

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / 'tracespatial_3d_cases.jsonl'
FENCE = re.compile(r'```json\s*\n(.*?)```', re.DOTALL)


def size(k: list[list[float]]) -> tuple[int, int]:
    """Image size from the principal point (doubled, rounded to 32 px)."""
    return int(round(2 * k[0][2] / 32) * 32), int(round(2 * k[1][2] / 32) * 32)


def gt_depths(trajectory: list[list[float]], n: int) -> np.ndarray:
    """Depth (Z) of the ground-truth trajectory at n evenly spaced fractions of its length."""
    t = np.asarray(trajectory, dtype=float)
    seg = np.linalg.norm(np.diff(t, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    f = np.linspace(0.0, s[-1], n)
    return np.interp(f, s, t[:, 2])


def points_2d(text: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in re.findall(r'[(\[]\s*(\d+)\s*,\s*(\d+)\s*[)\]]', text)]


def derived() -> list[dict]:
    cases = []
    for line in (HERE / 'RoboTracer_Intrinsics_Depth_2D.jsonl').read_text().splitlines():
        r = json.loads(line)
        pts = points_2d(r['model_prediction'])
        d = gt_depths(r['trajectory'], len(pts))
        answer = (
            '[' + ', '.join(f'({x}, {y}, {z:.3f})' for (x, y), z in zip(pts, d, strict=True)) + ']'
        )
        cases.append(_case(f'rt-{r["question_id"]}', r, answer, 'valid'))
    for line in (HERE / 'Gemini3Pro_2D.jsonl').read_text().splitlines():
        r = json.loads(line)
        fences = list(FENCE.finditer(r['model_prediction']))
        if not fences:
            continue
        last = fences[-1]
        pts = points_2d(last.group(1))
        if len(pts) < 2:
            continue
        d = gt_depths(r['trajectory'], len(pts))
        body = (
            '[\n'
            + ',\n'.join(f'  [{x}, {y}, {z:.2f}]' for (x, y), z in zip(pts, d, strict=True))
            + '\n]\n'
        )
        text = r['model_prediction']
        answer = text[: last.start(1)] + body + text[last.end(1) :]
        cases.append(_case(f'gemini-{r["question_id"]}', r, answer, 'valid'))
    return cases


def _case(name: str, r: dict, answer: str, expect: str, **extra: object) -> dict:
    k = [row[:3] for row in r['gt_depth_intrinsics'][:3]]  # some are 4x4, as the authors cut
    w, h = size(k)
    return {
        'case': name,
        'question_id': r['question_id'],
        'prompt': r['prompt'],
        'model_prediction': answer,
        'gt_depth_intrinsics': k,
        'width': w,
        'height': h,
        'coordinates': 'normalized_1000',
        'expect': expect,
        **extra,
    }


K_ROOM = [[421.66, 0.0, 253.93], [0.0, 421.66, 192.12], [0.0, 0.0, 1.0]]
K_TABLE = [[604.0, 0.0, 319.5], [0.0, 604.0, 239.5], [0.0, 0.0, 1.0]]


def hand(name: str, prompt: str, answer: str, expect: str, k=K_ROOM, **extra: object) -> dict:
    w, h = size(k)
    return {
        'case': name,
        'prompt': prompt,
        'model_prediction': answer,
        'gt_depth_intrinsics': k,
        'width': w,
        'height': h,
        'coordinates': extra.pop('coordinates', 'normalized_1000'),
        'expect': expect,
        **extra,
    }


HAND = [
    # --- plausible: every point must be kept
    hand(
        'repeated-points',
        'move the paper towel to the top of the highest shelf on the right',
        '[(538, 776, 2.494), (538, 776, 2.494), (546, 613, 2.447), (620, 474, 2.466), '
        '(640, 458, 2.501), (640, 458, 2.501)]',
        'valid',
    ),
    hand(
        'hook-at-the-end',
        'put the pillow on the stool on the left',
        '[(726, 624, 1.533), (738, 574, 1.499), (690, 540, 1.511), (600, 509, 1.54), '
        '(472, 472, 1.598), (280, 413, 1.72), (107, 344, 1.884), (39, 301, 2.023), '
        '(47, 390, 2.106)]',
        'valid',
    ),
    hand(
        'four-points-metre-legs',
        'carry the box from the floor to the far table',
        '[(500, 900, 1.2), (520, 700, 2.1), (540, 520, 3.0), (560, 480, 3.4)]',
        'valid',
    ),
    hand(
        'one-and-a-half-metre-leg',
        'move the chair cushion onto the sofa at the back',
        '[(300, 800, 1.1), (310, 760, 1.1), (600, 430, 2.6), (620, 440, 2.65)]',
        'valid',
    ),
    hand(
        'far-shelf',
        'put the bottle on the top shelf across the room',
        '[(412, 640, 2.2), (430, 520, 2.9), (470, 380, 3.8), (498, 260, 4.6), (502, 250, 4.62)]',
        'valid',
    ),
    hand(
        'straight-up-then-across',
        'lift the mug over the laptop and put it right of it',
        '[(300, 600, 0.62), (300, 520, 0.60), (300, 440, 0.58), (450, 430, 0.6), '
        '(600, 440, 0.62), (600, 560, 0.64)]',
        'valid',
        k=K_TABLE,
    ),
    hand(
        'lift-back-down-same-place',
        'pick up the cup and set it back down',
        '[(500, 600, 0.9), (500, 420, 0.85), (500, 600, 0.9)]',
        'valid',
        k=K_TABLE,
    ),
    hand(
        'reasoning-model',
        'put the apple in the bowl',
        '<think>The apple is at about (420, 610) and 0.8 m away; the bowl is right of it at '
        '[640, 600]. I will lift first.</think>\n[(420, 610, 0.8), (430, 520, 0.78), '
        '(540, 500, 0.79), (640, 560, 0.82), (640, 600, 0.83)]',
        'valid',
        k=K_TABLE,
    ),
    hand(
        'prose-then-list-no-fence',
        'move the book to the left of the lamp',
        'The book starts at [610, 700] and the lamp is at [300, 420]. Trajectory: '
        '[[610, 700, 1.4], [590, 620, 1.45], [480, 520, 1.7], [300, 470, 2.0], '
        '[240, 480, 2.05]]',
        'valid',
    ),
    hand(
        'roborefer-0-1',
        'move the cup to the plate',
        '[(0.42, 0.61, 0.8), (0.45, 0.52, 0.78), (0.58, 0.55, 0.8)]',
        'valid',
        k=K_TABLE,
        coordinates='normalized_1',
    ),
    # --- what the default filter removes or refuses
    hand(
        'spike',
        'put the toy on the chair',
        '[(400, 700, 1.5), (420, 640, 1.55), (450, 590, 4.2), (480, 560, 1.65), (510, 560, 1.7)]',
        'degraded',
        dropped=[3],
    ),
    hand(
        'beyond-depth-range',
        'put the toy on the chair',
        '[(400, 700, 1.5), (420, 640, 1.55), (450, 590, 14.0), (480, 560, 1.65), (510, 560, 1.7)]',
        'degraded',
        dropped=[3],
    ),
    hand(
        'all-beyond-range',
        'move the car to the mountain',
        '[(400, 500, 30.0), (420, 480, 32.0), (450, 470, 35.0)]',
        'invalid',
    ),
    hand(
        'zero-depth',
        'move the cup to the plate',
        '[(420, 610, 0.8), (430, 520, 0.0), (540, 500, 0.79)]',
        'error',
        reason='point 2: d=0 m is outside',
        k=K_TABLE,
    ),
    hand(
        'behind-the-camera',
        'move the cup behind you',
        '[(420, 610, 0.8), (430, 520, 0.3), (540, 500, -0.4)]',
        'error',
        reason='point 3: d=-0.4 m is outside',
        k=K_TABLE,
    ),
    hand(
        'nan',
        'move the cup to the plate',
        '[[420, 610, 0.8], [430, 520, NaN]]',
        'error',
        reason='not a finite number',
        k=K_TABLE,
    ),
    hand(
        'roborefer-0-1-read-as-0-1000',
        'move the cup to the plate',
        '[(0.42, 0.61, 0.8), (0.45, 0.52, 0.78), (0.58, 0.55, 0.8)]',
        'error',
        reason='normalised to 0-1',
        k=K_TABLE,
    ),
    hand(
        'cannot-see-it',
        'put the unicorn on the plate',
        'I cannot find a unicorn in the image.',
        'error',
        reason='cannot see the object',
        k=K_TABLE,
    ),
]


def main() -> None:
    cases = derived() + HAND
    OUT.write_text(''.join(json.dumps(c) + '\n' for c in cases))
    print(f'{len(cases)} cases -> {OUT.name}')


if __name__ == '__main__':
    main()
