"""localgate: a local, OpenAI-compatible AI gateway. Importing this package does nothing else."""

__version__ = "0.1.0"
