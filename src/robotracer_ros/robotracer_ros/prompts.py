"""Prompt builders: RoboTracer's own 2D/3D trace prompts and a JSON prompt for general VLMs.

The RoboTracer prompts are the ones from the paper's public evaluation code, verbatim; the model
was trained on them, so do not reword them. General VLMs (Qwen3-VL, Gemini, GPT) get a prompt
asking for the same trace as a JSON list with x, y normalised to 0-1000.
"""

from __future__ import annotations

ROBOTRACER_3D_TEMPLATE = (
    'Point the 3D object-centric visual trace for the task "{instruction}". '
    'Your answer should be formatted as a list of tuples, i.e., '
    '[(x1, y1, d1), (x2, y2, d2), ...], where each tuple contains the x and y coordinates of '
    'the point, and d is the depth of the point.'
)
ROBOTRACER_2D_TEMPLATE = (
    'Point the 2D object-centric visual trace for the task "{instruction}". '
    'Your answer should be formatted as a list of tuples, i.e., '
    '[(x1, y1), (x2, y2), ...], where each tuple contains the x and y coordinates of the point.'
)
VLM_JSON_3D_TEMPLATE = (
    'Task: "{instruction}".\n'
    'Predict the object-centric visual trace for this task in the image: the ordered path '
    'that the object to be moved should follow, from where it is now to where it must end up, '
    'as 4 to 12 points.\n'
    'Answer with a JSON list only, formatted as [[x1, y1, d1], [x2, y2, d2], ...], where x and '
    "y are the point's image coordinates normalised to integers from 0 to 1000 (0, 0 is the "
    'top-left corner, 1000, 1000 the bottom-right corner) and d is the distance of the point '
    'from the camera along its optical axis, in metres.'
)
VLM_JSON_2D_TEMPLATE = (
    'Task: "{instruction}".\n'
    'Predict the object-centric visual trace for this task in the image: the ordered path '
    'that the object to be moved should follow, from where it is now to where it must end up, '
    'as 4 to 12 points.\n'
    'Answer with a JSON list only, formatted as [[x1, y1], [x2, y2], ...], where x and y are '
    "the point's image coordinates normalised to integers from 0 to 1000 (0, 0 is the "
    'top-left corner, 1000, 1000 the bottom-right corner).'
)

MAX_INSTRUCTION_CHARS = 1000


def clean_instruction(instruction: str) -> str:
    """Normalise an instruction for a prompt: one line, trimmed, no double quotes.

    Args:
        instruction: the user's natural-language instruction.

    Returns:
        The instruction on one line with surrounding whitespace removed and ``"`` replaced by
        ``'`` (the prompts quote the instruction with ``"``).

    Raises:
        ValueError: the instruction is empty or longer than ``MAX_INSTRUCTION_CHARS``.
    """
    if not isinstance(instruction, str):
        raise ValueError(f'instruction must be a string, got {type(instruction).__name__}')
    text = ' '.join(instruction.split()).replace('"', "'")
    if not text:
        raise ValueError('instruction is empty')
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise ValueError(
            f'instruction is {len(text)} characters, over the {MAX_INSTRUCTION_CHARS} limit'
        )
    return text


def robotracer_prompt(instruction: str, *, mode_3d: bool = True) -> str:
    """Build RoboTracer's trace prompt.

    Args:
        instruction: e.g. ``'put the red cup on the plate'``.
        mode_3d: True for the 3D prompt (answers ``(x, y, d)``), False for the 2D one.

    Returns:
        The prompt text, exactly as RoboTracer was trained on it.

    Raises:
        ValueError: the instruction is empty or too long.
    """
    template = ROBOTRACER_3D_TEMPLATE if mode_3d else ROBOTRACER_2D_TEMPLATE
    return template.format(instruction=clean_instruction(instruction))


def vlm_json_prompt(instruction: str, *, mode_3d: bool = True) -> str:
    """Build the prompt that asks a general VLM for the trace as JSON (0-1000 coordinates).

    Args:
        instruction: e.g. ``'put the red cup on the plate'``.
        mode_3d: True to ask for ``[x, y, d]`` points, False for ``[x, y]``.

    Returns:
        The prompt text.

    Raises:
        ValueError: the instruction is empty or too long.
    """
    template = VLM_JSON_3D_TEMPLATE if mode_3d else VLM_JSON_2D_TEMPLATE
    return template.format(instruction=clean_instruction(instruction))


def build_prompt(instruction: str, *, style: str = 'robotracer', mode_3d: bool = True) -> str:
    """Build a prompt in the named style.

    Args:
        instruction: the user's instruction.
        style: ``'robotracer'`` (tuple prompt) or ``'json'`` (general-VLM JSON prompt).
        mode_3d: 3D (with depth) or 2D trace.

    Returns:
        The prompt text.

    Raises:
        ValueError: unknown style, or a bad instruction.
    """
    if style == 'robotracer':
        return robotracer_prompt(instruction, mode_3d=mode_3d)
    if style == 'json':
        return vlm_json_prompt(instruction, mode_3d=mode_3d)
    raise ValueError(f"unknown prompt style {style!r}: expected 'robotracer' or 'json'")
