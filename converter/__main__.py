import os
import sys

if not sys.stderr.isatty():  # a log file, not a terminal: one progress update every 30 s (tqdm reads TQDM_*)
    os.environ.setdefault("TQDM_MININTERVAL", "30")

from converter.cli import main  # noqa: E402  (after the progress setting, which tqdm reads on import)

sys.exit(main())
