"""config/perception.yaml and config/models/ against the node's declared parameters and rules."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from robotracer_ros.backends import BackendError, make_backend
from robotracer_ros.parameters import ConfigError
from robotracer_ros.perception_config import (
    PARAMETERS,
    PARAMETERS_BY_NAME,
    backend_options,
    check_parameters,
    default_parameters,
    pipeline_options,
)

CONFIG = pathlib.Path(__file__).resolve().parents[3] / 'config' / 'perception.yaml'


def flatten(d: dict, prefix: str = '') -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f'{prefix}{k}.'))
        else:
            out[f'{prefix}{k}'] = v
    return out


def test_every_parameter_is_in_the_yaml_with_its_default_and_a_comment():
    text = CONFIG.read_text()
    params = flatten(yaml.safe_load(text)['perception_node']['ros__parameters'])
    assert set(params) == set(PARAMETERS_BY_NAME)
    for p in PARAMETERS:
        assert params[p.name] == p.default, p.name
        assert p.description, p.name
        assert p.check(p.default) == '', p.name
    for line in text.splitlines():
        if ':' in line and not line.lstrip().startswith('#') and line.startswith('    '):
            key = line.split(':')[0].strip()
            if key not in ('ros__parameters',):
                assert '#' in line, f'{key} has no comment'


# ------------------------------------------------------------------ model config files

MODELS = CONFIG.parent / 'models'
MINE = sorted(MODELS.glob('*.yaml'))


def model_params(path: pathlib.Path) -> dict:
    """The node's parameters with a model config file laid over the defaults."""
    values = default_parameters()
    values.update(flatten(yaml.safe_load(path.read_text())['perception_node']['ros__parameters']))
    return values


@pytest.mark.parametrize('path', MINE, ids=[p.name for p in MINE])
def test_each_model_config_is_declared_consistent_and_builds_its_backend(path, tmp_path):
    params = model_params(path)
    assert set(params) == set(PARAMETERS_BY_NAME), set(params) - set(PARAMETERS_BY_NAME)
    for name, value in params.items():
        assert PARAMETERS_BY_NAME[name].check(value) == '', (path.name, name)
    check_parameters(params)
    opts = backend_options(params)
    pipeline_options(params, params['depth_source'])
    if params['backend'] == 'transformers':
        # its checkpoint folder (model_name) is not here: the backend says so at start. The
        # file builds a real backend with a tiny checkpoint in backends/test_transformers.py
        assert opts['max_new_tokens'] >= 1024 and opts['device'].startswith('cuda')
        with pytest.raises(BackendError) as info:
            make_backend(params['backend'], **opts)
        assert info.value.kind == 'config'
        return
    if params['backend'] == 'robotracer_http':
        opts['shared_dir'] = str(tmp_path)
    backend = make_backend(params['backend'], **opts)
    if path.name == 'robotracer_rgb.yaml':  # no depth camera: nothing sent, nothing subscribed
        assert not params['use_depth'] and not backend.sends_depth
        assert backend.transport == 'paths' and backend.inputs == 'rgb'
    if path.name == 'robotracer_server.yaml':
        assert backend.transport == 'base64' and backend.inputs == 'rgbd'
    if path.name == 'robotracer_spatial.yaml':
        assert backend.transport == 'paths' and backend.inputs == 'rgbd_intrinsics'
    if path.name == 'vllm_qwen3vl.yaml':
        assert backend.max_tokens >= 4096 and backend.max_tokens_field == 'max_tokens'


def test_the_node_and_the_transformers_backend_share_the_generation_limit_default():
    import inspect

    from robotracer_ros.backends.transformers_local import TransformersBackend

    default = inspect.signature(TransformersBackend).parameters['max_new_tokens'].default
    assert PARAMETERS_BY_NAME['max_new_tokens'].default == default >= 1024  # 256 cut traces


def test_without_a_depth_topic_depth_inputs_and_sensor_depth_are_refused():
    p = default_parameters()
    p.update(use_depth=False, depth_source='model')
    with pytest.raises(ConfigError, match="model_inputs 'rgbd' .*default.* use_depth is false"):
        check_parameters(p)  # base64's default sends depth
    p.update(model_inputs='rgb_spatial')
    check_parameters(p)
    p.update(depth_source='sensor')
    with pytest.raises(ConfigError, match="depth_source 'sensor' needs the depth image"):
        check_parameters(p)
    p.update(depth_source='fused', backend='openai', model_inputs='')
    check_parameters(p)  # openai never sends depth; fused then uses the model's depth


def test_backend_options_carry_the_new_settings():
    p = default_parameters()
    p.update(model_inputs='rgb', max_tokens=123, temperature=-1.0, coordinates='auto')
    assert backend_options(p)['inputs'] == 'rgb'
    p['backend'] = 'openai'
    o = backend_options(p)
    assert (o['max_tokens'], o['max_tokens_field'], o['temperature']) == (123, 'max_tokens', -1.0)
    assert pipeline_options(p, 'model').coordinates == 'auto'
