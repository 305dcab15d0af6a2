"""``python -m golden.prune``: the command line of :mod:`golden.prune.cli`."""

from .cli import main

raise SystemExit(main())
