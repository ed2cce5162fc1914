"""The perception node's configuration, ROS-free: its parameter table and what it builds from it.

:data:`PARAMETERS` is the node's parameter table (declared by
:func:`robotracer_ros.parameters.declare_all`; ``config/perception.yaml`` documents the same
names); :func:`backend_options`, :func:`pipeline_options` and :func:`static_transform` turn the
values into the backend's keyword arguments, the lifting/filtering options and the static
camera transform.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robotracer_ros.backends import BACKENDS
from robotracer_ros.backends.robotracer_http import DEFAULT_INPUTS, INPUT_PARTS, INPUTS
from robotracer_ros.filtering import FilterOptions
from robotracer_ros.lifting import DEPTH_SOURCES, LiftOptions
from robotracer_ros.parameters import ConfigError, Param, by_name
from robotracer_ros.parsing import COORDINATES
from robotracer_ros.pipeline import PipelineOptions
from robotracer_ros.transforms import transform_from_translation_quaternion

PARAMETERS: list[Param] = [
    Param(
        'color_topic', '/camera/camera/color/image_raw', 'colour image topic (sensor_msgs/Image)'
    ),
    Param(
        'depth_topic',
        '/camera/camera/aligned_depth_to_color/image_raw',
        'depth image topic registered to colour (16UC1 mm or 32FC1 m)',
    ),
    Param('camera_info_topic', '/camera/camera/color/camera_info', 'colour camera_info topic'),
    Param(
        'use_depth',
        True,
        "subscribe to the depth image (false: no depth topic at all; the model's own depth)",
    ),
    Param(
        'image_reliability',
        'reliable',
        'image/camera_info subscription reliability; match the publisher (reliable | best_effort)',
        choices=('reliable', 'best_effort'),
    ),
    Param('image_depth', 5, 'image/camera_info subscription queue depth, messages', 1, 100),
    Param(
        'sync_slop_s',
        0.02,
        'largest stamp spread of a synchronised colour/depth/info set, s',
        0.0,
        1.0,
    ),
    Param('sync_queue_size', 10, 'messages kept per stream for synchronisation', 1, 100),
    Param(
        'max_frame_age_s',
        1.0,
        'frames older than this are stale (0 = no limit), s',
        0.0,
        3600.0,
        read_only=False,
    ),
    Param(
        'fresh_frame_timeout_s',
        2.0,
        'a request with not_before: longest wait for a frame taken at or after it, s',
        0.0,
        60.0,
    ),
    Param('camera_frame', '', "optical frame of the camera ('' = the colour image's frame_id)"),
    Param('target_frame', '', "frame of the returned points ('' = the camera frame)"),
    Param('use_tf2', True, 'look transforms up with tf2_ros when it is importable'),
    Param('tf_timeout_s', 0.2, 'how long to wait for a tf2 transform, s', 0.0, 10.0),
    Param(
        'static_transform.parent_frame',
        '',
        "without tf2: the frame the static transform maps into ('' = none)",
    ),
    Param(
        'static_transform.child_frame',
        '',
        "without tf2: the static transform's child frame ('' = the camera frame)",
    ),
    Param('static_transform.xyz', [0.0, 0.0, 0.0], 'child frame origin in the parent frame, m'),
    Param(
        'static_transform.xyzw',
        [0.0, 0.0, 0.0, 1.0],
        'child frame orientation in the parent frame, quaternion (x, y, z, w)',
    ),
    Param(
        'backend',
        'robotracer_http',
        'model backend: robotracer_http | openai | transformers | replay',
        choices=tuple(BACKENDS),
    ),
    Param('model_url', 'http://127.0.0.1:25547', 'server URL (robotracer_http, openai)'),
    Param('model_name', '', "model name ('' = backend default); transformers: checkpoint folder"),
    Param(
        'transport',
        'base64',
        "robotracer_http request form: base64 (the authors' released servers) | paths "
        "(RoboTracer's spatial-encoder client: files in shared_dir)",
        choices=('base64', 'paths'),
    ),
    Param(
        'model_inputs',
        '',
        'robotracer_http: what the model is given: rgbd_intrinsics | rgbd | rgb_intrinsics | '
        "rgb_spatial | rgb ('' = the transport's default: base64 rgbd, paths rgbd_intrinsics)",
        choices=('', *INPUTS),
    ),
    Param('shared_dir', '', "robotracer_http paths form: folder the server reads ('' = /tmp)"),
    Param(
        'coordinates',
        'normalized_1000',
        "the model's x, y convention: normalized_1000 | normalized_1 | pixels | auto (0-1000, "
        'reading an all-0-1 answer as 0-1 with a note)',
        choices=COORDINATES,
    ),
    Param('api_key_env', 'OPENAI_API_KEY', 'openai: environment variable holding the API key'),
    Param(
        'prompt_style',
        '',
        "openai/transformers prompt: robotracer | json ('' = backend default)",
        choices=('', 'robotracer', 'json'),
    ),
    Param(
        'png_compression',
        0,
        'zlib level of the PNGs sent to HTTP backends (0 = uncompressed, fastest)',
        0,
        9,
    ),
    Param('request_timeout_s', 60.0, 'per-attempt model request timeout, s', 0.1, 3600.0),
    Param(
        'request_retries', 1, 'extra attempts on connection errors, timeouts, HTTP 429/5xx', 0, 10
    ),
    Param('device', 'cpu', 'transformers: torch device (cpu, cuda, cuda:1, ...)'),
    Param(
        'dtype',
        'auto',
        'transformers: auto | float32 | float16 | bfloat16',
        choices=('auto', 'float32', 'float16', 'bfloat16'),
    ),
    Param(
        'max_new_tokens',
        1024,
        'transformers: answer token limit (the backend default; a model that reasons first '
        'needs more: transformers_local.yaml sets 2048)',
        1,
        8192,
    ),
    Param(
        'max_tokens',
        8192,
        'openai: completion token limit, reasoning included (0 = not sent: the server default)',
        0,
        1_000_000,
    ),
    Param(
        'max_tokens_field',
        'max_tokens',
        "openai: the request field of the limit: max_tokens | max_completion_tokens (OpenAI's "
        'reasoning models)',
        choices=('max_tokens', 'max_completion_tokens'),
    ),
    Param('temperature', 0.0, 'openai: sampling temperature (negative = not sent)', -1.0, 2.0),
    Param('replay_path', '', 'replay: JSONL file of recorded answers'),
    Param(
        'depth_source',
        'fused',
        'default depth per point: model | sensor | fused',
        choices=DEPTH_SOURCES,
        read_only=False,
    ),
    Param('depth_window_px', 2, 'half-size of the sensor depth window, depth pixels', 0, 50),
    Param('min_depth_m', 0.05, 'nearest valid depth, m', 0.0, 100.0),
    Param('max_depth_m', 10.0, 'farthest valid depth, m', 0.01, 100.0),
    Param('fuse_threshold_m', 0.05, 'model/sensor depth disagreement threshold, m', 0.0, 10.0),
    Param(
        'fuse_threshold_rel',
        0.03,
        'relative disagreement threshold (fraction of sensor depth)',
        0.0,
        1.0,
    ),
    Param(
        'filter.enabled',
        True,
        'drop points the camera cannot see (depth outside min-max) and single spikes off the path',
    ),
    Param(
        'filter.merge_distance_m',
        0.0,
        'merge consecutive points closer than this (0 = off: real answers repeat points), m',
        0.0,
        1.0,
    ),
    Param(
        'filter.spike_min_m',
        0.5,
        "an interior point is a spike only if farther than this from its neighbours' segment, m",
        0.01,
        100.0,
    ),
    Param(
        'filter.spike_factor',
        3.0,
        "...and farther than this many times that segment's length",
        0.1,
        100.0,
    ),
    Param(
        'filter.max_step_m',
        0.0,
        'a longer step makes the trace invalid (0 = no limit: real answers have legs over 1 m), m',
        0.0,
        100.0,
    ),
    Param(
        'filter.resample_spacing_m',
        0.0,
        'resample the trace to this spacing (0 = off), m',
        0.0,
        10.0,
    ),
    Param('filter.min_points', 2, 'fewer usable points make the trace invalid', 1, 100),
    Param('service_name', '/robotracer/get_trace', 'GetTrace service name'),
    Param('trace_topic', '/robotracer/trace', 'SpatialTrace output topic (latched)'),
    Param('markers_topic', '/robotracer/trace_markers', 'MarkerArray output topic (latched)'),
    Param('annotated_image_topic', '/robotracer/annotated_image', 'trace drawn on the frame'),
    Param('publish_annotated_image', True, 'publish the annotated image'),
    Param('marker_scale_m', 0.02, 'sphere diameter of the trace markers, m', 0.001, 1.0),
]
PARAMETERS_BY_NAME = by_name(PARAMETERS)
#: parameters a running node accepts changes to
DYNAMIC = tuple(p.name for p in PARAMETERS if not p.read_only)
#: string parameters with a fixed set of values
CHOICES = {p.name: p.choices for p in PARAMETERS if p.choices is not None}


def check_parameters(p: dict[str, Any]) -> None:
    """Rules between parameters (each value was checked on its own at declaration).

    Raises:
        ConfigError: naming the parameters.
    """
    if p['min_depth_m'] >= p['max_depth_m']:
        raise ConfigError('min_depth_m must be smaller than max_depth_m')
    if not p['use_depth']:
        if p['depth_source'] == 'sensor':
            raise ConfigError(
                "depth_source 'sensor' needs the depth image, but use_depth is false; use "
                "depth_source 'model' (or 'fused', which then uses the model's depth)"
            )
        if p['backend'] == 'robotracer_http':
            inputs = p['model_inputs'] or DEFAULT_INPUTS[p['transport']]
            if INPUT_PARTS[inputs][0]:
                raise ConfigError(
                    f'model_inputs {inputs!r}'
                    + (' (the default of this transport)' if not p['model_inputs'] else '')
                    + ' sends the depth image to the model, but use_depth is false: choose '
                    'rgb_intrinsics, rgb_spatial or rgb'
                )


def backend_options(p: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``make_backend`` for the configured backend.

    Raises:
        ConfigError: a backend that needs a parameter left empty.
    """
    name = p['backend']
    if name == 'robotracer_http':
        return {
            'url': p['model_url'],
            'model': p['model_name'],
            'transport': p['transport'],
            'inputs': p['model_inputs'],
            'shared_dir': p['shared_dir'],
            'timeout_s': p['request_timeout_s'],
            'retries': p['request_retries'],
            'png_compression': p['png_compression'],
        }
    if name == 'openai':
        return {
            'url': p['model_url'],
            'model': p['model_name'],
            'api_key_env': p['api_key_env'],
            'prompt_style': p['prompt_style'],
            'timeout_s': p['request_timeout_s'],
            'retries': p['request_retries'],
            'png_compression': p['png_compression'],
            'max_tokens': p['max_tokens'],
            'max_tokens_field': p['max_tokens_field'],
            'temperature': p['temperature'],
        }
    if name == 'transformers':
        if not p['model_name']:
            raise ConfigError('backend transformers needs model_name = a checkpoint folder')
        return {
            'model_path': p['model_name'],
            'device': p['device'],
            'dtype': p['dtype'],
            'prompt_style': p['prompt_style'],
            'max_new_tokens': p['max_new_tokens'],
        }
    if not p['replay_path']:
        raise ConfigError('backend replay needs replay_path = a JSONL file')
    return {'path': p['replay_path']}


