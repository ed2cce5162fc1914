"""The transformers backend against tiny vision-language models built offline in the test.

- **Qwen2.5-VL and Qwen3-VL** (``Qwen2_5_VLConfig`` / ``Qwen3VLConfig`` with tiny sizes, random
  weights, a byte-level BPE tokenizer trained in-process with the Qwen special tokens, the Qwen
  chat format, ``Qwen2VLImageProcessorPil``), saved with ``save_pretrained`` like a real
  checkpoint (a ``video_preprocessor_config.json`` too) and loaded back by the backend through
  ``AutoModelForImageTextToText`` + the checkpoint's processor class: real image
  preprocessing, image-token expansion and M-RoPE, a few greedy tokens generated. They keep
  their random weights (nothing is trained): the answer is arbitrary text, so these tests check
  the loading, the processor path, the token limit and that the service refuses a non-trace;
  the shipped ``config/models/transformers_local.yaml`` is loaded through the perception node
  with one of them.
- **LLaVA** (CLIP vision tower + 2-layer Llama), fine-tuned to answer one instruction with a
  known trace: the backend's answer, dtype, load-once behaviour and the service path.

No torchvision here (the local CPU torch wheel comes without it): the Qwen processors load
without their video processor (``load_processor``). Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import numpy as np
import pytest

from robotracer_ros.backends import BackendError, make_backend
from robotracer_ros.prompts import robotracer_prompt
from robotracer_ros.trace_service import Frame, TraceRequest, TraceService

pytestmark = pytest.mark.slow  # builds and fine-tunes the tiny model: ~10-20 s on 2 cores

HINT = 'the local-model extra is not installed: make setup EXTRAS=local-model'
torch = pytest.importorskip('torch', reason=HINT)
transformers = pytest.importorskip('transformers', reason=HINT)
pytest.importorskip('accelerate', reason=HINT)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))
INSTRUCTION = 'put the cup on the plate'
ANSWER = '[(500, 500, 1.0), (600, 450, 0.95), (700, 400, 0.9)]'


def build_tiny_vlm(folder: str) -> None:
    from PIL import Image
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        CLIPImageProcessor,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    specials = ['<pad>', '<s>', '</s>', '<unk>', '<image>']
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([robotracer_prompt(INSTRUCTION), 'user: assistant: '] * 5, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token='<unk>',
        eos_token='</s>',
        bos_token='<s>',
        pad_token='<pad>',
    )
    fast.add_special_tokens({'additional_special_tokens': ['<image>']})
    template = (
        "{% for m in messages %}{{ m['role'] }}: {% for c in m['content'] %}"
        "{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}\n"
        '{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}'
    )
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={'shortest_edge': 28}, crop_size={'height': 28, 'width': 28}
        ),
        tokenizer=fast,
        patch_size=14,
        vision_feature_select_strategy='default',
        chat_template=template,
        num_additional_image_tokens=1,
    )
    config = LlavaConfig(
        text_config=dict(
            model_type='llama',
            vocab_size=len(fast),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            bos_token_id=fast.bos_token_id,
            eos_token_id=fast.eos_token_id,
            pad_token_id=fast.pad_token_id,
        ),
        vision_config=dict(
            model_type='clip_vision_model',
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            image_size=28,
            patch_size=14,
            projection_dim=32,
        ),
        image_token_id=fast.convert_tokens_to_ids('<image>'),
        vision_feature_select_strategy='default',
        vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    # teach it one answer (teacher forcing on prompt + answer; loss on the answer only)
    image = Image.fromarray(np.zeros((48, 64, 3), np.uint8))
    messages = [
        {
            'role': 'user',
            'content': [
                {'type': 'image'},
                {'type': 'text', 'text': robotracer_prompt(INSTRUCTION)},
            ],
        }
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=[text], images=[image], return_tensors='pt')
    answer_ids = torch.tensor([fast(ANSWER + '</s>', add_special_tokens=False).input_ids])
    n_prompt = inputs['input_ids'].shape[1]
    inputs['input_ids'] = torch.cat([inputs['input_ids'], answer_ids], dim=1)
    inputs['attention_mask'] = torch.ones_like(inputs['input_ids'])
    labels = inputs['input_ids'].clone()
    labels[:, :n_prompt] = -100
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(300):
        loss = model(**inputs, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.005:
            break
    model.eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


QWEN_SPECIALS = [
    '<|endoftext|>',
    '<|im_start|>',
    '<|im_end|>',
    '<|vision_start|>',
    '<|vision_end|>',
    '<|image_pad|>',
    '<|video_pad|>',
]
# Qwen's chat format (the real templates also accept {'type': 'image'} content items)
QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    '{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}'
)


def build_tiny_qwen_vl(folder: str, arch: str) -> None:
    """A tiny random Qwen2.5-VL (``arch='qwen2_5_vl'``) or Qwen3-VL checkpoint in ``folder``.

    Built from the real config classes (2 text layers of width 64, 2 vision blocks of width 32,
    the real patch sizes and merge size), saved as a checkpoint is shipped: ~5 s on 2 cores.
    """
    import json

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    from robotracer_ros.backends.transformers_local import image_only

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=QWEN_SPECIALS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(
        [robotracer_prompt(INSTRUCTION), 'user assistant', ANSWER] * 5, trainer
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token='<|im_end|>', pad_token='<|endoftext|>'
    )
    ids = {t: fast.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
    text = dict(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        eos_token_id=ids['<|im_end|>'],
        pad_token_id=ids['<|endoftext|>'],
    )
    tokens = dict(
        image_token_id=ids['<|image_pad|>'],
        video_token_id=ids['<|video_pad|>'],
        vision_start_token_id=ids['<|vision_start|>'],
        vision_end_token_id=ids['<|vision_end|>'],
    )
    if arch == 'qwen2_5_vl':
        prefix, patch = 'Qwen2_5_VL', 14
        # head_dim 16: the three M-RoPE sections (time, height, width) cover its 8 frequencies
        text['rope_parameters'] = {'rope_type': 'default', 'mrope_section': [2, 3, 3]}
        text['bos_token_id'] = None
        vision = dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=64,
            patch_size=patch,
            window_size=56,
            fullatt_block_indexes=[1],
        )
    else:
        prefix, patch = 'Qwen3VL', 16
        text['head_dim'] = 16
        text['rope_parameters'] = {
            'rope_type': 'default',
            'mrope_section': [4, 2, 2],
            'mrope_interleaved': True,
        }
        vision = dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=64,
            patch_size=patch,
            num_position_embeddings=64,
            deepstack_visual_indexes=[0],
        )
    config = getattr(transformers, f'{prefix}Config')(
        text_config=text, vision_config=vision, **tokens
    )
    torch.manual_seed(0)
    model = getattr(transformers, f'{prefix}ForConditionalGeneration')(config)
    Processor = getattr(transformers, f'{prefix}Processor')
    unit = patch * 2  # one merged token covers 2x2 patches
    images = Qwen2VLImageProcessorPil(
        size={'shortest_edge': unit * unit * 4, 'longest_edge': unit * unit * 16},
        patch_size=patch,
        merge_size=2,
        temporal_patch_size=2,
    )
    # the image-only twin of the real processor class (same name: it saves as the real one)
    processor = image_only(Processor)(
        image_processor=images, tokenizer=fast, chat_template=QWEN_TEMPLATE
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    # a shipped Qwen-VL checkpoint also has a video processor config (torchvision-only in
    # transformers 5): the backend must load without it
    with open(os.path.join(folder, 'video_preprocessor_config.json'), 'w') as f:
        json.dump({'video_processor_type': 'Qwen2VLVideoProcessor', 'patch_size': patch}, f)


@pytest.fixture(scope='module', params=['qwen2_5_vl', 'qwen3_vl'])
def qwen_checkpoint(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f'tiny-{request.param}')
    build_tiny_qwen_vl(str(folder), request.param)
    return folder


def test_qwen_vl_loads_through_its_processor_and_generates(qwen_checkpoint):
    backend = make_backend(
        'transformers',
        model_path=str(qwen_checkpoint),
        device='cpu',
        dtype='float32',
        max_new_tokens=8,
    )
    arch = 'Qwen3VL' if 'qwen3' in qwen_checkpoint.name else 'Qwen2_5_VL'
    assert type(backend.net).__name__ == f'{arch}ForConditionalGeneration'
    assert type(backend.processor).__name__ == f'{arch}Processor'
    assert type(backend.processor.image_processor).__name__ == 'Qwen2VLImageProcessorPil'
    if importlib.util.find_spec('torchvision') is None:
        assert backend.processor_kind == 'image-only'
    first = backend(RGB, None, K, INSTRUCTION)
    assert first.model_id == f'transformers:{qwen_checkpoint.name}' and first.elapsed_s > 0
    # random weights: some text (the new tokens only, never the prompt echoed back)
    assert isinstance(first.text, str) and INSTRUCTION not in first.text
    assert backend(RGB, None, K, INSTRUCTION).text == first.text  # greedy: deterministic
    # a random answer is no trace: the service says so instead of inventing points
    service = TraceService(backend, max_frame_age_s=0)
    frame = Frame(RGB, None, None, K, 0.0, 'camera_color_optical_frame')
    out = service.handle(TraceRequest(INSTRUCTION, depth_source='model'), frame)
    assert not out.success and out.error_msg


def test_the_processor_expands_the_image_and_the_token_limit_holds(qwen_checkpoint):
    backend = make_backend(
        'transformers', model_path=str(qwen_checkpoint), dtype='float32', max_new_tokens=2
    )
    inputs = backend._inputs(RGB, robotracer_prompt(INSTRUCTION))
    # the real processor resized 640x480 within its pixel bounds and expanded the one image
    # placeholder to (grid / merge^2) image tokens
    grid = inputs['image_grid_thw'][0]
    n_image = int((inputs['input_ids'] == backend.processor.image_token_id).sum())
    assert n_image == int(grid.prod()) // 4 > 1
    with torch.inference_mode():
        out = backend.net.generate(**inputs, max_new_tokens=2, do_sample=False)
    assert out.shape[1] - inputs['input_ids'].shape[1] <= 2


def test_the_shipped_model_config_sets_generation_limits_and_gpu_placement():
    import yaml

    path = os.path.join(ROOT, 'config', 'models', 'transformers_local.yaml')
    with open(path) as f:
        params = yaml.safe_load(f)['perception_node']['ros__parameters']
    assert params['backend'] == 'transformers'
    assert params['device'].startswith('cuda') and params['dtype'] == 'bfloat16'
    assert params['max_new_tokens'] >= 1024  # 256 cut real answers short


def test_the_shipped_model_config_builds_the_backend_in_the_perception_node(qwen_checkpoint):
    """config/models/transformers_local.yaml as launch gives it (``model_config:=``): a params
    file over the node's parameters, ``model_name``/``device`` overridden on the command line."""
    pytest.importorskip('rclpy')
    import rclpy

    from robotracer_ros.nodes.perception_node import PerceptionNode

    config = os.path.join(ROOT, 'config')
    args = ['--ros-args', '--params-file', os.path.join(config, 'perception.yaml')]
    args += ['--params-file', os.path.join(config, 'models', 'transformers_local.yaml')]
    args += ['-p', f'model_name:={qwen_checkpoint}', '-p', 'device:=cpu']
    ctx = rclpy.Context()
    rclpy.init(args=args, context=ctx)
    node = None
    try:
        node = PerceptionNode(context=ctx)
        backend = node.backend
        # the file's settings reached the backend
        assert type(backend).__name__ == 'TransformersBackend'
        assert backend.prompt_style == 'json' and backend.max_new_tokens == 2048
        assert next(backend.net.parameters()).dtype == torch.bfloat16
        assert backend.net.device.type == 'cpu'
        arch = 'Qwen3VL' if 'qwen3' in qwen_checkpoint.name else 'Qwen2_5_VL'
        assert type(backend.processor).__name__ == f'{arch}Processor'
        # random weights rarely stop: 2048 greedy steps on 2 CPU cores only cost time here
        backend.max_new_tokens = 8
        answer = backend(RGB, None, K, INSTRUCTION)  # chat template, image, generate, decode
        assert isinstance(answer.text, str) and INSTRUCTION not in answer.text
        assert answer.model_id == f'transformers:{qwen_checkpoint.name}'
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.shutdown(context=ctx)


