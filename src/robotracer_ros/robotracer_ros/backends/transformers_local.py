"""A local checkpoint run in-process with Hugging Face transformers (Qwen2.5-VL, Qwen3-VL, ...).

Design notes: docs/design-notes.md (robotracer_ros.backends.transformers_local).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import numpy as np

from robotracer_ros.backends.base import (
    CONFIG,
    MODEL,
    BackendAnswer,
    BackendError,
    check_instruction,
    check_rgb,
)
from robotracer_ros.prompts import build_prompt

DTYPES = ('auto', 'float32', 'float16', 'bfloat16')
INSTALL_HINT = (
    'the robot-side install leaves them out: run `make setup EXTRAS=local-model` '
    '(or pip install -r requirements/local-model.in -c requirements/constraints.txt)'
)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:300] if str(exc) else ''
    return f'{type(exc).__name__}: {text}'


def image_only(processor_cls: type) -> type:
    """``processor_cls`` without its video processor (same name, same code otherwise).

    transformers builds a processor from the sub-processors its ``__init__`` names
    (``get_attributes``); leaving ``video_processor`` out of that list is all it takes for the
    Qwen-VL processors to load and run images without torchvision. Videos are then refused.
    """

    def get_attributes(cls: type) -> list[str]:
        return [a for a in processor_cls.get_attributes.__func__(cls) if a != 'video_processor']

    return type(
        processor_cls.__name__, (processor_cls,), {'get_attributes': classmethod(get_attributes)}
    )


def load_processor(model_path: str, **kwargs: Any) -> tuple[Any, str]:
    """Load the checkpoint's processor with the PIL image path.

    Args:
        model_path: checkpoint folder.
        **kwargs: passed to ``from_pretrained`` (``local_files_only``, ``trust_remote_code``).

    Returns:
        ``(processor, how)``: ``how`` is ``'full'`` (the processor as saved) or ``'image-only'``
        (the same processor class without its video processor, which needs torchvision).

    Raises:
        Exception: whatever ``AutoProcessor.from_pretrained`` raised, when the image-only
            processor cannot be loaded either.
    """
    import transformers
    from transformers import AutoConfig, AutoProcessor
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    try:
        return AutoProcessor.from_pretrained(model_path, backend='pil', **kwargs), 'full'
    except Exception as exc:  # noqa: BLE001 - OSError/ImportError/... when torchvision is missing
        first = exc
    try:
        model_type = AutoConfig.from_pretrained(model_path, **kwargs).model_type
        cls = getattr(transformers, PROCESSOR_MAPPING_NAMES[model_type])
    except Exception:  # noqa: BLE001 - not a known processor: report the first error
        raise first from None
    if 'video_processor' not in cls.get_attributes():
        raise first
    try:
        return image_only(cls).from_pretrained(model_path, backend='pil', **kwargs), 'image-only'
    except Exception:  # noqa: BLE001 - the first error says more
        raise first from None


class TransformersBackend:
    """Run a vision-language checkpoint with ``generate`` (greedy decoding)."""

    name = 'transformers'

    def __init__(
        self,
        model_path: str,
        *,
        device: str = 'cpu',
        dtype: str = 'auto',
        prompt_style: str = 'robotracer',
        max_new_tokens: int = 1024,
        local_files_only: bool = True,
        trust_remote_code: bool = False,
        model_name: str | None = None,
    ) -> None:
        """Load the processor and the model once, the weights straight onto ``device``.

        Args:
            model_path: local folder with the checkpoint (config, weights, processor files).
            device: torch device, e.g. ``'cpu'``, ``'cuda'``, ``'cuda:1'`` (the ``device_map``
                of ``from_pretrained``).
            dtype: ``'auto'`` (checkpoint's), ``'float32'``, ``'float16'`` or ``'bfloat16'``.
            prompt_style: ``'robotracer'`` (tuple prompt) or ``'json'`` (general VLM).
            max_new_tokens: generation limit (answer tokens; the model config sets it).
            local_files_only: never download (default).
            trust_remote_code: allow the checkpoint's own Python code (off by default).
            model_name: name for ``model_id`` (default: the folder name).

        Raises:
            BackendError: (``config``) torch/transformers/accelerate missing (the message names
                the install command), bad options, or the checkpoint cannot be loaded.
        """
        if dtype not in DTYPES:
            raise BackendError(CONFIG, f'dtype {dtype!r} is not one of {DTYPES}')
        if prompt_style not in ('robotracer', 'json'):
            raise BackendError(CONFIG, f'prompt_style {prompt_style!r} is not robotracer/json')
        if int(max_new_tokens) < 1:
            raise BackendError(CONFIG, f'max_new_tokens must be >= 1, not {max_new_tokens}')
        try:
            import accelerate  # noqa: F401 - device_map at load time needs it
            import torch
            from transformers import AutoModelForImageTextToText
        except ImportError as exc:
            raise BackendError(
                CONFIG,
                f'the transformers backend needs torch, transformers and accelerate '
                f'({exc.name or exc} is missing); {INSTALL_HINT}',
            ) from exc
        self._torch = torch
        self.model_path = model_path
        self.device = device
        self.prompt_style = prompt_style
        self.max_new_tokens = int(max_new_tokens)
        self.model = model_name or os.path.basename(os.path.normpath(model_path))
        kwargs: dict[str, Any] = {
            'local_files_only': local_files_only,
            'trust_remote_code': trust_remote_code,
        }
        torch_dtype = 'auto' if dtype == 'auto' else getattr(torch, dtype)
        try:
            self.processor, self.processor_kind = load_processor(model_path, **kwargs)
            self.net = AutoModelForImageTextToText.from_pretrained(
                model_path, dtype=torch_dtype, device_map=device, **kwargs
            )
            self.net.eval()
        except Exception as exc:  # OSError, ValueError, RuntimeError (CUDA), ...
            raise BackendError(
                CONFIG, f'cannot load checkpoint {model_path!r} on {device}: {_short(exc)}'
            ) from exc
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """``transformers:<model>``."""
        return f'{self.name}:{self.model}'

    def _inputs(self, rgb: np.ndarray, prompt: str) -> Any:
        from PIL import Image

        image = Image.fromarray(rgb)
        if getattr(self.processor, 'chat_template', None):
            messages = [
                {'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': prompt}]}
            ]
            text = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        else:
            token = getattr(self.processor, 'image_token', '<image>')
            text = f'{token}{prompt}'
        return self.processor(text=[text], images=[image], return_tensors='pt')

    def __call__(
        self,
        rgb: np.ndarray,
        depth: np.ndarray | None,
        K: np.ndarray,
        instruction: str,
        *,
        mode_3d: bool = True,
    ) -> BackendAnswer:
        """Generate an answer (see :class:`~robotracer_ros.backends.base.TraceBackend`)."""
        t0 = time.perf_counter()
        check_rgb(rgb)
        try:
            prompt = build_prompt(
                check_instruction(instruction), style=self.prompt_style, mode_3d=mode_3d
            )
        except ValueError as exc:
            raise BackendError(CONFIG, f'bad instruction: {exc}') from exc
        torch = self._torch
        try:
            with self._lock, torch.inference_mode():
                inputs = self._inputs(rgb, prompt).to(self.net.device)
                out = self.net.generate(
                    **inputs, max_new_tokens=self.max_new_tokens, do_sample=False
                )
                new = out[:, inputs['input_ids'].shape[1] :]
                text = self.processor.batch_decode(new, skip_special_tokens=True)[0]
        except Exception as exc:  # surface any model failure as a backend error with its cause
            raise BackendError(
                MODEL, f'generation failed on {self.device}: {_short(exc)}'
            ) from exc
        return BackendAnswer(text, self.model_id, time.perf_counter() - t0)
