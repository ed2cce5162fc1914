"""Answer parser: property tests (hypothesis) and a corpus of realistic and broken answers."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from robotracer_ros.parsing import (
    MAX_ANSWER_BYTES,
    ObjectNotVisible,
    TraceParseError,
    parse_trace,
    says_not_visible,
    strip_reasoning,
)
from robotracer_ros.prompts import (
    ROBOTRACER_2D_TEMPLATE,
    ROBOTRACER_3D_TEMPLATE,
    build_prompt,
    robotracer_prompt,
    vlm_json_prompt,
)

coord = st.integers(min_value=0, max_value=1000)
depth = st.integers(min_value=1, max_value=20000).map(lambda v: v / 1000.0)  # 1 mm .. 20 m
points3 = st.lists(st.tuples(coord, coord, depth), min_size=1, max_size=40)
points2 = st.lists(st.tuples(coord, coord), min_size=1, max_size=40)


def as_tuples(pts: list[tuple]) -> str:
    return '[' + ', '.join('(' + ', '.join(repr(v) for v in p) + ')' for p in pts) + ']'


def as_json(pts: list[tuple]) -> str:
    return json.dumps([list(p) for p in pts])


def as_objects(pts: list[tuple]) -> str:
    objs = [{'point': [p[0], p[1]], 'depth': p[2], 'label': f'p{i}'} for i, p in enumerate(pts)]
    return json.dumps(objs)


def check(parsed, pts: list[tuple]) -> None:
    arr = np.array(pts, dtype=float)
    assert len(parsed) == len(pts)
    np.testing.assert_allclose(parsed.xy, arr[:, :2])
    if arr.shape[1] == 3:
        np.testing.assert_allclose(parsed.depth, arr[:, 2])
    else:
        assert parsed.depth is None


# ------------------------------------------------------------------ properties


@settings(max_examples=150, deadline=None)
@given(points3, st.sampled_from(['tuples', 'json', 'objects', 'fenced', 'prose', 'bare']))
def test_every_form_of_a_3d_trace_round_trips(pts, form):
    if form == 'tuples':
        text = as_tuples(pts)
    elif form == 'json':
        text = as_json(pts)
    elif form == 'objects':
        text = as_objects(pts)
    elif form == 'fenced':
        text = f'Sure. Here is the trace (x, y in 0-1000):\n```json\n{as_json(pts)}\n```\nDone.'
    elif form == 'prose':
        text = f'The visual trace is {as_tuples(pts)}. It avoids the bowl.'
    else:
        text = as_tuples(pts)[1:-1]  # "(x, y, d), (x, y, d)" without the outer list
    parsed = parse_trace(text, expect_depth=True)
    check(parsed, pts)


@settings(max_examples=80, deadline=None)
@given(points2)
def test_2d_traces_parse_without_depth(pts):
    check(parse_trace(as_tuples(pts)), pts)
    check(parse_trace(as_json(pts), expect_depth=False), pts)


@settings(max_examples=80, deadline=None)
@given(points2)
def test_a_2d_answer_to_a_3d_request_is_rejected_with_the_reason(pts):
    with pytest.raises(TraceParseError, match='no depth'):
        parse_trace(as_tuples(pts), expect_depth=True)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes_only_trace_parse_errors(text):
    try:
        parsed = parse_trace(text)
    except TraceParseError as exc:
        assert str(exc)  # the error always says something
    else:
        assert np.all(np.isfinite(parsed.xy))
        assert np.all((parsed.xy >= 0) & (parsed.xy <= 1000))
        if parsed.depth is not None:
            assert np.all(np.isfinite(parsed.depth)) and np.all(parsed.depth > 0)


@settings(max_examples=150, deadline=None)
@given(points3.filter(lambda p: len(p) >= 2), st.data())
def test_a_truncated_answer_is_never_read_as_a_shorter_trace(pts, data):
    text = as_tuples(pts)
    cut = data.draw(st.integers(min_value=1, max_value=len(text) - 1))
    with pytest.raises(TraceParseError, match='truncated|no trace'):
        parse_trace(text[:cut])


@settings(max_examples=150, deadline=None)
@given(
    points3,
    st.data(),
    st.sampled_from([-0.5, 1000.5, 1e6, float('nan'), float('inf'), -1e-9]),
)
def test_any_out_of_range_or_non_finite_value_is_rejected_naming_the_point(pts, data, bad):
    i = data.draw(st.integers(min_value=0, max_value=len(pts) - 1))
    k = data.draw(st.integers(min_value=0, max_value=2))
    if k == 2 and bad == 1000.5:
        bad = 0.0  # 1000.5 m is out of range too, but use a clearer bad depth
    p = list(pts[i])
    p[k] = bad
    pts = [*pts[:i], tuple(p), *pts[i + 1 :]]
    text = '[' + ', '.join('(' + ', '.join(str(v) for v in q) + ')' for q in pts) + ']'
    with pytest.raises(TraceParseError, match=f'point {i + 1}'):
        parse_trace(text)


# ------------------------------------------------------------------ corpus

GOOD = [
    # RoboTracer, as in the paper's examples
    ('[(726, 624, 1.533), (738, 574, 1.499), (751, 520, 1.468), (760, 471, 1.447)]', 4, True),
    # RoboTracer 2D
    ('[(412, 583), (455, 540), (512, 498), (570, 470)]', 4, False),
    # trailing comma and newlines
    ('[\n  (100, 200, 0.9),\n  (150, 210, 0.91),\n]', 2, True),
    # Qwen3-VL style: prose around a fenced JSON block
    (
        'To move the cup to the plate, the object should follow this path:\n\n```json\n'
        '[[310, 640, 0.82], [360, 600, 0.80], [420, 560, 0.79], [480, 555, 0.80]]\n```\n'
        'The trace starts at the cup handle.',
        4,
        True,
    ),
    # fenced without a language tag
    ('```\n[[10, 20, 0.5], [30, 40, 0.6]]\n```', 2, True),
    # point objects (2D, Qwen point_2d style) inside a fence
    (
        '```json\n[\n  {"point_2d": [412, 583], "label": "start"},\n'
        '  {"point_2d": [455, 540], "label": "1"},\n  {"point_2d": [512, 498], "label": "end"}\n'
        ']\n```',
        3,
        False,
    ),
    # point objects with depth
    ('[{"point": [500, 400], "depth": 1.2}, {"point": [520, 380], "depth": 1.1}]', 2, True),
    # x/y/d keys, wrapped in an object
    ('{"trace": [{"x": 1, "y": 2, "d": 0.5}, {"x": 3, "y": 4, "d": 0.6}]}', 2, True),
    # a placeholder in the prose before the answer is skipped
    ('Format [(x, y, d)]. Answer: [(1, 2, 0.5), (3, 4, 0.5)]', 2, True),
    # decimals and exponents
    ('[(1.5e2, 2.0E2, 5e-1), (.5, 0., 1)]', 2, True),
    # unclosed fence at the end of a truncated-looking, but complete, answer
    ('```json\n[[1, 2, 3], [4, 5, 6]]', 2, True),
]

BAD = [
    ('', 'empty'),
    ('   \n ', 'empty'),
    ("I'm sorry, I can't determine a trace for this task.", 'no trace found'),
    ('[(726, 624, 1.533), (738, 574, 1.4', 'truncated'),
    ('```json\n[[1, 2, 0.5], [3, 4', 'truncated'),
    ('[(1, 2, nan), (3, 4, 0.5)]', 'point 1: d is nan'),
    ('[[1, 2, NaN], [3, 4, 0.5]]', 'point 1: d is nan'),
    ('[[1, 2, Infinity]]', 'not a finite number'),
    ('[[1, 2, 1e999]]', 'not a finite number'),
    ('[(1280, 400, 1.0), (1300, 420, 1.0)]', 'point 1: x=1280 is outside 0-1000'),
    ('[(100, -4, 1.0)]', 'point 1: y=-4 is outside'),
    ('[(100, 200, -1.0)]', 'd=-1 m is outside'),
    ('[(100, 200, 0)]', 'd=0 m is outside'),
    ('[(100, 200, 150.0)]', 'outside'),
    ('[(1, 2, 3, 4)]', 'point 1 has 4 values'),
    ('[(1, 2, 0.5), (3, 4)]', 'mix 2D and 3D'),
    ('[]', 'empty list'),
    ('["left", "right"]', 'no trace found'),
    ('[[1, "2", 0.5]]', "point 1: y is '2', not a number"),
    ('[[1, true, 0.5]]', 'not a number'),
    ('{"error": "object not found"}', 'no trace found'),
    ('[(1, 2, __import__)]', 'no trace found'),
    ('[(1, 2, 0.5)) and more', 'mismatched'),
    ('[' * 50 + ']' * 50, 'point 1 has 1 values'),
    ('[' * 5000 + ']' * 5000, 'nested deeper'),
    ('[(1, 2, 0.5)]' + ' ' * MAX_ANSWER_BYTES, 'over the 65536-byte limit'),
]


@pytest.mark.parametrize(('text', 'n', 'is_3d'), GOOD)
def test_corpus_of_realistic_answers_parses(text, n, is_3d):
    parsed = parse_trace(text)
    assert len(parsed) == n
    assert parsed.is_3d == is_3d


@pytest.mark.parametrize(('text', 'reason'), BAD)
def test_corpus_of_broken_answers_is_rejected_with_the_reason(text, reason):
    with pytest.raises(TraceParseError) as info:
        parse_trace(text)
    assert reason in str(info.value)
    assert isinstance(info.value, ValueError)


def test_the_corpus_values_are_read_exactly():
    p = parse_trace(GOOD[0][0])
    np.testing.assert_allclose(p.xy[0], [726, 624])
    np.testing.assert_allclose(p.depth, [1.533, 1.499, 1.468, 1.447])
    assert p.form == 'tuples'
    q = parse_trace(GOOD[5][0])
    assert q.form == 'objects'
    np.testing.assert_allclose(q.xy[-1], [512, 498])


def test_too_many_points_is_rejected():
    text = as_tuples([(1, 1, 1.0)] * 300)
    with pytest.raises(TraceParseError, match='300 points, over the limit of 256'):
        parse_trace(text)


def test_the_parser_never_evaluates_code(tmp_path):
    marker = tmp_path / 'pwned'
    text = f"[(1, 2, __import__('pathlib').Path({str(marker)!r}).touch())]"
    with pytest.raises(TraceParseError):
        parse_trace(text)
    assert not marker.exists()


# ------------------------------------------------------------------ prompts


def test_robotracer_prompts_are_the_papers_verbatim():
    assert robotracer_prompt('put the red cup on the plate') == (
        'Point the 3D object-centric visual trace for the task "put the red cup on the plate". '
        'Your answer should be formatted as a list of tuples, i.e., [(x1, y1, d1), (x2, y2, d2),'
        ' ...], where each tuple contains the x and y coordinates of the point, and d is the '
        'depth of the point.'
    )
    assert robotracer_prompt('wipe  the\ntable', mode_3d=False) == (
        ROBOTRACER_2D_TEMPLATE.format(instruction='wipe the table')
    )
    assert '(x1, y1)' in ROBOTRACER_2D_TEMPLATE and 'd1' not in ROBOTRACER_2D_TEMPLATE
    assert 'd1' in ROBOTRACER_3D_TEMPLATE


def test_json_prompt_asks_for_normalised_json_and_instructions_are_cleaned():
    p = vlm_json_prompt('move "the" cup')
    assert "move 'the' cup" in p and '[[x1, y1, d1]' in p and '0 to 1000' in p
    assert '[[x1, y1], [x2, y2]' in vlm_json_prompt('x', mode_3d=False)
    assert build_prompt('a', style='json') == vlm_json_prompt('a')
    with pytest.raises(ValueError, match='empty'):
        robotracer_prompt('  \n ')
    with pytest.raises(ValueError, match='unknown prompt style'):
        build_prompt('a', style='other')


# ------------------------------------------------------------------ which list is the answer


def test_the_longest_list_wins_over_points_quoted_before_it():
    text = (
        'The cup is at [389, 254] and the shelf at `[830, 215]`.\n'
        '**Predicted Key Trajectory Points:**\n'
        '[[389, 254], [395, 220], [480, 180], [600, 170], [720, 180], [830, 215]]'
    )
    p = parse_trace(text)
    assert len(p) == 6 and p.xy[-1].tolist() == [830, 215]


def test_a_fenced_block_wins_over_a_longer_list_in_the_prose():
    text = (
        'Candidates I considered: [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5], [6, 6]].\n'
        '```json\n[[500, 500], [600, 400], [700, 300]]\n```'
    )
    assert parse_trace(text).xy[0].tolist() == [500, 500]


def test_of_equally_long_lists_the_last_one_wins():
    text = 'First try: [(1, 2, 0.5), (3, 4, 0.5)]. Corrected: [(10, 20, 0.5), (30, 40, 0.6)]'
    assert parse_trace(text).xy[0].tolist() == [10, 20]


def test_a_broken_longer_list_is_reported_rather_than_a_quoted_point():
    text = 'Start at [500, 500]. Trace: [[500, 500, 1.0], [1500, 480, 1.0], [600, 400, 1.0]]'
    with pytest.raises(TraceParseError, match='point 2: x=1500 is outside'):
        parse_trace(text)


def test_a_list_cut_off_after_quoted_points_says_so():
    text = 'The start is [686, 437] and the end [146, 437].\n```json\n[[686, 437], [626, 43'
    with pytest.raises(TraceParseError, match='cut off'):
        parse_trace(text)


def test_a_3d_list_wins_over_2d_points_quoted_in_a_3d_request():
    text = 'The cup is at [420, 610]. ```json\n[[420, 610, 0.8], [500, 500, 0.9]]\n```'
    p = parse_trace(text, expect_depth=True)
    assert p.is_3d and len(p) == 2


# ------------------------------------------------------------------ reasoning


@pytest.mark.parametrize(
    'text',
    [
        '<think>The cup is at [(1, 1, 0.5), (2, 2, 0.5), (3, 3, 0.5)]...</think>'
        '[(500, 500, 1.0), (600, 400, 0.9)]',
        '<think>\nlong reasoning with [(1, 1, 0.5), (2, 2, 0.5), (3, 3, 0.5)]\n</think>\n\n'
        '```json\n[[500, 500, 1.0], [600, 400, 0.9]]\n```',
        # the chat template opened <think> in the prompt: only the closing tag is in the answer
        'reasoning [(1, 1, 0.5), (2, 2, 0.5), (3, 3, 0.5)] </think> '
        '[(500, 500, 1.0), (600, 400, 0.9)]',
        '<THINKING>x [(1, 1, 0.5), (2, 2, 0.5), (3, 3, 0.5)]</THINKING>'
        '[(500, 500, 1.0), (600, 400, 0.9)]',
    ],
)
def test_reasoning_sections_are_skipped(text):
    p = parse_trace(text, expect_depth=True)
    assert p.xy.tolist() == [[500, 500], [600, 400]]
    assert 'reasoning' in p.note


def test_only_reasoning_is_an_error_that_says_why():
    with pytest.raises(TraceParseError, match='stopped while reasoning.*max_tokens'):
        parse_trace('<think>The cup is at [(1, 1, 0.5), (2, 2, 0.5)] and then')
    with pytest.raises(TraceParseError, match='only reasoning'):
        parse_trace('<think>[(1, 1, 0.5), (2, 2, 0.5)]</think>  ')


def test_strip_reasoning_leaves_plain_answers_alone():
    assert strip_reasoning('[(1, 2, 0.5)]') == ('[(1, 2, 0.5)]', '')
    assert strip_reasoning('a < b, [(1, 2, 0.5)]') == ('a < b, [(1, 2, 0.5)]', '')


# ------------------------------------------------------------------ coordinates

UNIT = '[(0.42, 0.61, 0.8), (0.45, 0.52, 0.78), (0.58, 0.55, 0.8)]'


def test_0_1_answers_are_refused_by_default_with_the_setting_to_change():
    with pytest.raises(TraceParseError, match='normalised to 0-1.*coordinates: normalized_1'):
        parse_trace(UNIT)


def test_0_1_answers_are_converted_when_the_model_config_says_so():
    p = parse_trace(UNIT, coordinates='normalized_1')
    np.testing.assert_allclose(p.xy[0], [420, 610])
    np.testing.assert_allclose(p.depth, [0.8, 0.78, 0.8])
    with pytest.raises(TraceParseError, match='x=420 is outside 0-1.*looks normalised to 0-1000'):
        parse_trace('[(420, 610, 0.8), (450, 520, 0.78)]', coordinates='normalized_1')


def test_auto_converts_a_0_1_answer_with_a_note_and_reads_others_as_0_1000():
    p = parse_trace(UNIT, coordinates='auto')
    np.testing.assert_allclose(p.xy[1], [450, 520])
    assert 'normalised to 0-1' in p.note
    q = parse_trace('[(420, 610, 0.8), (450, 520, 0.78)]', coordinates='auto')
    assert q.xy[0].tolist() == [420, 610] and q.note == ''


def test_integer_corner_points_are_not_mistaken_for_0_1():
    assert parse_trace('[(0, 1, 0.5), (1, 0, 0.5)]').xy.tolist() == [[0, 1], [1, 0]]


def test_pixel_answers_are_converted_with_the_image_size():
    p = parse_trace('[[320, 240], [640, 0]]', coordinates='pixels', image_size=(640, 480))
    np.testing.assert_allclose(p.xy, [[500, 500], [1000, 0]])
    with pytest.raises(TraceParseError, match='y=500 is outside 0-480 pixels'):
        parse_trace('[[320, 500], [10, 10]]', coordinates='pixels', image_size=(640, 480))
    with pytest.raises(ValueError, match='needs the image size'):
        parse_trace('[[320, 240]]', coordinates='pixels')
    with pytest.raises(ValueError, match='not one of'):
        parse_trace('[[320, 240]]', coordinates='percent')


# ------------------------------------------------------------------ not visible


@pytest.mark.parametrize(
    'text',
    [
        'I cannot find that object in the image.',
        "I can't see a red cup here.",
        'The unicorn is not visible in this image.',
        'There is no green bowl in the image.',
        'Sorry, I was unable to locate the plate.',
        'The object is out of view.',
        '<think>looking for the cup</think>I could not find the cup.',
    ],
)
def test_answers_that_cannot_see_the_object_raise_object_not_visible(text):
    assert says_not_visible(text)
    with pytest.raises(ObjectNotVisible, match='cannot see the object'):
        parse_trace(text)


@pytest.mark.parametrize(
    'text',
    [
        'The object should be picked up and moved.',
        "I'm sorry, I can't determine a trace for this task.",
        # a trace wins over a remark
        'I cannot find a blue cup, but the red one goes [(480, 520, 0.61), (500, 400, 0.7)]',
    ],
)
def test_other_answers_are_not_not_visible(text):
    try:
        parse_trace(text)
    except ObjectNotVisible:
        pytest.fail(f'{text!r} read as not visible')
    except TraceParseError:
        pass
