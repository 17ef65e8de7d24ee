import sys

from artid.cli import main

sys.exit(main())
