"""A joblib parallel backend that runs joblib's calls on interpool's
interpreters (docs/joblib.md).

    import interpool.joblib     # registers the backend "interpool"
    from joblib import Parallel, delayed, parallel_config

    with parallel_config(backend="interpool", n_jobs=4):
        results = Parallel()(delayed(work)(x) for x in items)

joblib hands a backend its calls in batches (``joblib.parallel.BatchedCalls``,
sized by joblib's auto-batching); each batch's list of calls crosses to an
interpreter of an ``interpool.Executor`` by pickle and runs there as
BatchedCalls would run it (``_joblib_worker.run_batch``: the BatchedCalls
object itself would import joblib in the worker, which Python 3.12 cannot do),
and the results come back by pickle, in this process. The executor is kept
between Parallel calls (as loky keeps its processes): starting interpreters
costs more than many calls' work.

Importing this module needs joblib (``pip install 'interpool[joblib]'``);
``import interpool`` never imports joblib.
"""

from __future__ import annotations

import sys
import threading
import warnings
from concurrent.futures import Future
from typing import Any

try:
    import joblib
    from joblib._parallel_backends import (
        AutoBatchingMixin,
        FallbackToBackend,
        ParallelBackendBase,
        SequentialBackend,
    )
except ImportError as e:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "interpool.joblib needs joblib, which is not installed: "
        "pip install 'interpool[joblib]' (or pip install joblib)",
        name=e.name,
    ) from e

from . import IncompatibleModuleError, NotShareableError, _joblib_worker, _worker, usable_cpus
from ._byvalue import dumps as _dumps
from ._executor import Executor
from ._functions import _by_name
from ._future import _Future

__all__ = ["InterpoolBackend"]

# The interpool.Executor options a backend passes on; the number of workers is
# n_jobs, and the initializer is the backend's own.
_EXECUTOR_OPTIONS = ("shared", "max_tasks_per_worker", "task_timeout", "fallback")


