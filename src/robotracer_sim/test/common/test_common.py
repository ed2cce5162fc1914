"""What the UR5 and G1 worlds share (robotracer_sim.common): one object schema, one MJCF kit."""

from __future__ import annotations

import copy

import mujoco
import numpy as np
import pytest
import yaml

from robotracer_sim.common import mjcf, scene_schema
from robotracer_sim.g1.scene import parse_g1_scene
from robotracer_sim.ur5.scene import parse_scene

UR5_FILE = scene_schema.scene_file_path('ur5_tabletop.yaml')
G1_FILE = scene_schema.scene_file_path('g1_room.yaml')


@pytest.fixture(scope='module')
def raw() -> dict[str, dict]:
    return {
        'ur5': yaml.safe_load(UR5_FILE.read_text()),
        'g1': yaml.safe_load(G1_FILE.read_text()),
    }


PARSERS = {'ur5': parse_scene, 'g1': parse_g1_scene}


def test_names_other_code_imports_from_the_ur5_modules_are_the_shared_ones():
    from robotracer_sim.ur5 import model, render, scene

    assert scene.ObjectSpec is scene_schema.ObjectSpec
    assert scene.SceneError is scene_schema.SceneError
    assert (
        scene.PALETTE is scene_schema.PALETTE and scene.half_extents is scene_schema.half_extents
    )
    assert scene.default_scene_path() == UR5_FILE
    assert model.cache_dir is mjcf.cache_dir
    assert model.container_floor_offset is mjcf.container_floor_offset
    assert render.RgbdRenderer.__module__ == 'robotracer_sim.common.render'


@pytest.mark.parametrize(
    'field, value, message',
    [
        ('shape', 'pyramid', "objects[0] ({name}).shape: unknown shape 'pyramid'"),
        ('color', 'mauve', "objects[0] ({name}).color: unknown colour 'mauve'"),
        ('rgba', [1, 2, 3], 'objects[0] ({name}).rgba: components must be in [0, 1]'),
        ('words', 'mug', "objects[0] ({name}).words: expected a list of words, got 'mug'"),
        ('yaw_deg', 'left', 'objects[0] ({name}).yaw_deg: expected a list of 1 numbers'),
        ('name', 'Red Cup', 'objects[0].name: expected a name like red_cu'),
        ('bogus', 1, "objects[0]: unknown key(s) ['bogus']"),
    ],
)
@pytest.mark.parametrize('robot', ['ur5', 'g1'])
def test_both_scene_files_name_the_same_object_mistake_the_same_way(
    raw, robot, field, value, message
):
    data = copy.deepcopy(raw[robot])
    name = data['objects'][0]['name']
    data['objects'][0][field] = value
    with pytest.raises(scene_schema.SceneError) as err:
        PARSERS[robot](data, source='scene.yaml')
    assert str(err.value).startswith('scene.yaml: ' + message.format(name=name))


def test_each_world_keeps_its_own_object_ranges(raw):
    ur5, g1 = copy.deepcopy(raw['ur5']), copy.deepcopy(raw['g1'])
    ur5['objects'][0].update(shape='box', size=1.2)  # a big box is fine on the UR5's table
    assert parse_scene(ur5).objects[0].size == (1.2, 1.2, 1.2)
    g1['objects'][0].update(shape='box', size=1.2)  # the G1's objects must be <= 1 m
    with pytest.raises(scene_schema.SceneError, match=r'size: expected sizes in \(0, 1\] m'):
        parse_g1_scene(g1)


@pytest.mark.parametrize('shape, size', [('cup', (0.04, 0.09)), ('bowl', (0.07, 0.05))])
def test_a_container_rests_on_its_base_and_its_inner_floor_is_where_the_oracle_says(shape, size):
    o = scene_schema.ObjectSpec(
        name='thing', shape=shape, color='red', rgba=(1, 0, 0, 1), size=size, position=(0, 0, 1)
    )
    spec = mujoco.MjSpec()
    mjcf.add_floor(spec, (1, 1), (0, 0, 0), (1, 1, 1, 1), robot_group=2)
    mjcf.add_object(spec, o, friction=1.0, robot_group=2)
    model = spec.compile()
    data = mujoco.MjData(model)
    mujoco.mj_step(model, data, 1500)  # 3 s: it falls and settles
    body = model.body('thing').id
    assert data.xpos[body][2] == pytest.approx(size[1] / 2, abs=2e-3)  # standing on its base
    base = model.geom('thing_base').id
    floor_top = model.geom_pos[base][2] + model.geom_size[base][1]  # in the body frame
    assert floor_top == pytest.approx(mjcf.container_floor_offset(o), abs=1e-9)
    assert model.body_mass[body] == pytest.approx(o.mass)


def test_a_converted_robot_is_cached_and_not_rewritten(tmp_path):
    from robotracer_sim.ur5.model import ur5_urdf_for_mujoco

    urdf = ur5_urdf_for_mujoco()
    first = mjcf.convert_urdf(urdf, 'ur5', 'UR5', tmp_path)
    stamp = first.stat().st_mtime_ns
    again = mjcf.convert_urdf(urdf, 'ur5', 'UR5', tmp_path)
    assert again == first and again.stat().st_mtime_ns == stamp
    assert mujoco.MjModel.from_xml_path(str(first)).njnt == 6
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary file left


def test_a_urdf_mujoco_cannot_read_is_refused_with_its_reason(tmp_path):
    with pytest.raises(ValueError, match='no <robot> element'):
        mjcf.urdf_with_compiler_block('<robt name="x"/>', 'X', discard_visual=True)
    with pytest.raises(ValueError, match='MuJoCo could not load the X URDF'):
        mjcf.convert_urdf('<robot name="x"><link name="a"/><joint/></robot>', 'x', 'X', tmp_path)
    assert not list(tmp_path.iterdir())


def test_name_ids_names_what_is_missing():
    model = mujoco.MjModel.from_xml_string(
        '<mujoco><worldbody><body name="a"/></worldbody></mujoco>'
    )
    assert mjcf.name_ids(model, mujoco.mjtObj.mjOBJ_BODY, ['a']).tolist() == [1]
    with pytest.raises(ValueError, match="no mjOBJ_BODY named 'b'"):
        mjcf.name_ids(model, mujoco.mjtObj.mjOBJ_BODY, ['a', 'b'])
    assert np.array_equal(mjcf.name_ids(model, mujoco.mjtObj.mjOBJ_BODY, []), [])
