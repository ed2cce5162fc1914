"""Looking for what the G1 cannot see (trace_executor.g1.search), without ROS.

The policy (views, words, giving up), the typed sight of a perception failure or a trace, and
the searching goal runner with the real G1 planner on an in-process robot in a small world
whose "model" sees only what lies in the head camera's field of view.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from robotracer_msgs.srv import GetTrace
from trace_executor.errors import ErrorCode
from trace_executor.execution import GoalSpec, MotionResult, MotionStatus, TraceInput
from trace_executor.g1.kinematics import standing_upper_body
from trace_executor.g1.plan_types import pack_state
from trace_executor.g1.planner import G1Planner
from trace_executor.g1.search import (
    LookAround,
    SearchConfig,
    SearchingGoalRunner,
    Seen,
    Sight,
    View,
    failure_sight,
    object_phrase,
    trace_sight,
)
from trace_executor.g1.stance import wrap_angle

NOT_FOUND_MSG = (
    'perception failed (error 8): object not visible: no trace found in the answer: the model '
    "says it cannot see the object ('I cannot find that object in the image.')"
)


# --- the policy ----------------------------------------------------------------------------


def test_scan_waist_left_right_then_body_through_360_and_back():
    policy = LookAround()
    views, words = [], []
    while (view := policy.next_view()) is not None:
        words.append(policy.move_words(view))
        views.append(view)
        policy.record(view, Sight.NOTHING)
    assert [round(math.degrees(v.waist_yaw_rad)) for v in views] == [60, -60, 0, 0, 0]
    assert [round(math.degrees(v.base_yaw_rad)) for v in views] == [0, 0, 120, 180, 240]
    assert words == [
        'turning the waist left 60°',
        'turning the waist right 120°',
        'turning the body left 120°',
        'turning the body left 60°',
        'turning the body left 60°',
    ]
    # the way home keeps turning the same way: 240° + 120° = a full turn
    assert policy.move_words(policy.home) == 'turning back to where it started'
    assert policy.progress == 1.0


def test_summary_says_what_was_tried():
    policy = LookAround()
    while (view := policy.next_view()) is not None:
        policy.record(view, Sight.NOTHING)
    text = policy.summary()
    assert text.startswith('6 views (asked the model from where it stood')
    assert 'waist turned left 60° and right 60°' in text
    assert 'body turned left to 120°, 180° and 240°' in text


def test_gives_up_when_the_time_budget_is_spent():
    now = [0.0]
    policy = LookAround(SearchConfig(time_budget_s=10.0), clock=lambda: now[0])
    first = policy.next_view()
    policy.record(first, Sight.NOTHING)
    now[0] = 11.0
    assert policy.next_view() is None
    assert policy.out_of_time
    assert 'time budget 10 s spent' in policy.summary()


def test_view_describes_itself():
    assert View().describe() == 'the start'
    assert View(math.radians(-60)).describe() == 'the waist turned right 60°'
    assert View(0.0, math.radians(180)).describe() == 'the body turned left 180°'


@pytest.mark.parametrize(
    'kw',
    [
        {'waist_yaws_deg': (0.0,)},
        {'waist_yaws_deg': (170.0,)},
        {'base_yaws_deg': (200.0,)},  # one step of 180° or more: the turn direction is unclear
        {'base_yaws_deg': (90.0, 180.0)},  # the way back would be 180°
        {'time_budget_s': 0.0},
        {'speed_scale': 1.5},
    ],
)
def test_config_rejects_scans_that_cannot_run(kw):
    with pytest.raises(ValueError):
        SearchConfig(**kw)


def test_config_without_waist_or_base_views():
    policy = LookAround(SearchConfig(waist_yaws_deg=(), base_yaws_deg=(90.0, 180.0, 270.0)))
    views = []
    while (v := policy.next_view()) is not None:
        views.append(round(math.degrees(v.base_yaw_rad)))
        policy.record(v, Sight.NOTHING)
    assert views == [90, 180, 270]


# --- what a look says ----------------------------------------------------------------------


def _failed(code: int, bad_point: int = 0, depth: float = math.nan) -> GetTrace.Response:
    return GetTrace.Response(
        success=False, error_code=code, bad_point=bad_point, bad_point_depth_m=depth
    )


def test_failure_sight_from_the_perception_nodes_typed_fields():
    r = GetTrace.Response
    assert failure_sight(_failed(r.ERROR_NOT_VISIBLE)) is Sight.NOTHING
    behind = _failed(r.ERROR_BAD_ANSWER, 6, -0.023)
    assert failure_sight(behind) is Sight.OBJECT_ONLY, 'the destination is behind the camera'
    first = _failed(r.ERROR_BAD_ANSWER, 1, -0.4)
    assert failure_sight(first) is Sight.NOTHING, 'the object itself is behind the camera'
    far = _failed(r.ERROR_BAD_ANSWER, 3, 250.0)
    assert failure_sight(far) is None, 'too far is a bad answer, not out of view'
    off_image = _failed(r.ERROR_BAD_ANSWER, 2)  # x outside 0-1000: not a depth problem
    assert failure_sight(off_image) is None
    assert failure_sight(_failed(r.ERROR_BAD_ANSWER)) is None  # prose, no trace
    # the model server being down says nothing about what is in view
    assert failure_sight(_failed(r.ERROR_MODEL)) is None


def test_failure_sight_of_the_perception_services_own_answer():
    """End to end through the service's parsing: the model put the destination behind."""
    ts = pytest.importorskip('robotracer_ros.trace_service')
    from robotracer_ros.backends import BackendAnswer

    def model(rgb, depth, K, instruction, *, mode_3d=True):
        return BackendAnswer('[(500, 500, 1.0), (520, 500, 1.0), (900, 500, -0.3)]', 'm', 0.0)

    model.name = 'fake'
    k = np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]])
    frame = ts.Frame(
        np.zeros((480, 640, 3), np.uint8), np.full((480, 640), 1000, np.uint16), None, k, 9.9, 'c'
    )
    out = ts.TraceService(model, clock=lambda: 10.0, max_frame_age_s=1.0).handle(
        ts.TraceRequest('put the cup on the plate'), frame
    )
    response = GetTrace.Response(
        error_code=out.error_code,
        error_msg=out.error_msg,
        bad_point=out.bad_point,
        bad_point_depth_m=out.bad_point_depth_m,
    )
    assert failure_sight(response) is Sight.OBJECT_ONLY, out.error_msg


