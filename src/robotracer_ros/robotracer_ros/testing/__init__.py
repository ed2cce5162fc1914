"""Stand-ins the tests and benchmarks share (importable, not test modules).

- :mod:`~robotracer_ros.testing.fault_server`: :class:`FaultServer`, a real HTTP model server
  on 127.0.0.1 that speaks RoboTracer's ``/query`` and the OpenAI chat-completions API and can
  be told to misbehave in every way a model server does (reset, hang, drip, HTTP errors, HTML
  pages, broken answers).
- :mod:`~robotracer_ros.testing.model_faults`: the catalogue of model faults with the error
  each must produce, and :func:`run_model_faults` that tries them through the request logic.
- :mod:`~robotracer_ros.testing.fuzz`: hypothesis strategies for model answers and response
  bodies, and :func:`run_fuzz_campaign` that returns counts for a benchmark.

Nothing here is imported by the product code.
"""
