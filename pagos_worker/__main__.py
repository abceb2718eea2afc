import sys

from pagos_worker.entrypoints.cli import main

sys.exit(main())