def test_trace_sight_end_on_the_border_means_the_destination_is_out_of_view():
    assert trace_sight([320.0, 200.0], [240.0, 300.0], 640, 480) is Sight.BOTH
    assert trace_sight([320.0, 0.0], [240.0, 479.0], 640, 480) is Sight.OBJECT_ONLY
    assert trace_sight([320.0, 300.0], [240.0, 479.0], 640, 480) is Sight.OBJECT_ONLY
    assert trace_sight([], [], 0, 0) is Sight.BOTH, 'unknown pixels: trust the trace'


@pytest.mark.parametrize(
    'instruction,phrase',
    [
        ('put the red cup on the plate', 'the red cup'),
        ('Place the green bowl next to the red cup.', 'the green bowl'),
        ('stack red cup onto the plate', 'the red cup'),
        ('push the blue block 10 cm left', 'the blue block'),
        ('move the yellow bottle to the left of the plate', 'the yellow bottle'),
        ('pick up the mug', 'the mug'),
        ('what is on the table', None),
    ],
)
def test_object_phrase(instruction, phrase):
    assert object_phrase(instruction) == phrase


# --- the searching goal runner -------------------------------------------------------------


PELVIS_Z = 0.8015
HALF_FOV = math.radians(36.0)
OBJECTS = {
    'red cup': (0.45, 0.12, 0.765),
    'blue block': (0.48, -0.15, 0.7425),
    'plate': (1.42, 0.62, 0.765),
    'green bowl': (1.6, 0.95, 0.765),
}


