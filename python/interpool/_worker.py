"""What runs inside worker interpreters: set-up, chunks, calls of pickled callables,
and the parent's __main__ loaded as __mp_main__.

Workers import this module by name; it must stay importable in an isolated
sub-interpreter (pure Python, standard library only).
"""

from __future__ import annotations

import importlib
import sys
import time
TYPE_CHECKING = False  # typing is not imported at run time: workers import this module
if TYPE_CHECKING:
    from typing import Any, NoReturn

_functions: dict[tuple[str, str], Any] = {}

MAIN_ALIAS = "__mp_main__"


def resolve(module: str, qualname: str) -> Any:
    """The object named module.qualname, cached for the worker's life."""
    key = (module, qualname)
    fn = _functions.get(key)
    if fn is None:
        fn = load_main() if module == MAIN_ALIAS else importlib.import_module(module)
        for part in qualname.split("."):
            fn = getattr(fn, part)
        _functions[key] = fn
    return fn


# A callable that crossed by pickle travels as this keyword argument, so that
# the user's own arguments keep their numbers in error messages.
FN_KEYWORD = "__interpool_fn__"


def run_chunk(module: str | None, qualname: str | None, chunk: list, kwargs: dict,
              timed: bool = False, single: bool = False, **pickled: Any) -> tuple:
    """Calls the function for each args tuple of a map chunk (with `single`,
    for each item, its one argument), with `kwargs`.

    The function is module.qualname, or the callable passed as FN_KEYWORD.
    `timed`: the chunk has a time limit, which applies to each item. Returns
    what call_each() returns.
    """
    fn = pickled[FN_KEYWORD] if module is None else resolve(module, qualname)  # type: ignore[arg-type]
    return call_each(fn, chunk, kwargs, single, timed)


def call_each(fn: Any, chunk: list, kwargs: dict, single: bool, timed: bool = False) -> tuple:
    """A map chunk's calls: (results, seconds spent), the seconds for the
    parent to size the next chunks. When an item raises, the results of the
    items before it are not lost: (those results, seconds, the exception as
    task_error() data), which the parent yields and then raises."""
    start = time.perf_counter()
    out: list = []
    add = out.append  # a loop, not a comprehension: out keeps what came before a failure
    try:
        if timed:
            from interpool._interpool import restart_task_timeout

            for args in chunk:
                restart_task_timeout()
                add(fn(*((args,) if single else args), **kwargs))
        elif single and not kwargs:
            for x in chunk:
                add(fn(x))
        elif single:
            for x in chunk:
                add(fn(x, **kwargs))
        elif not kwargs:
            for args in chunk:
                add(fn(*args))
        else:
            for args in chunk:
                add(fn(*args, **kwargs))
    except Exception as e:
        from interpool._refused import refused_extension

        # A refused import goes as it is: fallback="process" runs the chunk again.
        if not out or refused_extension(e) is not None:
            raise
        from interpool._interpool import task_error

        return out, time.perf_counter() - start, task_error(e)
    return out, time.perf_counter() - start


def call(*args: Any, **kwargs: Any) -> Any:
    """Calls a callable that crossed by pickle (bound methods, callable objects)."""
    return kwargs.pop(FN_KEYWORD)(*args, **kwargs)


def in_main(name: str, *args: Any, **kwargs: Any) -> Any:
    """eval, exec, dir, globals, locals or vars called from another interpreter:
    they have no caller's frame here, so they use this interpreter's __main__ (as
    code run by exec does). globals(), locals() and vars() return a copy of its
    names, without the modules (which do not cross)."""
    import builtins

    namespace = sys.modules["__main__"].__dict__
    if name in ("eval", "exec"):
        if len(args) == 1 and "globals" not in kwargs:
            args = (args[0], namespace)
        return getattr(builtins, name)(*args, **kwargs)
    if args or kwargs:  # dir(obj), vars(obj): no frame needed
        return getattr(builtins, name)(*args, **kwargs)
    if name == "dir":
        return sorted(namespace)
    return {k: v for k, v in namespace.items() if type(v) is not type(sys)}


# How this interpreter loads its parent's __main__ as __mp_main__: ("module", name)
# when the parent ran `python -m name`, ("path", file) for a script; None if it
# cannot. Passed on to the interpreters this one starts.
main_source: tuple[str, str] | None = None

# True while this interpreter runs the parent's __main__ code: an Executor or an
# interpreter created then means the script lacks an `if __name__ == "__main__":` guard.
loading_main = False

# The parent's __main__ once loaded here as __mp_main__.
_main_module: Any = None


