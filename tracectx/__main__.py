"""``python -m tracectx`` runs the CLI."""

import sys

from tracectx.cli import main

sys.exit(main())
