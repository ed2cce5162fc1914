"""``python -m robotracer_demo ur5|g1``."""

import sys

from robotracer_demo.cli import main

sys.exit(main())
