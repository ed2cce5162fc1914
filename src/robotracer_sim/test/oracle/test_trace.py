"""The oracle's answers, lifted back to 3D, go from the named object to the named destination."""

from __future__ import annotations

import re

import mujoco
import numpy as np
import pytest

from robotracer_sim.oracle import Oracle, OracleConfig
from robotracer_sim.oracle.core import NOT_FOUND, extract_instruction, wants_3d
from robotracer_sim.oracle.geometry import project, transform_points
from robotracer_sim.oracle.language import LanguageError, Task, parse_instruction
from robotracer_sim.oracle.trace import MIN_ANSWER_DEPTH, visible_trace
from robotracer_sim.ur5.world import Ur5World

PROMPT_3D = (
    'Point the 3D object-centric visual trace for the task "{}". Your answer should be '
    'formatted as a list of tuples, i.e., [(x1, y1, d1), (x2, y2, d2), ...], where each tuple '
    'contains the x and y coordinates of the point, and d is the depth of the point.'
)
PROMPT_2D = (
    'Point the 2D object-centric visual trace for the task "{}". Your answer should be '
    'formatted as a list of tuples, i.e., [(x1, y1), (x2, y2), ...], where each tuple contains '
    'the x and y coordinates of the point.'
)

try:  # the project's own parser when the perception package is there
    from robotracer_ros.parsing import parse_trace as _project_parse

    def parse(text: str) -> np.ndarray:
        t = _project_parse(text, expect_depth=True)
        return np.column_stack([t.xy, t.depth])

except ImportError:  # a tiny strict local parser

    def parse(text: str) -> np.ndarray:
        if not re.fullmatch(r'\[\(.*\)\]', text.strip()):
            raise ValueError(f'not a trace: {text!r}')
        rows = re.findall(r'\(([^()]*)\)', text)
        pts = np.array([[float(v) for v in r.split(',')] for r in rows])
        if pts.ndim != 2 or pts.shape[1] != 3 or np.any(pts[:, :2] > 1000) or np.any(pts < 0):
            raise ValueError(f'bad trace: {text!r}')
        return pts


def lift(answer: str, world: Ur5World, w: int = 640, h: int = 480) -> np.ndarray:
    """Answer -> world points: u = x/1000*W, v = y/1000*H, pinhole with K, camera -> world."""
    xyd = parse(answer)
    u, v, d = xyd[:, 0] / 1000 * w, xyd[:, 1] / 1000 * h, xyd[:, 2]
    k = world.k
    cam = np.stack([(u - k[0, 2]) * d / k[0, 0], (v - k[1, 2]) * d / k[1, 1], d], axis=1)
    return transform_points(world.t_world_camera, cam)


@pytest.fixture
def world() -> Ur5World:
    w = Ur5World()
    w.step(0.3)
    return w


@pytest.fixture
def oracle(world) -> Oracle:
    return Oracle(world.snapshot, OracleConfig(latency=0.0))


def ask(oracle: Oracle, world: Ur5World, instruction: str) -> np.ndarray:
    ans = oracle.answer(PROMPT_3D.format(instruction), 640, 480, world.k)
    assert ans.usable, ans.text
    return lift(ans.text, world)


# ----------------------------------------------------------------------------- language


