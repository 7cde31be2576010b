"""`python -m adapters` runs the `papers` command."""

from adapters.cli import main

raise SystemExit(main())
