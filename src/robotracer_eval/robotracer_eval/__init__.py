"""Model evaluation with TraceSpatial-Bench's metrics (``robotracer eval``).

- :mod:`~robotracer_eval.metrics`: path metrics and 2D/3D checks (numpy/scipy, no ROS).
- :mod:`~robotracer_eval.geometry3d`: the target's point cloud, TSDF occupancy, collisions.
- :mod:`~robotracer_eval.bench_data`: answer parsing and the benchmark's files.
- :mod:`~robotracer_eval.scoring`: one question -> its scores; a run -> the summary.
- :mod:`~robotracer_eval.report`: table, charts, side-by-side comparison.
- :mod:`~robotracer_eval.live`: a live model over the benchmark folder.
- :mod:`~robotracer_eval.sim_scenes`: randomised simulator scenes (``--world ur5|g1``).
"""

__version__ = '0.1.0'