@pytest.mark.parametrize(
    'text, task',
    [
        ('put the red cube on the plate', Task('place', 'the red cube', 'on', 'the plate')),
        (
            'Place the green block into the bowl.',
            Task('place', 'the green block', 'in', 'the bowl'),
        ),
        ('move the cup to the left of the bowl', Task('place', 'the cup', 'left_of', 'the bowl')),
        ('put the cube right of the cup', Task('place', 'the cube', 'right_of', 'the cup')),
        (
            'set the mug in front of the plate',
            Task('place', 'the mug', 'in_front_of', 'the plate'),
        ),
        ('move X next to Y', Task('place', 'x', 'next_to', 'y')),
        (
            'push the blue cube 10 cm forward',
            Task('slide', 'the blue cube', None, None, 'forward', 0.1),
        ),
        ('slide the cup left by 80 mm', Task('slide', 'the cup', None, None, 'left', 0.08)),
        (
            'move the plate 5 cm to the right',
            Task('carry', 'the plate', None, None, 'right', 0.05),
        ),
        (
            'push the bowl towards the camera',
            Task('slide', 'the bowl', None, None, 'backward', 0.1),
        ),
        ('pick up the blue cube', Task('lift', 'the blue cube', None, None, 'up', 0.1)),
        ('lift the cup by twenty cm', Task('lift', 'the cup', None, None, 'up', 0.2)),
    ],
)
def test_language_parses_the_documented_sentences(text, task):
    assert parse_instruction(text) == task


@pytest.mark.parametrize('text', ['', 'fly to the moon', 'push the cube', 'put the cube'])
def test_language_rejects_what_it_does_not_know(text):
    with pytest.raises(LanguageError):
        parse_instruction(text)


def test_prompt_handling():
    assert extract_instruction(PROMPT_3D.format('put the cup on the plate')) == (
        'put the cup on the plate'
    )
    assert extract_instruction('put the cup on the plate') == 'put the cup on the plate'
    assert wants_3d(PROMPT_3D.format('x')) and not wants_3d(PROMPT_2D.format('x'))


# ----------------------------------------------------------------------------- traces


def _gt(world: Ur5World, name: str) -> np.ndarray:
    return world.object_poses()[name].position


def test_put_on_the_plate_starts_at_the_cube_and_ends_on_the_plate(oracle, world):
    pts = ask(oracle, world, 'put the red cube on the plate')
    assert 6 <= len(pts) <= 10
    assert np.linalg.norm(pts[0] - _gt(world, 'red_cube')) < 0.02
    plate = _gt(world, 'plate')
    expected_end = [plate[0], plate[1], 0.012 + 0.0225]  # plate top + half the cube
    assert np.linalg.norm(pts[-1] - expected_end) < 0.02
    assert pts[:, 2].max() > 0.1  # it is lifted over, not dragged through things


def test_place_in_the_bowl_ends_on_the_bowls_floor(oracle, world):
    pts = ask(oracle, world, 'place the green block in the bowl')
    assert np.linalg.norm(pts[0] - _gt(world, 'green_cube')) < 0.02
    bowl = _gt(world, 'bowl')
    assert np.linalg.norm(pts[-1][:2] - bowl[:2]) < 0.02
    assert pts[-1][2] == pytest.approx(0.008 + 0.0225, abs=0.02)
    assert pts[:, 2].max() > 0.05 + 0.0225  # clears the bowl's rim


def test_left_of_is_the_viewers_left(oracle, world):
    pts = ask(oracle, world, 'move the cup to the left of the bowl')
    assert np.linalg.norm(pts[0] - _gt(world, 'cup')) < 0.02
    bowl = _gt(world, 'bowl')
    # the camera looks along -x from the front: its image left is the world's -y
    expected = [bowl[0], bowl[1] - (0.075 + 0.035 + 0.03), 0.045]
    assert np.linalg.norm(pts[-1] - expected) < 0.02


def test_push_forward_slides_away_from_the_camera(oracle, world):
    pts = ask(oracle, world, 'push the blue cube 10 cm forward')
    start = _gt(world, 'blue_cube')
    assert np.linalg.norm(pts[0] - start) < 0.02
    assert np.linalg.norm(pts[-1] - (start + [-0.10, 0, 0])) < 0.02
    assert np.ptp(pts[:, 2]) < 0.01  # stays on the table


def test_next_to_ends_beside_the_reference_without_overlap(oracle, world):
    pts = ask(oracle, world, 'move the red cube next to the cup')
    cup = _gt(world, 'cup')
    gap = np.linalg.norm(pts[-1][:2] - cup[:2])
    assert 0.035 + 0.0225 < gap < 0.12
    assert pts[-1][2] == pytest.approx(0.0225, abs=0.01)


