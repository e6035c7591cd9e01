"""``python -m samepix`` is the ``samepix`` command."""

from samepix.cli import main

raise SystemExit(main())
