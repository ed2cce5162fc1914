"""Image conversion (the cv_bridge replacement), PNG/data URLs, transforms, sync, annotation."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from robotracer_ros import images
from robotracer_ros.annotate import draw_trace
from robotracer_ros.sync import ApproximateSynchronizer
from robotracer_ros.transforms import (
    apply_transform,
    invert_transform,
    matrix_to_quaternion,
    quaternion_to_matrix,
    transform_from_translation_quaternion,
    validate_transform,
)

rng = np.random.default_rng(0)
SAMPLES = {
    'rgb8': rng.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    'bgr8': rng.integers(0, 256, (5, 7, 3), dtype=np.uint8),
    'rgba8': rng.integers(0, 256, (5, 7, 4), dtype=np.uint8),
    'mono8': rng.integers(0, 256, (5, 7), dtype=np.uint8),
    '16UC1': rng.integers(0, 65536, (5, 7), dtype=np.uint16),
    '32FC1': rng.random((5, 7), dtype=np.float32),
}


@pytest.mark.parametrize('encoding', list(SAMPLES))
def test_image_fields_round_trip_for_every_encoding(encoding):
    arr = SAMPLES[encoding]
    f = images.numpy_to_image_fields(arr, encoding)
    assert (f.height, f.width) == arr.shape[:2]
    back = images.image_to_numpy(f.encoding, f.height, f.width, f.step, f.data)
    np.testing.assert_array_equal(back, arr)


@pytest.mark.parametrize('encoding', ['rgb8', '16UC1', '32FC1'])
def test_padded_rows_are_handled(encoding):
    arr = SAMPLES[encoding]
    f = images.numpy_to_image_fields(arr, encoding)
    pad = 5
    rows = [f.data[r * f.step : (r + 1) * f.step] + b'\xee' * pad for r in range(f.height)]
    back = images.image_to_numpy(encoding, f.height, f.width, f.step + pad, b''.join(rows))
    np.testing.assert_array_equal(back, arr)


def test_big_endian_16uc1_is_decoded():
    arr = np.array([[1, 256, 1000]], dtype=np.uint16)
    back = images.image_to_numpy('16UC1', 1, 3, 6, arr.astype('>u2').tobytes(), is_bigendian=1)
    np.testing.assert_array_equal(back, arr)
    assert back.dtype == np.uint16


def test_bad_image_messages_are_rejected_with_reasons():
    with pytest.raises(ValueError, match="unsupported image encoding 'yuv422'"):
        images.image_to_numpy('yuv422', 2, 2, 4, b'\0' * 8)
    with pytest.raises(ValueError, match='data has 10 bytes, expected step\\*height = 12'):
        images.image_to_numpy('rgb8', 2, 2, 6, b'\0' * 10)
    with pytest.raises(ValueError, match='step 5 is smaller'):
        images.image_to_numpy('rgb8', 2, 2, 5, b'\0' * 12)
    with pytest.raises(ValueError, match='needs 3 channel'):
        images.numpy_to_image_fields(np.zeros((2, 2), np.uint8), 'rgb8')
    with pytest.raises(ValueError, match='needs dtype uint16'):
        images.numpy_to_image_fields(np.zeros((2, 2), np.float32), '16UC1')


def test_colour_conversions_to_rgb():
    bgr = SAMPLES['bgr8']
    np.testing.assert_array_equal(images.to_rgb(bgr, 'bgr8'), bgr[..., ::-1])
    np.testing.assert_array_equal(
        images.to_rgb(SAMPLES['rgba8'], 'rgba8'), SAMPLES['rgba8'][..., :3]
    )
    assert images.to_rgb(SAMPLES['mono8'], 'mono8').shape == (5, 7, 3)
    with pytest.raises(ValueError, match='not a colour encoding'):
        images.to_rgb(SAMPLES['16UC1'], '16UC1')


@pytest.mark.parametrize(
    ('shape', 'dtype'),
    [
        ((480, 640, 3), np.uint8),  # 34 scanlines per stored block, a short last block
        ((480, 640), np.uint16),
        ((720, 1280, 3), np.uint8),
        ((68, 640, 3), np.uint8),  # whole blocks only: the last full one is final
        ((1, 1, 3), np.uint8),
        ((35, 641), np.uint8),
        ((3, 22000, 3), np.uint8),  # a scanline longer than a stored block: zlib's writer
    ],
)
def test_the_fast_uncompressed_png_decodes_to_exactly_the_pixels(shape, dtype):
    """PIL (what the authors' servers open images with) and OpenCV read the same pixels back,
    and the file is a valid PNG (PIL checks every chunk CRC, zlib the Adler-32)."""
    from PIL import Image

    arr = np.random.default_rng(3).integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    buf = images.encode_png_buffer(arr)
    data = images.encode_png(arr, compression=0)
    assert bytes(buf) == data and buf.readonly
    # into a reused buffer (dirty from a previous frame): the same file; one too small is left
    scratch = np.full(len(data) + 100, 0xAB, np.uint8)
    assert bytes(images.encode_png_buffer(arr, scratch)) == data
    line = 1 + arr[0].size * arr.itemsize
    if line <= 65535:  # (a longer scanline goes through zlib's own writer)
        view = images.encode_png_buffer(arr, scratch)
        assert np.shares_memory(np.frombuffer(view, np.uint8), scratch)
    small = np.zeros(len(data) // 2, np.uint8)
    assert bytes(images.encode_png_buffer(arr, small)) == data and not small.any()
    im = Image.open(io.BytesIO(data))
    im.load()
    assert im.mode == {np.uint16: 'I;16', np.uint8: 'RGB' if len(shape) == 3 else 'L'}[dtype]
    np.testing.assert_array_equal(np.array(im), arr)
    np.testing.assert_array_equal(images.decode_image(data), arr)
    if len(shape) == 3:
        np.testing.assert_array_equal(np.array(im.convert('RGB')), arr)  # Qwen3VL.py's way
    # a strided view (a crop) encodes as its pixels
    crop = arr[::2, 1:] if shape[1] > 1 else arr[::2]
    np.testing.assert_array_equal(images.decode_image(bytes(images.encode_png_buffer(crop))), crop)


@pytest.mark.parametrize('compression', [0, 1, 9])
def test_png_round_trips_keep_colour_order_and_16_bits(compression):
    from PIL import Image

    rgb = SAMPLES['rgb8']
    for arr in (rgb, SAMPLES['16UC1'], SAMPLES['mono8']):
        data = images.encode_png(arr, compression=compression)
        back = images.decode_image(data)
        assert back.dtype == arr.dtype
        np.testing.assert_array_equal(back, arr)
        np.testing.assert_array_equal(np.array(Image.open(io.BytesIO(data))), arr)  # PIL too
    with pytest.raises(ValueError, match='compression must be 0-9'):
        images.encode_png(rgb, compression=10)
    mime, data = images.from_data_url(images.to_data_url(images.encode_png(rgb)))
    assert mime == 'image/png'
    np.testing.assert_array_equal(images.decode_image(data), rgb)
    with pytest.raises(ValueError, match='not a base64 data URL'):
        images.from_data_url('http://example.com/x.png')
    with pytest.raises(ValueError, match='not a PNG/JPEG'):
        images.decode_image(b'not an image')


def test_b64_text_is_the_standard_base64_the_authors_servers_decode():
    import base64

    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 3, 4, 57, 1000, 1_540_321):  # every padding case and a full frame
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        want = base64.b64encode(data).decode('utf-8')  # the authors' encode_image
        assert images.b64_text(data) == want
        assert images.b64_text(memoryview(data)) == want
        assert base64.b64decode(images.b64_text(data)) == data


def test_depth_scaling_between_metres_and_millimetres():
    m = np.array([[1.2345, np.nan, 0.0, 70.0]], dtype=np.float32)
    mm = images.depth_to_millimetres(m)
    assert mm.tolist() == [[1234, 0, 0, 65535]]  # NaN/0 -> 0 (no data), clipped at 65.535 m
    back = images.depth_to_metres(mm)
    assert back[0, 0] == pytest.approx(1.234)
    assert np.isnan(back[0, 1]) and np.isnan(back[0, 2])
    assert images.depth_scale_for('16UC1') == 0.001 and images.depth_scale_for('32FC1') == 1.0


def test_read_depth_refuses_8_bit_png(tmp_path):
    p = tmp_path / 'd.png'
    p.write_bytes(images.encode_png(np.zeros((4, 4), np.uint8)))
    with pytest.raises(ValueError, match='8-bit PNG cannot hold metric depth'):
        images.read_depth(str(p))
    q = tmp_path / 'd16.png'
    q.write_bytes(images.encode_png(np.full((4, 4), 1500, np.uint16)))
    assert images.read_depth(str(q))[0, 0] == 1500


# ------------------------------------------------------------------ transforms


def test_quaternion_rotation_and_translation_by_hand():
    s = np.sqrt(0.5)
    T = transform_from_translation_quaternion([1.0, 2.0, 3.0], [0.0, 0.0, s, s])  # 90 deg about z
    np.testing.assert_allclose(apply_transform(T, [[1.0, 0.0, 0.0]]), [[1.0, 3.0, 3.0]])
    np.testing.assert_allclose(
        apply_transform(invert_transform(T), [[1.0, 3.0, 3.0]]), [[1.0, 0.0, 0.0]], atol=1e-12
    )


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(lambda q: np.linalg.norm(q) > 0.1)
)
def test_quaternion_matrix_round_trip(q):
    R = quaternion_to_matrix(q)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(quaternion_to_matrix(matrix_to_quaternion(R)), R, atol=1e-9)
    T = transform_from_translation_quaternion([0.1, -0.2, 0.3], q)
    np.testing.assert_allclose(T @ invert_transform(T), np.eye(4), atol=1e-9)


def test_bad_transforms_are_rejected():
    with pytest.raises(ValueError, match='zero norm'):
        quaternion_to_matrix([0, 0, 0, 0])
    with pytest.raises(ValueError, match='not a proper rotation'):
        validate_transform(np.diag([1.0, 1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match='4x4'):
        validate_transform(np.eye(3))


# ------------------------------------------------------------------ synchroniser


def test_synchroniser_matches_jittered_streams_within_the_slop():
    sync = ApproximateSynchronizer(['color', 'depth', 'info'], slop_s=0.01)
    matched = []
    for i in range(20):
        t = i / 30.0
        for name, jitter in (('depth', 0.004), ('color', 0.0), ('info', -0.002)):
            m = sync.add(name, t + jitter, (name, i))
            if m:
                matched.append(m)
    assert len(matched) == 20
    for i, m in enumerate(matched):
        assert {v[1][1] for v in m.values()} == {i}  # each set holds the same frame index


def test_synchroniser_emits_nothing_beyond_the_slop_or_with_a_missing_stream():
    sync = ApproximateSynchronizer(['color', 'depth', 'info'], slop_s=0.005)
    for i in range(10):
        assert sync.add('color', i * 0.1, i) is None
        assert sync.add('depth', i * 0.1 + 0.02, i) is None  # 20 ms apart > 5 ms slop
    assert sync.missing() == ['info']
    assert sync.matched == 0


def test_synchroniser_drops_unmatched_old_messages():
    sync = ApproximateSynchronizer(['a', 'b'], slop_s=0.01, queue_size=3)
    sync.add('a', 0.0, 'old')
    assert sync.add('b', 5.0, 'b5') is None
    m = sync.add('a', 5.001, 'a5')
    assert m == {'a': (5.001, 'a5'), 'b': (5.0, 'b5')}


# ------------------------------------------------------------------ annotation


def test_trace_is_drawn_start_green_end_red_and_the_input_is_untouched():
    img = np.full((240, 320, 3), 128, np.uint8)
    px = np.array([[40.0, 120.0], [160.0, 60.0], [280.0, 120.0]])
    out = draw_trace(img, px, label='move the cup')
    assert np.all(img == 128)
    r, g, b = out[120, 40].astype(int)
    assert g > 150 and r < 60  # start: green
    r, g, b = out[120, 280].astype(int)
    assert r > 180 and g < 60  # end: red
    assert np.all(out[230, 160] == 128)  # far from the trace: untouched
    # a hollow circle for an invalid point, no crash on NaN pixels
    draw_trace(img, np.array([[10.0, 10.0], [np.nan, np.nan]]), valid=np.array([False, True]))
