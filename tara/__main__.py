"""``python -m tara``: the ``tara`` command."""

import sys

from tara.cli import main

sys.exit(main())
