"""Stand-ins that tests and benchmarks share (importable, never put on ``sys.path``)."""
