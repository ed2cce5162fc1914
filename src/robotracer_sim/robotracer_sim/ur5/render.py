"""Offscreen RGB-D rendering of the UR5 world's camera: :mod:`robotracer_sim.common.render`.

The renderer is shared with the G1 room's head camera; it stays importable from here.
"""

from __future__ import annotations

from robotracer_sim.common.render import RgbdRenderer

__all__ = ['RgbdRenderer']
