"""``python -m pointcalo``: the same as the ``pointcalo`` command."""

from pointcalo.cli import main

raise SystemExit(main())
