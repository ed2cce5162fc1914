"""``make demo`` shortened: the real bringup, one instruction with the target moved mid-motion.

Starts ``robotracer launch ur5`` (simulator + oracle on a free port, perception node, executor)
through :func:`robotracer_demo.run.run_demo`, in this pytest run's own ROS domain (root
conftest), and checks what a user would look at in ``out/demo/``.
"""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image
import pytest

pytest.importorskip('rclpy')

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

EXPECTED_TOPICS = {
    '/camera/camera/color/image_raw/compressed': 'sensor_msgs/msg/CompressedImage',
    '/camera/camera/color/camera_info': 'sensor_msgs/msg/CameraInfo',
    '/joint_states': 'sensor_msgs/msg/JointState',
    '/robotracer/trace': 'robotracer_msgs/msg/SpatialTrace',
    '/robotracer/trace_markers': 'visualization_msgs/msg/MarkerArray',
    '/robotracer/annotated_image': 'sensor_msgs/msg/Image',
    '/robotracer/planned_path': 'visualization_msgs/msg/MarkerArray',
}


def test_demo_moves_the_target_mid_motion_and_the_cube_still_ends_on_the_plate(
    tmp_path, capsys
) -> None:
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    from robotracer_demo.process import descendants
    from robotracer_demo.run import EXIT_OK, run_demo
    from robotracer_demo.scenarios import UR5_DEMO
    from robotracer_ros.images import decode_image

    first = UR5_DEMO.instructions[0]
    assert first.move is not None, 'the first UR5 instruction is the one with the move'
    out = tmp_path / 'demo'
    code = run_demo('ur5', str(out), only=[1], ready_timeout_s=150.0)
    printed = capsys.readouterr().out
    log = (out / 'bringup.log').read_text() if (out / 'bringup.log').exists() else ''
    assert code == EXIT_OK, printed + '\n--- bringup.log (tail)\n' + log[-3000:]
    assert not descendants(os.getpid()), 'the bringup outlived the demo'

    # summary.json: success, a replan caused by the move, the cube on the plate
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['ok'] is True
    (item,) = summary['instructions']
    assert item['text'] == first.text and item['success'] is True, item
    assert item['moved']['done'] is True, item['moved']
    assert item['moved']['at_s'] < 3.0
    assert item['replans'] >= 1
    final, plate = np.array(item['final_position']), np.array(item['destination_position'])
    assert np.hypot(*(final[:2] - plate[:2])) < 0.03
    assert item['final_error_m'] < 0.03
    assert final[2] > plate[2]  # resting on the plate, not beside it
    moved_to = np.array(item['moved']['to'])
    assert np.hypot(*(final[:2] - moved_to[:2])) > 0.1  # it was picked up from its new place
    for key in ('model_s', 'planning_s', 'motion_s'):
        assert item[key] > 0.0, key
    assert item['motion_s'] > item['planning_s']

    # the printed table
    table = printed[printed.index('#  instruction') :]
    row = next(line for line in table.splitlines() if line.startswith('1  '))
    assert first.text in row and ' yes ' in row and '(moved)' in row

    # pictures: valid PNGs of the expected layout
    trace = Image.open(out / '01_trace.png')
    both = Image.open(out / '01_before_after.png')
    overview = Image.open(out / 'demo.png')
    for img in (trace, both, overview):
        assert img.format == 'PNG'
        img.load()
    assert trace.size[0] == 640 and trace.size[1] > 480
    assert both.size[0] > 2 * 640 and both.size[1] > 480
    before = np.asarray(both.convert('RGB'))[:480, :640].astype(int)
    after = np.asarray(both.convert('RGB'))[:480, -640:].astype(int)
    assert np.abs(before - after).mean() > 1.0  # the scene changed

    # the MCAP recording: every topic there, every message decodable
    with open(out / 'demo.mcap', 'rb') as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        summary_mcap = reader.get_summary()
        topics = {
            c.topic: summary_mcap.schemas[c.schema_id].name for c in summary_mcap.channels.values()
        }
        counts: dict[str, int] = {}
        last: dict[str, object] = {}
        for _schema, channel, _raw, msg in reader.iter_decoded_messages():
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
            last[channel.topic] = msg
    assert topics == EXPECTED_TOPICS
    assert counts['/joint_states'] > 100
    assert counts['/camera/camera/color/image_raw/compressed'] >= 5
    assert counts['/robotracer/trace'] >= 2  # the first trace and the one after the move
    assert counts['/robotracer/planned_path'] >= 2
    assert last['/robotracer/trace'].instruction == first.text
    assert len(last['/joint_states'].position) == 6
    jpeg = decode_image(bytes(last['/camera/camera/color/image_raw/compressed'].data))
    assert jpeg.shape == (480, 640, 3)
