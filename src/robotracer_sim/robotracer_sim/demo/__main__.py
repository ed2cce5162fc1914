"""``python -m robotracer_sim.demo ur5|g1``."""

import sys

from robotracer_sim.demo.cli import main

sys.exit(main())