@pytest.fixture(scope='module')
def planner():
    pytest.importorskip('pink', reason='the G1 planner needs pin-pink')
    return G1Planner()


class Room:
    """An in-process G1 and a "model" that sees what lies in the head camera's field of view.

    The camera looks along the pelvis heading plus the waist yaw, sees 0.1-2.2 m away and
    ±36° to the sides (±60° within 0.6 m). Like the oracle, the model answers "I cannot find
    that object" when the object is not in view; when the destination is not in view, its
    trace ends on the image border, or (destination behind the camera) the answer has a
    negative depth.
    """

    name = 'in-process'

    def __init__(self, planner: G1Planner, x: float, y: float, yaw: float) -> None:
        self.planner = planner
        self.state = pack_state((x, y, PELVIS_Z, yaw), standing_upper_body())
        self.objects = {k: np.array(v) for k, v in OBJECTS.items()}
        self.held: str | None = None
        self.calls: list[tuple] = []
        self.asked: list[tuple[str, float]] = []
        self.fail_motion = ''
        self.on_motion = lambda seg: None

    # robot
    def joint_positions(self) -> np.ndarray:
        return self.state.copy()

    def execute(self, segment, interrupt, progress) -> MotionResult:
        self.on_motion(segment)
        if interrupt():
            return MotionResult(MotionStatus.STOPPED, 'stopped', 'canceled')
        if self.fail_motion and segment.kind.value in ('walk', 'motion'):
            return MotionResult(MotionStatus.FAILED, self.fail_motion)
        if segment.kind.value == 'walk':
            x, y, yaw = segment.goal
            self.state[[0, 1, 3]] = [x, y, yaw]
        elif segment.kind.value == 'motion':
            self.state[4:] = segment.positions_rad[-1]
        elif segment.kind.value == 'arm_release':
            self.state[4:] = standing_upper_body()  # the locomotion controller's pose
        self.calls.append((segment.kind.value, getattr(segment, 'phase', '')))
        progress(1.0)
        return MotionResult(MotionStatus.DONE)

    def gripper(self, close: bool, segment=None) -> tuple[bool, str]:
        hand = self.planner.grasp_position(self.state, segment.side)
        if close:
            name = min(self.objects, key=lambda n: np.linalg.norm(self.objects[n] - hand))
            assert np.linalg.norm(self.objects[name] - hand) < 0.08, 'grasped nothing'
            self.held = name
        else:
            self.objects[self.held] = hand - self.planner.grasp_offset(segment.side, self.state[3])
            self.held = None
        self.calls.append(('gripper', close))
        return True, 'ok'

    def holding(self) -> bool:
        return self.held is not None

    # camera + model
    def where(self, name: str) -> np.ndarray:
        if name == self.held:
            side = self.planner.holding_side or 'left'
            hand = self.planner.grasp_position(self.state, side)
            return hand - self.planner.grasp_offset(side, self.state[3])
        return self.objects[name]

    def bearing(self, p: np.ndarray) -> tuple[float, float]:
        d = p[:2] - self.state[:2]
        heading = self.state[3] + self.state[4]
        return float(np.linalg.norm(d)), wrap_angle(math.atan2(d[1], d[0]) - heading)

    def in_view(self, p: np.ndarray) -> bool:
        dist, rel = self.bearing(p)
        # the camera looks down: close to the body (a carried object) it sees wider
        return 0.1 < dist < 2.2 and abs(rel) < (HALF_FOV if dist > 0.6 else math.radians(60))

    def look(self, instruction: str) -> Seen:
        self.asked.append((instruction, float(self.state[3] + self.state[4])))
        m = re.match(
            r'(?:put|pick up) the ([a-z ]+?)(?: (on|next to) the ([a-z ]+))?$', instruction
        )
        name = m.group(1) if m else ''
        if name not in self.objects or not self.in_view(self.where(name)):
            return Seen(Sight.NOTHING, None, NOT_FOUND_MSG)
        obj = self.where(name)
        if m.group(2) is None:  # pick up: straight up
            return Seen(Sight.BOTH, TraceInput(np.array([obj, obj + [0, 0, 0.1]]), 'odom'))
        dest = self.objects[m.group(3)].copy()
        if m.group(2) == 'next to':
            dest += [0.12, 0.0, 0.0]
        dest[2] = obj[2] if m.group(2) == 'next to' else dest[2] + 0.03
        top = max(obj[2], dest[2]) + 0.12
        mid = 0.5 * (obj[:2] + dest[:2])
        pts = np.array([obj, [*obj[:2], top], [*mid, top], [*dest[:2], top], dest])
        if self.in_view(dest):
            return Seen(Sight.BOTH, TraceInput(pts, 'odom'))
        if abs(self.bearing(dest)[1]) > math.pi / 2:
            why = 'perception failed (error 4): point 5: d=-0.3 m is outside (0, 100] m'
            return Seen(Sight.OBJECT_ONLY, None, why)
        pts[-1] = obj + [0.3, 0.3, 0.0]  # clipped at the border: not where the plate is
        return Seen(Sight.OBJECT_ONLY, TraceInput(pts, 'odom'))


