"""``python -m lasr.cli`` = ``lasr`` (used where the same interpreter must run the command, e.g. the demo chain)."""

import sys

from lasr.cli import main

sys.exit(main())
