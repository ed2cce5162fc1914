"""A local checkpoint run in-process with Hugging Face transformers.

The model (``AutoModelForImageTextToText``) and processor (``AutoProcessor``) are loaded once,
when the backend is created, from a local folder (``local_files_only`` by default: nothing is
downloaded at run time). ``device`` and ``dtype`` are configurable (``cuda``/``bfloat16`` in
production). Only the colour image is given to the model: transformers has no standard input
for RoboTracer's depth encoder, so metric depth comes from the depth image when the answer is
lifted (``fused``/``sensor``), or from the model's own d.
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
        max_new_tokens: int = 256,
        local_files_only: bool = True,
        trust_remote_code: bool = False,
        model_name: str | None = None,
    ) -> None:
        """Load the processor and the model once.

        Args:
            model_path: local folder with the checkpoint (config, weights, processor files).
            device: torch device, e.g. ``'cpu'``, ``'cuda'``, ``'cuda:1'``.
            dtype: ``'auto'`` (checkpoint's), ``'float32'``, ``'float16'`` or ``'bfloat16'``.
            prompt_style: ``'robotracer'`` (tuple prompt) or ``'json'`` (general VLM).
            max_new_tokens: generation limit.
            local_files_only: never download (default).
            trust_remote_code: allow the checkpoint's own Python code (off by default).
            model_name: name for ``model_id`` (default: the folder name).

        Raises:
            BackendError: (``config``) transformers/torch missing, bad options, or the
                checkpoint cannot be loaded (the reason is in the message).
        """
        if dtype not in DTYPES:
            raise BackendError(CONFIG, f'dtype {dtype!r} is not one of {DTYPES}')
        if prompt_style not in ('robotracer', 'json'):
            raise BackendError(CONFIG, f'prompt_style {prompt_style!r} is not robotracer/json')
        try:
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor
        except ImportError as exc:
            raise BackendError(
                CONFIG, f'the transformers backend needs torch and transformers: {exc}'
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
            self.processor = AutoProcessor.from_pretrained(model_path, **kwargs)
            self.net = AutoModelForImageTextToText.from_pretrained(
                model_path, dtype=torch_dtype, **kwargs
            )
            self.net.to(device)
            self.net.eval()
        except Exception as exc:  # OSError, ValueError, RuntimeError (CUDA), ...
            raise BackendError(
                CONFIG,
                f'cannot load checkpoint {model_path!r} on {device}: '
                f'{type(exc).__name__}: {str(exc).splitlines()[0][:300]}',
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
                inputs = self._inputs(rgb, prompt).to(self.device)
                out = self.net.generate(
                    **inputs, max_new_tokens=self.max_new_tokens, do_sample=False
                )
                new = out[:, inputs['input_ids'].shape[1] :]
                text = self.processor.batch_decode(new, skip_special_tokens=True)[0]
        except Exception as exc:  # surface any model failure as a backend error with its cause
            raise BackendError(
                MODEL,
                f'generation failed on {self.device}: {type(exc).__name__}: '
                f'{str(exc).splitlines()[0][:300] if str(exc) else ""}',
            ) from exc
        return BackendAnswer(text, self.model_id, time.perf_counter() - t0)