def test_missing_local_model_extra_names_the_install_command(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_accelerate(name, *args, **kwargs):
        if name == 'accelerate':
            raise ImportError("No module named 'accelerate'", name='accelerate')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', no_accelerate)
    with pytest.raises(BackendError, match='make setup EXTRAS=local-model') as info:
        make_backend('transformers', model_path=str(tmp_path))
    assert info.value.kind == 'config' and 'accelerate' in str(info.value)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp('tiny-vlm')
    build_tiny_vlm(str(folder))
    return folder


K = np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]])
RGB = np.zeros((480, 640, 3), np.uint8)


def test_local_checkpoint_answers_and_the_trace_lifts(checkpoint):
    backend = make_backend(
        'transformers',
        model_path=str(checkpoint),
        device='cpu',
        dtype='float32',
        max_new_tokens=60,
    )
    first = backend(RGB, None, K, INSTRUCTION)
    assert first.text == ANSWER  # only the generated tokens, decoded, no prompt echo
    assert first.model_id == f'transformers:{checkpoint.name}'
    assert first.elapsed_s > 0
    assert backend(RGB, None, K, INSTRUCTION).text == ANSWER  # greedy: deterministic
    # the whole service path: frame + request -> metric trace in the camera frame
    service = TraceService(backend, max_frame_age_s=0)
    frame = Frame(RGB, None, None, K, 0.0, 'camera_color_optical_frame')
    out = service.handle(TraceRequest(INSTRUCTION, depth_source='model'), frame)
    assert out.success, out.error_msg
    np.testing.assert_allclose(out.result.points[0], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(out.result.points[1], [64 * 0.95 / 600, -24 * 0.95 / 600, 0.95])


def test_the_model_is_loaded_once_and_dtype_is_honoured(checkpoint, tmp_path):
    copy = tmp_path / 'ckpt'
    shutil.copytree(checkpoint, copy)
    backend = make_backend(
        'transformers', model_path=str(copy), dtype='bfloat16', max_new_tokens=8
    )
    assert next(backend.net.parameters()).dtype == torch.bfloat16
    shutil.rmtree(copy)  # gone from disk: later requests must not need it
    assert isinstance(backend(RGB, None, K, INSTRUCTION).text, str)


def test_missing_checkpoint_is_a_clear_configuration_error(tmp_path):
    with pytest.raises(BackendError, match='cannot load checkpoint') as info:
        make_backend('transformers', model_path=str(tmp_path / 'nothing-here'))
    assert info.value.kind == 'config'
    with pytest.raises(BackendError, match="dtype 'int8'"):
        make_backend('transformers', model_path=str(tmp_path), dtype='int8')


@pytest.mark.gpu
def test_local_checkpoint_on_a_cuda_gpu_in_bfloat16(checkpoint):
    backend = make_backend(
        'transformers',
        model_path=str(checkpoint),
        device='cuda',
        dtype='bfloat16',
        max_new_tokens=60,
    )
    assert next(backend.net.parameters()).device.type == 'cuda'
    answer = backend(RGB, None, K, INSTRUCTION)
    assert isinstance(answer.text, str) and answer.elapsed_s > 0
