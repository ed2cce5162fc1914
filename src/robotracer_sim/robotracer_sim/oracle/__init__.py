"""Ground-truth "oracle" model server: RoboTracer's HTTP API answered from simulator truth.

- :mod:`~robotracer_sim.oracle.language`: the instruction language (documented there).
- :mod:`~robotracer_sim.oracle.trace`: trace planning, projection, answer formatting.
- :mod:`~robotracer_sim.oracle.core`: :class:`Oracle` (prompt -> answer, noise, malformed).
- :mod:`~robotracer_sim.oracle.server`: :class:`OracleServer` (``POST /query``).
- :mod:`~robotracer_sim.oracle.scene`: the ground-truth snapshot any world provides.
- :mod:`~robotracer_sim.oracle.geometry`: camera and transform conventions.
"""

from robotracer_sim.oracle.core import Oracle, OracleAnswer, OracleConfig
from robotracer_sim.oracle.scene import SceneObject, SceneSnapshot
from robotracer_sim.oracle.server import DEFAULT_PORT, OracleServer

__all__ = [
    'DEFAULT_PORT',
    'Oracle',
    'OracleAnswer',
    'OracleConfig',
    'OracleServer',
    'SceneObject',
    'SceneSnapshot',
]