def load_main() -> Any:
    """The parent's __main__ as this interpreter's module __mp_main__, loaded on
    first use.

    `import multiprocessing` (which `from interpool import Executor` does, through
    concurrent.futures.process) sets sys.modules['__mp_main__'] to this
    interpreter's own __main__, as a process started by multiprocessing wants;
    here that alias would send every name lookup back to __mp_main__, endlessly.
    So the module loaded here is kept apart, and such an alias is dropped.
    """
    if _main_module is not None:
        return _main_module
    if sys.modules.get(MAIN_ALIAS) is sys.modules.get("__main__"):
        del sys.modules[MAIN_ALIAS]
    return importlib.import_module(MAIN_ALIAS)


class _MainFinder:
    """Makes the parent's __main__ importable as __mp_main__, on first use."""

    def __init__(self, source: tuple[str, str]) -> None:
        self.kind, self.target = source

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != MAIN_ALIAS:
            return None
        import importlib.util  # here: most workers never load the script

        if self.kind == "path":
            return importlib.util.spec_from_file_location(
                MAIN_ALIAS, self.target, loader=_MainLoader(self.target, None)  # type: ignore[arg-type]
            )
        # `python -m pkg.tool`: the module found by its name, so that its relative
        # imports work, run under the name __mp_main__ (as multiprocessing does).
        real = importlib.util.find_spec(self.target)
        if real is None or real.loader is None:
            raise ModuleNotFoundError(
                f"no module named {self.target!r} (the __main__ module of the parent, "
                f"run with -m) on this interpreter's sys.path", name=self.target
            )
        return importlib.util.spec_from_loader(MAIN_ALIAS, _MainLoader(None, real))  # type: ignore[arg-type]


class _MainLoader:
    """Runs the script at `path`, or the module of spec `real`, as __mp_main__."""

    def __init__(self, path: str | None, real: Any) -> None:
        self.path = path
        self.real = real

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:
        global loading_main, _main_module  # noqa: PLW0603
        real = self.real
        if real is None:
            path = str(self.path)
            with open(path, "rb") as f:
                code = compile(f.read(), path, "exec")
        else:
            code = real.loader.get_code(real.name)
            if code is None:
                raise ImportError(f"no code for {real.name!r}, the __main__ module of the parent",
                                  name=real.name)
            # What runpy gives a module run by name (name apart): relative imports work.
            module.__spec__ = real
            module.__package__ = real.parent
            module.__loader__ = real.loader
            if real.has_location:
                module.__file__ = real.origin
                module.__cached__ = real.cached
        from interpool._refused import ScriptImports

        loading_main = True
        try:
            with ScriptImports(code):
                exec(code, module.__dict__)
        finally:
            loading_main = False
        _main_module = module
        # The script may have imported multiprocessing, which replaced this
        # module in sys.modules by __main__ (see load_main); the import system
        # returns what sys.modules holds now.
        sys.modules[MAIN_ALIAS] = module


