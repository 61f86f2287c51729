"""`python -m localgate` runs the CLI."""

from localgate.cli import main

raise SystemExit(main())
