"""``python -m tfserve_lab`` runs the ``tfserve-lab`` command."""

import sys

from tfserve_lab.cli import main

sys.exit(main())