def test_the_trace_follows_the_scene_as_it_is_at_request_time(oracle, world):
    world.set_object_pose('red_cube', [0.40, 0.25, 0.0225])
    world.step(0.3)
    pts = ask(oracle, world, 'put the red cube on the plate')
    assert np.linalg.norm(pts[0] - [0.40, 0.25, 0.0225]) < 0.02


def test_2d_prompt_gets_a_2d_answer(oracle, world):
    ans = oracle.answer(PROMPT_2D.format('put the red cube on the plate'), 640, 480, world.k)
    assert ans.usable and re.fullmatch(r'\[\(\d+, \d+\)(, \(\d+, \d+\))+\]', ans.text)


@pytest.mark.parametrize(
    'instruction, reply',
    [
        ('fly to the moon', "I'm not sure"),
        ('put the purple cube on the plate', NOT_FOUND),
        ('put the cube on the plate', 'more than one'),
        ('put the plate on the plate', 'itself'),
    ],
)
def test_what_it_cannot_do_gets_an_unusable_answer(oracle, world, instruction, reply):
    ans = oracle.answer(PROMPT_3D.format(instruction), 640, 480, world.k)
    assert not ans.usable and reply in ans.text
    with pytest.raises(ValueError):
        parse(ans.text)


def test_an_object_out_of_view_cannot_be_found(oracle, world):
    world.set_object_pose('cup', [2.5, 0.0, -0.7])  # on the floor behind the camera
    ans = oracle.answer(PROMPT_3D.format('put the cup on the plate'), 640, 480, world.k)
    assert ans.text == NOT_FOUND


def test_noise_is_seeded_and_bounded(world):
    clean = Oracle(world.snapshot, OracleConfig(latency=0.0))
    prompt = PROMPT_3D.format('put the red cube on the plate')
    a = Oracle(world.snapshot, OracleConfig(latency=0.0, noise_std=0.01, seed=7))
    b = Oracle(world.snapshot, OracleConfig(latency=0.0, noise_std=0.01, seed=7))
    ta, tb = a.answer(prompt, 640, 480).text, b.answer(prompt, 640, 480).text
    assert ta == tb != clean.answer(prompt, 640, 480).text
    err = np.linalg.norm(
        lift(ta, world) - lift(clean.answer(prompt, 640, 480).text, world), axis=1
    )
    assert 0.001 < err.mean() < 0.05


def test_malformed_rate_one_never_gives_a_usable_trace(world):
    bad = Oracle(world.snapshot, OracleConfig(latency=0.0, malformed_rate=1.0, seed=3))
    texts = {
        bad.answer(PROMPT_3D.format('put the red cube on the plate'), 640, 480).text
        for _ in range(25)
    }
    assert len(texts) >= 4  # several kinds of broken answers
    for text in texts:
        with pytest.raises(ValueError):
            parse(text)


# ----------------------------------------------------------------------------- end to end


def _tcp_ik(world: Ur5World, target: np.ndarray, q0: np.ndarray) -> np.ndarray:
    m = world.model
    d = mujoco.MjData(m)
    q = q0.copy()
    r_des = np.diag([1.0, -1.0, -1.0])
    for _ in range(300):
        d.qpos[world.info.arm_qpos] = q
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        r = d.site_xmat[world.info.tcp_site].reshape(3, 3)
        e = np.concatenate(
            [
                target - d.site_xpos[world.info.tcp_site],
                0.5 * sum(np.cross(r[:, i], r_des[:, i]) for i in range(3)),
            ]
        )
        if np.linalg.norm(e) < 1e-6:
            break
        jp, jr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        mujoco.mj_jacSite(m, d, jp, jr, world.info.tcp_site)
        j = np.vstack([jp, jr])[:, world.info.arm_dof]
        q = q + j.T @ np.linalg.solve(j @ j.T + 1e-4 * np.eye(6), e)
    return q


