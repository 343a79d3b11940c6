"""interpool: parallel Python on own-GIL sub-interpreters."""

from . import _interpool  # noqa: F401

__version__ = "0.1.0"
