"""make_backend: every backend by name, options checked before any request."""

from __future__ import annotations

import pytest

from robotracer_ros.backends import BACKENDS, BackendError, make_backend


def test_unknown_backends_and_options_are_refused_with_what_is_accepted():
    with pytest.raises(BackendError, match="unknown backend 'gemini'"):
        make_backend('gemini')
    with pytest.raises(BackendError, match='does not take option.*it takes: url') as info:
        make_backend('openai', transport='paths')
    assert info.value.kind == 'config'


def test_empty_options_are_left_at_the_backends_default():
    b = make_backend('robotracer_http', url='', inputs='', shared_dir=None, model='')
    assert b.url == 'http://127.0.0.1:25547/query' and b.inputs == 'rgbd'
    assert b.model_id == 'robotracer_http:RoboTracer'


def test_every_backend_is_listed():
    assert set(BACKENDS) == {'robotracer_http', 'openai', 'transformers', 'replay'}
