import sys

from clipconcepts.cli import main

sys.exit(main())
