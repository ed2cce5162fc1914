"""The transformers backend against a tiny vision-language model built offline in the test.

A tiny LLaVA (CLIP vision tower + 2-layer Llama, random init) with a byte-level BPE tokenizer
trained in-process is fine-tuned for ~100 steps (a few seconds on CPU) to answer one instruction
with a known trace, saved with ``save_pretrained`` and loaded back by the backend through
``AutoModelForImageTextToText`` + ``AutoProcessor``. Nothing is downloaded.

Why LLaVA and not Qwen2-VL: with transformers 5.x, ``Qwen2VLProcessor`` insists on a video
processor, and ``Qwen2VLVideoProcessor`` requires torchvision, which is not installed here (the
CPU torch wheel comes without it). LLaVA's processor needs only an image processor (the PIL
fallback works) and a tokenizer.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from robotracer_ros.backends import BackendError, make_backend
from robotracer_ros.prompts import robotracer_prompt
from robotracer_ros.trace_service import Frame, TraceRequest, TraceService

pytestmark = pytest.mark.slow  # builds and fine-tunes the tiny model: ~10-20 s on 2 cores

torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')

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