def pipeline_options(p: dict[str, Any], depth_source: str) -> PipelineOptions:
    """Lifting and filtering options from the parameters, with ``depth_source``."""
    lift = LiftOptions(
        depth_source=depth_source,
        window_px=p['depth_window_px'],
        min_depth_m=p['min_depth_m'],
        max_depth_m=p['max_depth_m'],
        fuse_threshold_m=p['fuse_threshold_m'],
        fuse_threshold_rel=p['fuse_threshold_rel'],
    )
    filt = None
    if p['filter.enabled']:
        filt = FilterOptions(
            min_depth_m=p['min_depth_m'],
            max_depth_m=p['max_depth_m'],
            merge_distance_m=p['filter.merge_distance_m'],
            spike_min_m=p['filter.spike_min_m'],
            spike_factor=p['filter.spike_factor'],
            max_step_m=p['filter.max_step_m'] or None,
            resample_spacing_m=p['filter.resample_spacing_m'] or None,
            min_points=p['filter.min_points'],
        )
    return PipelineOptions(lift=lift, filter=filt, coordinates=p['coordinates'])


def default_parameters() -> dict[str, Any]:
    """``{name: default}`` of every perception-node parameter.

    What a node started without a parameter file runs with.
    """
    return {p.name: p.default for p in PARAMETERS}


def default_pipeline_options(depth_source: str | None = None) -> PipelineOptions:
    """The lifting and filtering a perception node with default parameters applies.

    ``robotracer lift --filter`` and ``robotracer query`` use this, so they filter exactly as
    the node does.

    Args:
        depth_source: the depth source (None: the node's default, ``fused``).

    Returns:
        The options.
    """
    p = default_parameters()
    return pipeline_options(p, depth_source or p['depth_source'])


def static_transform(p: dict[str, Any]) -> tuple[str, str, np.ndarray] | None:
    """(parent, child, parent_T_child) of the configured static transform, or None.

    Raises:
        ConfigError: a malformed transform.
    """
    if not p['static_transform.parent_frame']:
        return None
    try:
        T = transform_from_translation_quaternion(
            p['static_transform.xyz'], p['static_transform.xyzw']
        )
    except ValueError as exc:
        raise ConfigError(f'static_transform: {exc}') from exc
    return p['static_transform.parent_frame'], p['static_transform.child_frame'], T
