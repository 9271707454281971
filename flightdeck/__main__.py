import sys

from flightdeck.cli import main

sys.exit(main())
