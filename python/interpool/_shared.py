"""`interpool.shared`: the read-only mapping behind Executor(shared=...)."""

from __future__ import annotations

# collections.abc re-exports these from _collections_abc, which every interpreter
# has loaded; importing collections.abc would also load collections and 5 more.
from _collections_abc import Mapping

TYPE_CHECKING = False  # typing is not imported at run time: workers import this module
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any


class SharedMapping(Mapping):  # Mapping[str, Any]
    """Read-only view of the values an Executor sent once to each worker.

    In a worker: that executor's `shared=` mapping. In the parent: the
    `shared=` of the most recently created executor that is still open (empty
    when there is none), so code that reads `interpool.shared` runs unchanged
    in both places.
    """

    __slots__ = ("_data", "_stack")

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._stack: list[tuple[int, dict[str, Any]]] = []

    def _publish(self, data: dict[str, Any]) -> None:
        self._data = data

    def _push(self, owner: int, data: dict[str, Any]) -> None:
        self._stack.append((owner, data))
        self._data = data

    def _pop(self, owner: int) -> None:
        self._stack = [(o, d) for o, d in self._stack if o != owner]
        self._data = self._stack[-1][1] if self._stack else {}

    def __getitem__(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            raise KeyError(
                f"{key!r} is not in interpool.shared: pass it in Executor(shared={{{key!r}: ...}})"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"interpool.shared({self._data!r})"