def _runner(room: Room, feedback: list | None = None, **kw) -> SearchingGoalRunner:
    fb = feedback if feedback is not None else []
    return SearchingGoalRunner(
        room.planner,
        room,
        look=room.look,
        holding=room.holding,
        feedback=lambda phase, progress, replans, msg, trace: fb.append(msg),
        **kw,
    )


def _goal(text: str, dry_run: bool = False) -> GoalSpec:
    return GoalSpec(text, None, dry_run, 1.0, True, 'pick_place')


def test_turned_away_it_looks_around_finds_the_cup_and_puts_it_on_the_plate(planner):
    room = Room(planner, 0.0, 0.0, math.pi)
    fb: list[str] = []
    out = _runner(room, fb).run(_goal('put the red cup on the plate'), lambda: False)
    assert out.success, out.message
    assert 'looking for the red cup: turning the waist left 60°' in fb
    assert 'looking for the red cup: turning the body left 120°' in fb
    assert not any('not found' in m for m in fb)
    cup = room.objects['red cup']
    assert np.linalg.norm(cup[:2] - np.array(OBJECTS['plate'][:2])) < 0.05, cup
    # the first view that saw it: the body turned 180° (the waist views looked sideways)
    headings = [round(math.degrees(wrap_angle(h))) for _, h in room.asked[:6]]
    assert headings[:5] == [180, -120, 120, -60, 0], headings


def test_the_hands_are_raised_before_the_body_turns_in_place(planner):
    """Soak: the body turned 180° in place at the far table with the hands hanging at table
    height; a hand was dragged across the table, ended behind the body with its wrist pushed
    past its limit, and every later plan was refused. The free hands go up first."""
    room = Room(planner, 0.0, 0.0, math.pi)
    hanging = min(planner.grasp_position(room.state, s)[2] for s in ('left', 'right'))
    assert hanging < 0.82  # the standing pose: at the height of a table top (0.72 m) + a cup
    while_turning: list[float] = []

    def on_motion(seg) -> None:
        if seg.kind.value == 'walk' and np.allclose(seg.goal[:2], 0.0):  # a turn in place
            hands = [planner.grasp_position(room.state, s)[2] for s in ('left', 'right')]
            while_turning.append(min(hands))

    room.on_motion = on_motion
    out = _runner(room).run(_goal('put the red cup on the plate'), lambda: False)
    assert out.success, out.message
    assert room.calls.index(('motion', 'tuck')) < room.calls.index(('walk', ''))
    assert while_turning and min(while_turning) > 0.88, while_turning


