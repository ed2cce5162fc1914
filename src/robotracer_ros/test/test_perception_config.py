"""config/perception.yaml matches the node's declared parameters (no drift, every key there)."""

from __future__ import annotations

import pathlib

import yaml

from robotracer_ros.perception_config import PARAMETERS, PARAMETERS_BY_NAME

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
