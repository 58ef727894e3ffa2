"""``python -m facetwin.cli``."""

import sys

from facetwin.cli import main

sys.exit(main())
