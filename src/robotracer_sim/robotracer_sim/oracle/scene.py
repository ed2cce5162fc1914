"""What the oracle knows about a scene: a snapshot of ground truth that any world can provide.

A world (UR5, G1, ...) hands the oracle a callable returning a :class:`SceneSnapshot` taken
under its own lock; the oracle never touches MuJoCo itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Words the language accepts for each shape (besides the object's name and its ``words``).
SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    'box': ('cube', 'block', 'box'),
    'cylinder': ('cylinder', 'can', 'bottle'),
    'sphere': ('ball', 'sphere'),
    'cup': ('cup', 'mug'),
    'bowl': ('bowl',),
    'plate': ('plate', 'dish'),
}


@dataclass(frozen=True)
class SceneObject:
    """Ground truth of one object.

    Attributes:
        name: unique name (``red_cube``).
        color: colour word (``red``).
        shape: shape name (``box``, ``cup``, ...).
        position: centre of its bounding box in the world, metres (3,).
        rotation: orientation in the world (3×3).
        half_extents: half sizes of its bounding box in its own frame (3,).
        support_offset: height above the centre (world z, usually negative for containers)
            of the surface an object put *on/in* it rests on: its top for solid objects, its
            inner floor for containers.
        container: True for cups and bowls (things go *in* them).
        held: True while the robot holds it.
        words: extra words that refer to it.

    """

    name: str
    color: str
    shape: str
    position: np.ndarray
    rotation: np.ndarray
    half_extents: np.ndarray
    support_offset: float
    container: bool = False
    held: bool = False
    words: tuple[str, ...] = ()

    @property
    def world_half_extents(self) -> np.ndarray:
        """Half sizes of its axis-aligned bounding box in the world (3,)."""
        return np.abs(self.rotation) @ self.half_extents

    @property
    def footprint_radius(self) -> float:
        """Radius of a circle in the table plane that covers it, metres."""
        h = self.world_half_extents
        return float(np.hypot(h[0], h[1]))

    @property
    def vocabulary(self) -> frozenset[str]:
        """Every word that may be used to refer to it."""
        words = set(self.name.lower().split('_'))
        words.add(self.color)
        words.update(SHAPE_WORDS.get(self.shape, (self.shape,)))
        words.update(self.words)
        return frozenset(words)


@dataclass(frozen=True)
class SceneSnapshot:
    """Ground truth of a scene at one instant, plus the camera the world renders from.

    Attributes:
        objects: the named objects.
        t_world_camera: 4×4 optical camera frame → world.
        k: 3×3 intrinsics of the world's camera at its native size.
        width: native image width, pixels.
        height: native image height, pixels.
        stamp: world time, seconds.
        frame_id: the world frame's name.

    """

    objects: tuple[SceneObject, ...]
    t_world_camera: np.ndarray
    k: np.ndarray
    width: int
    height: int
    stamp: float = 0.0
    frame_id: str = 'world'

    def get(self, name: str) -> SceneObject:
        """Return the object called ``name``.

        Raises:
            KeyError: no such object.

        """
        for o in self.objects:
            if o.name == name:
                return o
        raise KeyError(name)
