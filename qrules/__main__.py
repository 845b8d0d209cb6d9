"""``python -m qrules``: the same command line as the ``qrules`` script."""

import sys

from qrules.cli import main

if __name__ == "__main__":
    sys.exit(main())
