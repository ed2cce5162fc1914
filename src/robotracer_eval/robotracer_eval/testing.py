"""Stand-ins shared by the tests and benchmarks: the issue's hand-computable scene.

W = H = 100, fx = fy = 100, principal point (50, 50); ground truth [[0, 0, 1], [0.2, 0, 1]];
destination box centred at [0.2, 0, 1] with sides of 0.2 m; depth 2 m with the object (mask
255) at 1 m.
"""

from __future__ import annotations

import numpy as np

K = [[100.0, 0.0, 50.0], [0.0, 100.0, 50.0], [0.0, 0.0, 1.0]]
GT = [[0.0, 0.0, 1.0], [0.2, 0.0, 1.0]]


def question(answer: str, **extra) -> dict:
    """A question of the hand-computable scene: W = H = 100, fx = fy = 100, c = (50, 50)."""
    q = {
        'question_id': 0,
        'prompt': 'move the object to the right',
        'model_prediction': answer,
        'trajectory': GT,
        'bbox_center': [0.2, 0.0, 1.0],
        'bbox_extent': [0.2, 0.2, 0.2],
        'bbox_rotation': np.eye(3).tolist(),
        'gt_depth_intrinsics': K,
        'image_path': '0/image.png',
        'gt_depth_path': '0/gt_depth.png',
        'mask_path': '0/mask.png',
    }
    q.update(extra)
    return q


def scene_arrays(wall: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Depth (mm) 2 m everywhere, the object (mask 255) at 1 m in pixels 45..55 x 45..55.

    ``wall``: also a surface at 1 m over columns 66..99 (x from 0.16 m), across the trace.
    """
    depth = np.full((100, 100), 2000, dtype=np.uint16)
    mask = np.zeros((100, 100), dtype=np.uint8)
    depth[45:56, 45:56] = 1000
    mask[45:56, 45:56] = 255
    if wall:
        depth[:, 66:] = 1000
    return depth, mask
