"""The ground-truth "model": answers RoboTracer prompts about a simulated scene.

Design notes: docs/design-notes.md (robotracer_sim.oracle.core).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import re
import threading

import numpy as np

from robotracer_sim.oracle.language import LanguageError, parse_instruction
from robotracer_sim.oracle.scene import SceneSnapshot
from robotracer_sim.oracle.trace import (
    Unanswerable,
    format_answer,
    in_view,
    plan_trace,
    project_trace,
    visible_trace,
)

NOT_UNDERSTOOD = "I'm not sure how to do that. Could you rephrase the task?"
NOT_FOUND = 'I cannot find that object in the image.'


@dataclass(frozen=True)
class OracleConfig:
    """Behaviour knobs of the oracle.

    Attributes:
        latency: seconds the server waits before answering (emulates inference time).
        noise_std: standard deviation of Gaussian noise added to each 3D trace point, metres.
        malformed_rate: probability in [0, 1] of answering with a malformed trace.
        seed: random seed for noise and malformed answers (None: nondeterministic).

    """

    latency: float = 0.5
    noise_std: float = 0.0
    malformed_rate: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.latency <= 60.0:
            raise ValueError(f'latency must be in [0, 60] s, got {self.latency}')
        if not 0.0 <= self.noise_std <= 1.0:
            raise ValueError(f'noise_std must be in [0, 1] m, got {self.noise_std}')
        if not 0.0 <= self.malformed_rate <= 1.0:
            raise ValueError(f'malformed_rate must be in [0, 1], got {self.malformed_rate}')


@dataclass(frozen=True)
class OracleAnswer:
    """An answer and what the oracle meant by it (for logs and tests).

    Attributes:
        text: the answer exactly as the model API returns it.
        instruction: the instruction extracted from the prompt.
        usable: True when ``text`` is a well-formed trace.
        obj: the moved object's name (when understood).
        trace_world: the (N, 3) world trace behind the answer (before noise), or None.
        reason: why the answer is unusable, or ''.

    """

    text: str
    instruction: str
    usable: bool
    obj: str | None = None
    trace_world: np.ndarray | None = None
    reason: str = ''


def extract_instruction(prompt: str) -> str:
    """Return the instruction quoted in a RoboTracer prompt, or the whole text.

    Args:
        prompt: e.g. ``'Point the 3D object-centric visual trace for the task "put the red cube
            on the plate". Your answer should be ...'``.

    Returns:
        ``"put the red cube on the plate"``.

    """
    m = re.search(r'task\s*[\"\u201c](.+?)[\"\u201d]', prompt, flags=re.S)
    return (m.group(1) if m else prompt).strip()


def wants_3d(prompt: str) -> bool:
    """True unless the prompt asks for a 2D trace (``2D`` / ``[(x1, y1), ...]`` only)."""
    if re.search(r'\b3D\b|d1\b', prompt):
        return True
    return not re.search(r'\b2D\b|\(x1,\s*y1\)', prompt)


class Oracle:
    """Answer RoboTracer prompts from a world's ground truth.

    Args:
        snapshot: callable returning the world's :class:`SceneSnapshot` (thread-safe).
        config: behaviour knobs.

    """

    def __init__(
        self, snapshot: Callable[[], SceneSnapshot], config: OracleConfig | None = None
    ) -> None:
        self._snapshot = snapshot
        self.config = config or OracleConfig()
        self._rng = np.random.default_rng(self.config.seed)
        self._rng_lock = threading.Lock()

    def answer(
        self,
        prompt: str,
        width: int,
        height: int,
        k: np.ndarray | None = None,
    ) -> OracleAnswer:
        """Answer a prompt about the scene as it is now, seen in a ``width``×``height`` image.

        Args:
            prompt: the RoboTracer prompt (or a bare instruction).
            width: width of the request's image, pixels.
            height: its height, pixels.
            k: 3×3 intrinsics of that image; None: the world camera's, scaled to the size.

        Returns:
            The answer (never raises for what a model could be asked).

        """
        instruction = extract_instruction(prompt)
        three_d = wants_3d(prompt)
        snap = self._snapshot()
        if k is None:
            k = snap.k.copy()
            k[0, :] *= width / snap.width
            k[1, :] *= height / snap.height
        try:
            task = parse_instruction(instruction)
        except LanguageError as exc:
            return OracleAnswer(NOT_UNDERSTOOD, instruction, False, reason=str(exc))
        try:
            obj, pts = plan_trace(task, snap)
        except Unanswerable as exc:
            return OracleAnswer(exc.reply, instruction, False, reason=str(exc))
        if not in_view(pts[0], k, snap.t_world_camera, width, height):
            return OracleAnswer(NOT_FOUND, instruction, False, obj, pts, f'{obj} is out of view')
        noisy = pts
        with self._rng_lock:
            if self.config.noise_std > 0:
                noisy = pts + self._rng.normal(0.0, self.config.noise_std, pts.shape)
            malformed = self._rng.random() < self.config.malformed_rate
            choice = int(self._rng.integers(0, 5))
        seen = visible_trace(noisy, k, snap.t_world_camera, width, height)
        xyd = project_trace(seen, k, snap.t_world_camera, width, height)
        text = format_answer(xyd, three_d)
        if malformed:
            return OracleAnswer(
                _malform(text, choice), instruction, False, obj, pts, 'malformed on purpose'
            )
        return OracleAnswer(text, instruction, True, obj, pts)


def _malform(text: str, choice: int) -> str:
    """A plausible broken answer (the kinds VLMs produce)."""
    if choice == 0:  # cut off mid-tuple (token limit)
        return text[: max(3, len(text) // 2)]
    if choice == 1:  # x, y normalised to 0-1 (RoboRefer's convention), not 0-1000
        return re.sub(
            r'\((\d+), (\d+)',
            lambda m: f'({int(m.group(1)) / 1000:.3f}, {int(m.group(2)) / 1000:.3f}',
            text,
        )
    if choice == 2:  # prose, no numbers
        return 'The object should be picked up and moved to the target location.'
    if choice == 3 and re.search(r', \d+\.\d{3}\)', text):
        return re.sub(r', (\d+\.\d{3})\)', ', unknown)', text, count=1)
    # one point with a different number of values than the others
    m = re.search(r'\((\d+), (\d+), \d+\.\d{3}\)', text)
    if m:
        return text.replace(m.group(0), f'({m.group(1)}, {m.group(2)})', 1)
    return re.sub(r'\((\d+), (\d+)\)', r'(\1, \2, 0.5, 0.5)', text, count=1)
