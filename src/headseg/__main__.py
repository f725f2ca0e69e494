import sys

from headseg.cli import main

sys.exit(main())
