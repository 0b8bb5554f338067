"""``python -m webqq``: the same command line as the installed ``webqq``."""
import sys

from webqq.daemon.cli import main

sys.exit(main())
