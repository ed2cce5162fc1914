"""The simulator demo behind ``make demo`` / ``robotracer demo ur5|g1`` (see :mod:`.run`).

ROS-free modules: :mod:`.scenarios` (what each robot's demo does), :mod:`.timing` (phase times
from feedback), :mod:`.pictures`, :mod:`.recording` (MCAP), :mod:`.report`, :mod:`.process`
(the bringup child process). ROS glue: :mod:`.node`; orchestration: :mod:`.run`.
"""
