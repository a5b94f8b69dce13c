"""``python -m weightvault.cli``."""

import sys

from weightvault.cli import main

sys.exit(main())
