"""Stand-ins the tests and benchmarks share (importable, not test modules).

- :mod:`~robotracer_ros.testing.fault_server`: :class:`FaultServer`, a real HTTP model server
  on 127.0.0.1 that speaks RoboTracer's ``/query`` and the OpenAI chat-completions API and can
  be told to misbehave in every way a model server does (reset, hang, drip, HTTP errors, HTML
  pages, broken answers).
- :mod:`~robotracer_ros.testing.model_faults`: the catalogue of model faults with the error
  each must produce, and :func:`run_model_faults` that tries them through the request logic.
- :mod:`~robotracer_ros.testing.fuzz`: hypothesis strategies for model answers and response
  bodies, and :func:`run_fuzz_campaign` that returns counts for a benchmark.
- :mod:`~robotracer_ros.testing.model_server`: :class:`ModelServer`, a well-behaved model
  server on 127.0.0.1 that decodes and records every request and answers what a test says.
- :mod:`~robotracer_ros.testing.camera_publisher`: a synthetic RGB-D camera process
  (``python -m robotracer_ros.testing.camera_publisher``, fault commands with ``--control``).
- :mod:`~robotracer_ros.testing.interface_peers`: topic, service and action peer processes for
  the robotracer_msgs interface tests.
- :mod:`~robotracer_ros.testing.launch_common`: the launch_testing body of the per-robot
  launch tests (needs a full ROS 2 install).

Nothing here is imported by the product code.
"""
