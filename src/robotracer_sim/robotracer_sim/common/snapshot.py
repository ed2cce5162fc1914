"""An object's ground truth for the oracle, as every world reports it."""

from __future__ import annotations

import numpy as np

from robotracer_sim.common.mjcf import container_floor_offset
from robotracer_sim.common.scene_schema import CONTAINERS, ObjectSpec
from robotracer_sim.oracle.scene import SceneObject


def object_snapshot(
    o: ObjectSpec, position: np.ndarray, rotation: np.ndarray, held: bool
) -> SceneObject:
    """The oracle's view of a scene object at its current pose.

    Args:
        o: the object as the scene file declares it.
        position: its centre in the world now, metres (3,); the caller passes a copy.
        rotation: its orientation in the world now (3×3); the caller passes a copy.
        held: whether the robot holds it.

    Returns:
        The :class:`~robotracer_sim.oracle.scene.SceneObject`; its ``support_offset`` is a
        container's inner floor, or the top of a solid object's rotated bounding box.

    """
    half = o.half_extents
    if o.shape in CONTAINERS:
        support = container_floor_offset(o)
    else:
        support = float((np.abs(rotation) @ half)[2])
    return SceneObject(
        name=o.name,
        color=o.color,
        shape=o.shape,
        position=position,
        rotation=rotation,
        half_extents=half,
        support_offset=support,
        container=o.shape in CONTAINERS,
        held=held,
        words=o.words,
    )