def _same_options(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for key, value in a.items():
        other = b[key]
        if value is other:
            continue
        try:
            if not bool(value == other):
                return False
        except Exception:  # values without a plain == (arrays): not the same
            return False
    return True


class _KeptExecutors:
    """The executor kept between Parallel calls, and those still in use by a
    call after a later call needed another size or other options."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kept: tuple[int, dict, Executor] | None = None
        self.users: dict[Executor, int] = {}

    def acquire(self, n_jobs: int, options: dict) -> Executor:
        with self.lock:
            kept = self.kept
            if (kept is not None and kept[0] == n_jobs and _same_options(kept[1], options)
                    and not kept[2]._state.broken):
                executor = kept[2]
            else:
                executor = Executor(n_jobs, initializer=_joblib_worker.setup, **options)
                self.kept = (n_jobs, dict(options), executor)
                if kept is not None and not self.users.get(kept[2]):
                    kept[2].shutdown(wait=False)
            self.users[executor] = self.users.get(executor, 0) + 1
            return executor

    def release(self, executor: Executor) -> None:
        with self.lock:
            left = self.users.pop(executor, 1) - 1
            if left:
                self.users[executor] = left
            elif self.kept is None or self.kept[2] is not executor:
                executor.shutdown(wait=False)  # replaced meanwhile: its last user is done


_executors = _KeptExecutors()


def _batch_function(calls: list) -> tuple[str, str] | None:
    """The function a batch's calls all call, as a fallback key (module,
    qualname): with fallback="process", a batch refused an import sends that
    function's later batches to processes, and no other's. None if they call
    several, or one that workers cannot find by name."""
    functions = {id(fn): fn for fn, _, _ in calls}
    if len(functions) != 1:
        return None
    return _by_name(next(iter(functions.values())))


def _not_sent(batch: Any, error: NotShareableError) -> NotShareableError:
    """The error for a batch that does not pickle, naming the call and the value
    that does not (found again, now that it failed)."""
    for fn, args, kwargs in getattr(batch, "items", ()):
        name = getattr(fn, "__qualname__", None) or type(fn).__name__
        try:
            _dumps(fn)
        except Exception as e:
            return NotShareableError(
                f"cannot send {name!r}, given to joblib's delayed(), to an interpool worker: "
                f"{type(e).__name__}: {e}")
        named = [(f"argument {i + 1}", value) for i, value in enumerate(args)]
        named += [(f"keyword argument {key!r}", value) for key, value in kwargs.items()]
        for where, value in named:
            try:
                _dumps(value)
            except Exception as e:
                return NotShareableError(
                    f"cannot send {where} of a call to {name!r} to an interpool worker: the "
                    f"{type(value).__name__!r} object does not pickle ({type(e).__name__}: {e}). "
                    f"joblib's calls reach interpool's workers by pickle")
    return NotShareableError(f"cannot send a batch of joblib calls to an interpool worker: {error}")


def _ctypes_refused(error: IncompatibleModuleError) -> IncompatibleModuleError:
    new = IncompatibleModuleError(
        f"{error} (Python 3.12 cannot load ctypes in a sub-interpreter, and joblib imports it: "
        f"on 3.12 the functions given to delayed() must live in a module that does not import "
        f"joblib, and a script that defines them imports joblib under "
        f"`if __name__ == \"__main__\":`; or use Python 3.13)", name=error.name)
    new.module = error.module
    return new


class InterpoolBackend(AutoBatchingMixin, ParallelBackendBase):
    """joblib's backend ``"interpool"``: batches of calls run on the worker
    interpreters of an ``interpool.Executor`` of ``n_jobs`` workers, in this
    process. ``n_jobs=-1`` is every CPU this process may use
    (``interpool.usable_cpus()``), ``-2`` one less, and so on; ``n_jobs=1``
    runs the calls one by one in the calling thread, as joblib's own backends do.

    ``executor_options`` (``shared``, ``max_tasks_per_worker``,
    ``task_timeout``, ``fallback``) go to ``interpool.Executor``:
    ``parallel_config(backend="interpool", n_jobs=4, task_timeout=60)``.
    """

    # Results come back through the futures' callbacks: return_as="generator"
    # and "generator_unordered", and Parallel's timeout, work.
    supports_retrieve_callback = True

    def __init__(self, nesting_level: int | None = None, inner_max_num_threads: int | None = None,
                 **executor_options: Any) -> None:
        unknown = sorted(set(executor_options) - set(_EXECUTOR_OPTIONS))
        if unknown:
            raise TypeError(
                f"the joblib backend 'interpool' got unexpected option(s) {unknown}: it passes "
                f"{', '.join(_EXECUTOR_OPTIONS)} to interpool.Executor (the number of workers "
                f"is n_jobs)")
        super().__init__(nesting_level=nesting_level, inner_max_num_threads=inner_max_num_threads)
        self._options = executor_options
        self._executor: Executor | None = None
        self._lock = threading.Lock()
        self._futures: set[_Future] = set()  # this call's batches not yet done
        self._aborting = False

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if n_jobs is None:
            return 1
        if _joblib_worker.in_worker:
            # Every core already runs one of this backend's workers: a nested
            # executor would only add interpreters competing for them.
            if n_jobs != 1:
                warnings.warn("a Parallel call on the interpool backend inside one of its own "
                              "workers runs sequentially (n_jobs=1)", stacklevel=3)
            return 1
        if n_jobs < 0:
            return max(usable_cpus() + 1 + n_jobs, 1)
        return n_jobs

    def configure(self, n_jobs: int = 1, parallel: Any = None, prefer: Any = None,
                  require: Any = None, **backend_kwargs: Any) -> int:
        if _worker.loading_main:
            raise RuntimeError(
                "a joblib Parallel call on the interpool backend ran while a worker was loading "
                "your script: protect the code that starts it with `if __name__ == \"__main__\":`")
        n_jobs = self.effective_n_jobs(n_jobs)
        if n_jobs == 1:
            raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
        self.parallel = parallel
        self._release()
        self._executor = _executors.acquire(n_jobs, self._options)
        return n_jobs

    def start_call(self) -> None:
        with self._lock:
            self._aborting = False
            self._futures.clear()

    def submit(self, func: Any, callback: Any = None) -> Future:
        """Sends the batch `func` (a joblib BatchedCalls: its calls, which run
        there as it would run them) to a worker; `callback` gets the future once
        done. An error in sending it is the future's."""
        future: Future = Future()
        sent: _Future | None = None
        with self._lock:
            if self._aborting or self._executor is None:
                # Parallel stops on an error; a callback thread may still dispatch
                # a batch it had begun. It never runs.
                future.cancel()
            else:
                calls = getattr(func, "items", None)  # a BatchedCalls' list of calls
                try:
                    if isinstance(calls, list):
                        backend, n_jobs = self.get_nested_backend()
                        nested = (type(backend).__module__, type(backend).__qualname__,
                                  backend.nesting_level, n_jobs)
                        future = sent = self._executor._submit_for(
                            _batch_function(calls), _joblib_worker.run_batch, calls, nested)
                    else:
                        future = sent = self._executor.submit(func)
                except NotShareableError as e:
                    future.set_exception(_not_sent(func, e))
                except Exception as e:  # shut down, broken: Parallel raises it
                    future.set_exception(e)
                else:
                    self._futures.add(sent)
        if sent is not None:
            # Outside the lock: a future already done runs its callbacks here.
            sent.add_done_callback(self._forget)
        if callback is not None:
            future.add_done_callback(callback)
        return future

    # joblib < 1.5 calls apply_async; 1.5 renamed it submit.
    apply_async = submit

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._futures.discard(future)

    def retrieve_result_callback(self, out: Future) -> Any:
        try:
            return out.result()
        except IncompatibleModuleError as e:
            if e.module in ("ctypes", "_ctypes") and sys.version_info < (3, 13):
                raise _ctypes_refused(e) from e
            raise

    def abort_everything(self, ensure_ready: bool = True) -> None:
        """A call raised: withdraws this Parallel call's batches that no worker
        has started, then interrupts the running ones (interpool.TaskInterrupted
        is raised in their code and their interpreters are replaced). The
        executor stays, for the next calls."""
        with self._lock:
            self._aborting = True
            futures = list(self._futures)
        for future in futures:
            future.cancel()
        for future in futures:
            if not future.done():
                future.interrupt()
        if not ensure_ready:
            self._release()

    def get_nested_backend(self) -> tuple[ParallelBackendBase, int | None]:
        """The backend of Parallel calls made inside a batch, on a worker: one
        by one there (SequentialBackend), as every worker already has a core."""
        return SequentialBackend(nesting_level=(self.nesting_level or 0) + 1), None

    def terminate(self) -> None:
        self._release()
        self.reset_batch_stats()

    def _release(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            _executors.release(executor)


joblib.register_parallel_backend("interpool", InterpoolBackend)
