"""`python -m fullstory_emulator.client.cli`: the same as the `fullstory-export` script."""

import sys

from . import main

sys.exit(main())