def test_executing_the_oracles_trace_puts_the_cube_on_the_plate(oracle, world):
    pts = ask(oracle, world, 'put the red cube on the plate')
    q = world.joint_positions()
    approach = [pts[0] + [0, 0, 0.12], pts[0]]
    for p in approach:
        q = _tcp_ik(world, p, q)
        world.set_trajectory(world.joint_names, [1.0], [q])
        world.step(1.3)
    assert world.set_gripper(True)[1] == 'grasped red_cube'
    qs = []
    for p in pts[1:]:
        q = _tcp_ik(world, p, q)
        qs.append(q)
    world.set_trajectory(world.joint_names, list(0.6 * np.arange(1, len(qs) + 1)), qs)
    world.step(0.6 * len(qs) + 0.4)
    world.set_gripper(False)
    world.set_trajectory(world.joint_names, [1.0], [_tcp_ik(world, pts[-1] + [0, 0, 0.1], q)])
    world.step(1.5)
    cube, plate = _gt(world, 'red_cube'), _gt(world, 'plate')
    assert np.linalg.norm(cube[:2] - plate[:2]) < 0.03
    assert cube[2] == pytest.approx(0.012 + 0.0225, abs=0.005)


# ------------------------------------------------------------------------- what a model can say


def _numbers(text: str) -> np.ndarray:
    rows = re.findall(r'\(([^()]*)\)', text)
    return np.array([[float(v) for v in r.split(',')] for r in rows])


def test_a_trace_leaving_the_view_ends_on_the_border_in_front_of_the_camera(oracle, world):
    world.set_object_pose('plate', [2.5, 0.0, -0.7])  # behind the camera (x = 1.3, z = 0.8)
    world.step(0.3)
    ans = oracle.answer(PROMPT_3D.format('put the red cube on the plate'), 640, 480, world.k)
    assert ans.usable, ans.reason
    xyd = _numbers(ans.text)
    assert np.all((xyd[:, :2] >= 0) & (xyd[:, :2] <= 1000))
    assert np.all(xyd[:, 2] >= MIN_ANSWER_DEPTH)  # nothing at or behind the camera
    assert len(xyd) < len(ans.trace_world)  # the part behind the camera is not answered
    x, y = xyd[-1, :2]
    assert min(x, y, 1000 - x, 1000 - y) <= 2  # it ends on the image border
    pts = parse(ans.text)  # and the project's parser takes it as it is
    assert len(pts) == len(xyd)


def test_visible_trace_cuts_where_the_path_passes_behind_the_camera(world):
    k, t_wc = world.k, world.t_world_camera
    cam = t_wc[:3, 3]
    fwd = t_wc[:3, 2]  # optical axis in the world
    path = np.array([cam + 1.0 * fwd, cam + 0.6 * fwd + [0, 0.05, 0], cam - 0.5 * fwd])
    seen = visible_trace(path, k, t_wc, 640, 480)
    uvz = project(seen, k, t_wc)
    assert len(seen) == 3 and np.all(uvz[:, 2] >= MIN_ANSWER_DEPTH)
    np.testing.assert_allclose(seen[:2], path[:2])
    assert np.allclose(visible_trace(path[:2], k, t_wc, 640, 480), path[:2])  # all in front


def test_malformed_answers_are_of_kinds_a_model_gives(world):
    bad = Oracle(world.snapshot, OracleConfig(latency=0.0, malformed_rate=1.0, seed=5))
    for _ in range(40):
        text = bad.answer(PROMPT_3D.format('put the red cube on the plate'), 640, 480).text
        for row in re.findall(r'\(([^()]*)\)', text):
            values = [float(v) for v in row.split(',') if re.fullmatch(r'\s*[\d.]+\s*', v)]
            assert all(0 <= v <= 1000 for v in values[:2]), text  # never outside 0-1000
            assert all(v > 0 for v in values[2:3]), text  # never at or behind the camera
