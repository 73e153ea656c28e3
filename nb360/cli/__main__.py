import sys

from nb360.cli import main

sys.exit(main())
