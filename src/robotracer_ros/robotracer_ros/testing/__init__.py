"""Stand-ins the tests and benchmarks share (importable, not test modules).

Design notes: docs/design-notes.md (robotracer_ros.testing.__init__).
"""
