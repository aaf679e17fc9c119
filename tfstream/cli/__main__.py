"""``python -m tfstream.cli``: the same as the ``tfstream`` command."""

import sys

from tfstream.cli import main

sys.exit(main())
