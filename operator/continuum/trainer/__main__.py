"""``python -m continuum.trainer``: the same as ``continuum train``."""

import sys

from continuum.trainer.cli import main

sys.exit(main())
