import sys

from pagos_dev.cli import main

sys.exit(main())
