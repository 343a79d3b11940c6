"""A package whose import can be interrupted half-way: its first submodule is
loaded, its second waits for a file (see executor_tasks.import_slow_package).
As asyncio does, it names its submodules after star imports of them: names that
the import system binds only when it loads a submodule."""

from .first import *  # noqa: F403
from .second import *  # noqa: F403

VALUE = first.VALUE + second.VALUE  # noqa: F405