def test_an_object_that_does_not_exist_fails_after_looking_around_facing_the_start(planner):
    room = Room(planner, 0.0, 0.0, 0.3)
    fb: list[str] = []
    out = _runner(room, fb).run(_goal('put the unicorn on the plate'), lambda: False)
    assert not out.success and out.code == ErrorCode.PERCEPTION
    assert 'the unicorn not found after looking around: 6 views' in out.message, out.message
    assert 'then turned back to where it started' in out.message
    assert "'I cannot find that object in the image.'" in out.message
    assert len(room.asked) == 6
    assert fb[-1] == 'looking for the unicorn: turning back to where it started'
    assert abs(wrap_angle(room.state[3] - 0.3)) < 1e-6, 'facing where it started'
    assert np.allclose(room.state[:2], 0.0) and abs(room.state[4]) < 1e-6, 'waist straight'
    assert room.calls[-1] == ('arm_release', ''), 'the arms are handed back'
    assert not any(c[0] == 'gripper' for c in room.calls)


def test_a_dry_run_never_moves_to_look(planner):
    room = Room(planner, 0.0, 0.0, math.pi)
    out = _runner(room).run(_goal('put the red cup on the plate', dry_run=True), lambda: False)
    assert not out.success and out.code == ErrorCode.PERCEPTION
    assert 'I cannot find that object' in out.message
    assert room.calls == [] and len(room.asked) == 1


def test_cancel_while_looking_stops_with_canceled(planner):
    room = Room(planner, 0.0, 0.0, math.pi)
    cancelled = [False]
    room.on_motion = lambda seg: cancelled.__setitem__(0, True)
    out = _runner(room).run(_goal('put the red cup on the plate'), lambda: cancelled[0])
    assert not out.success and out.code == ErrorCode.CANCELED, out.message
    assert 'while looking for the red cup' in out.message


def test_a_look_motion_that_fails_ends_the_goal_with_an_execution_error(planner):
    room = Room(planner, 0.0, 0.0, math.pi)
    room.fail_motion = 'rt/lowstate stale (150 ms without a new sample)'
    out = _runner(room).run(_goal('put the red cup on the plate'), lambda: False)
    assert not out.success and out.code == ErrorCode.EXECUTION
    assert 'stale' in out.message and 'while looking for the red cup' in out.message


def test_destination_behind_it_picks_first_then_looks_for_the_destination_holding_it(planner):
    """At the far table facing the bowl, the cup behind: pick the bowl up, turn, place it."""
    room = Room(planner, 1.1, 0.62, 0.0)
    fb: list[str] = []
    out = _runner(room, fb).run(_goal('put the green bowl next to the red cup'), lambda: False)
    assert out.success, out.message
    assert any(q.startswith('pick up the green bowl') for q, _ in room.asked)
    grips = [c for c in room.calls if c[0] == 'gripper']
    assert grips == [('gripper', True), ('gripper', False)]
    assert any(m.startswith('looking for where to put the green bowl: turning') for m in fb)
    bowl, cup = room.objects['green bowl'], room.objects['red cup']
    assert np.linalg.norm(bowl[:2] - (cup[:2] + [0.12, 0.0])) < 0.05, bowl


def test_destination_off_to_the_side_clipped_on_the_border(planner):
    """Turned right 30°: the block is in view, the plate off to the left (its trace end is
    clipped on the border, not where the plate is): pick the block, look, place it."""
    room = Room(planner, 0.0, 0.0, math.radians(-30))
    fb: list[str] = []
    out = _runner(room, fb).run(_goal('put the blue block on the plate'), lambda: False)
    assert out.success, out.message
    assert not any(q.startswith('pick up') for q, _ in room.asked), 'the clipped trace will do'
    assert 'looking for where to put the blue block: turning the waist left 60°' in fb
    block = room.objects['blue block']
    assert np.linalg.norm(block[:2] - np.array(OBJECTS['plate'][:2])) < 0.05, block
