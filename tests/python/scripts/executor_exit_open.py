"""Run as a script by test_executor_main.py: the program ends while an Executor is
still open. It must exit normally (no hang, no fatal error) after the tasks it
accepted have run.

    python executor_exit_open.py MODE LOG

MODE: pending   - tasks queued and running at exit, executor never shut down
      dropped   - an executor nobody references (collected at once), task queued
      map       - a map() iterator consumed halfway
      main_fn   - pending tasks of a function defined in this script
      error     - the script ends with an uncaught exception, executor open
      sys_exit  - sys.exit(3) with tasks pending
Each task appends a line to LOG; the script prints "script end" last.
"""

import sys

import executor_tasks as T
import interpool


def main_fn_task(log, text):
    return T.append_line(log, text)


def run(mode, log):
    if mode == "pending":
        ex = interpool.Executor(2)
        for i in range(6):
            ex.submit(T.sleep_then, 0.1, None)
            ex.submit(T.append_line, log, f"task{i}")
        globals()["kept"] = ex
    elif mode == "dropped":
        interpool.Executor(2).submit(T.append_line, log, "dropped")
    elif mode == "map":
        ex = interpool.Executor(2)
        it = ex.map(T.sleep_then, [0.05] * 40, range(40), chunksize=1)
        assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
        globals()["kept"] = (ex, it)
    elif mode == "main_fn":
        ex = interpool.Executor(2)
        for i in range(4):
            ex.submit(main_fn_task, log, f"main{i}")
        globals()["kept"] = ex
    elif mode == "error":
        ex = interpool.Executor(2)
        ex.submit(T.sleep_then, 0.2, None)
        ex.submit(T.append_line, log, "before error")
        globals()["kept"] = ex
        print("script end", flush=True)
        raise ValueError("the script fails with an executor open")
    elif mode == "sys_exit":
        ex = interpool.Executor(2)
        ex.submit(T.sleep_then, 0.2, None)
        ex.submit(T.append_line, log, "before exit")
        globals()["kept"] = ex
        print("script end", flush=True)
        sys.exit(3)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print("script end", flush=True)


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2])