class _LazyMain(type(sys)):  # type: ignore[misc]  # types.ModuleType, without importing types
    """The class of __main__ in an interpool interpreter: names it lacks (e.g. a
    class of the parent's script that pickle looks up there) come from the
    parent's __main__, loaded as __mp_main__ on first use. Its own names (those
    of prepare_main and exec) come first."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):  # probes (__file__, __path__...)
            raise AttributeError(f"module '__main__' has no attribute {name!r}")
        return getattr(load_main(), name)


def install_main(source: tuple[str, str] | None) -> None:
    """Lets this interpreter load the parent's __main__ as __mp_main__ when a task
    (or an unpickled object) needs it. Idempotent.

    The interpreter keeps its own __main__ module (where exec runs): only its
    class changes, so that names it lacks resolve in __mp_main__.
    """
    global main_source  # noqa: PLW0603
    if not source or main_source is not None:
        return
    main_source = (source[0], source[1])
    sys.meta_path.append(_MainFinder(main_source))
    main = sys.modules["__main__"]
    if type(main) is type(sys):
        main.__class__ = _LazyMain
        if main_source[0] == "path" and "__file__" not in main.__dict__:
            # The parent's script: what a task reads to find files beside it, and what
            # multiprocessing's spawn and forkserver children run (as __mp_main__) to
            # find the script's functions a task hands them.
            main.__file__ = main_source[1]


def guard_environment() -> None:
    """Makes this interpreter's environment changes (os.putenv, os.unsetenv, which
    os.environ calls) and process spawns (_posixsubprocess.fork_exec, which
    subprocess and multiprocessing use, and os.posix_spawn[p]) hold the process's
    environment lock (interpool.environment_lock()), which interpool also holds
    while it spawns a process. The interpreters share one C environment: a change
    rewrites the array that an exec in another thread may be reading, and that
    spawn then fails (EFAULT; a multiprocessing child is gone with exit code 255).
    numpy's import, for one, sets and removes a variable even when it is refused
    here. Idempotent."""
    import os
    import posix

    from interpool import _interpool

    if getattr(os.putenv, "_interpool_guarded", False):
        return
    lock = _interpool.environment_lock()

    def guarded(call: Any) -> Any:
        def locked(*args: Any, **kwargs: Any) -> Any:
            # A timed wait, renewed: at the program's end interpool interrupts the
            # tasks that all sleep with no deadline (end_stuck_tasks), and this one
            # only waits for a spawn or a change, which ends soon.
            while not lock.acquire(timeout=_GUARD_WAIT):
                pass
            try:
                return call(*args, **kwargs)
            finally:
                lock.release()

        # functools.wraps by hand: functools would load collections in every worker.
        for name in ("__name__", "__qualname__", "__doc__", "__module__"):
            setattr(locked, name, getattr(call, name))
        locked.__wrapped__ = call  # type: ignore[attr-defined]
        locked._interpool_guarded = True  # type: ignore[attr-defined]
        return locked

    # Replaced in posix too, where their __module__ says they live (pickle by
    # reference, functions sent to workers), and in os, where os.environ and
    # subprocess's posix_spawn path look them up at each call.
    for name in ("putenv", "unsetenv", "posix_spawn", "posix_spawnp"):
        if hasattr(posix, name):
            wrapper = guarded(getattr(posix, name))
            setattr(posix, name, wrapper)
            setattr(os, name, wrapper)
    try:
        import _posixsubprocess
    except ImportError:  # no fork_exec on this platform
        return
    _posixsubprocess.fork_exec = guarded(_posixsubprocess.fork_exec)
    loaded = sys.modules.get("subprocess")  # it keeps its own name for fork_exec
    if getattr(loaded, "_fork_exec", None) is not None:
        setattr(loaded, "_fork_exec", _posixsubprocess.fork_exec)  # noqa: B010


# Seconds of one wait for the environment lock (renewed until it is taken).
_GUARD_WAIT = 60.0


def guard_exit() -> None:
    """os._exit (posix._exit) in an Executor's worker ends that worker, not the
    process: the task fails with interpool.WorkerExited and the worker is
    replaced (see _interpool.exit_worker). The interpreter is one of the
    process's, and the C _exit behind os._exit would end every other task and
    the program with it. Idempotent."""
    import os
    import posix

    from interpool import _interpool

    if getattr(os._exit, "_interpool_guarded", False):
        return
    real = posix._exit

    def _exit(status: int) -> NoReturn:
        try:
            _interpool.exit_worker(status)
        except SystemExit:
            raise  # on a thread the task started: that thread ends
        except BaseException:
            # The task ends its worker, whose interpreter then ends.
            import interpool._exit as exits

            exits.drop_atexit_handlers()
            raise

    # posix's names, so that os._exit still pickles by reference (a function
    # sent to workers by name finds this one there).
    for name in ("__name__", "__qualname__", "__doc__", "__module__"):
        setattr(_exit, name, getattr(real, name))
    _exit.__wrapped__ = real  # type: ignore[attr-defined]
    _exit._interpool_guarded = True  # type: ignore[attr-defined]
    posix._exit = _exit
    os._exit = _exit


def setup(shared: dict, source: tuple[str, str] | None) -> None:
    """First thing an Executor worker runs: publishes `shared`, prepares __main__,
    names the thread."""
    import interpool
    from interpool._refused import guard_imports

    guard_environment()
    guard_exit()
    guard_imports()
    interpool.shared._publish(shared)
    install_main(source)
    name_thread()


def name_thread() -> None:
    """threading.current_thread().name (logging's %(threadName)s) in this worker
    is its thread's name (Executor's thread_name_prefix, then _<i>), not
    "Dummy-<n>". Given when threading is imported here, which most tasks never
    do: importing it in every worker would slow their start."""
    import _thread

    from interpool import _interpool

    name = _interpool.worker_thread_name()
    if name is None:
        return
    threading = sys.modules.get("threading")
    if threading is not None:
        threading.current_thread().name = name
    elif not any(isinstance(f, _NameOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _NameOnImport(name, _thread.get_ident()))


class _NameOnImport:
    """Finds threading as the other finders do, then names the worker's thread
    once it is loaded, and steps aside."""

    def __init__(self, name: str, ident: int) -> None:
        self.name = name
        self.ident = ident
        self.real: Any = None

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "threading":
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(name, path, target) if find is not None else None
            if spec is not None and spec.loader is not None:
                self.real = spec.loader
                spec.loader = self
                return spec
        return None

    def create_module(self, spec: Any) -> Any:
        create = getattr(self.real, "create_module", None)
        return None if create is None else create(spec)

    def exec_module(self, module: Any) -> None:
        # The module keeps no trace of this loader.
        module.__spec__.loader = module.__loader__ = self.real
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        self.real.exec_module(module)
        if module.get_ident() == self.ident:  # (not a thread the task started itself)
            module.current_thread().name = self.name


def prepare(sys_path: list, source: tuple[str, str] | None) -> None:
    """First call into an interpreter made by interpool.interpreters.create()."""
    from interpool._refused import guard_imports

    sys.path[:] = sys_path
    guard_environment()
    guard_imports()
    install_main(source)
