"""The machine a measurement ran on, written beside its numbers by the demo
(``python -m interpool demo --json``) and by the benchmarks (benchmarks/_common.py):
CPU, memory, OS, Python, the interpool build, and the CPU time other work took."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from typing import Any

import interpool

KIB_PER_GIB = 1024 * 1024


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _stat_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of every CPU, from /proc/stat."""
    text = read_text("/proc/stat")
    if not text:
        return None
    fields = [int(x) for x in text.splitlines()[0].split()[1:]]
    total = sum(fields[:8])
    return total - fields[3] - fields[4], total


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Load:
    """CPU time taken by other processes between creation and others(): busy time
    of every CPU (/proc/stat) minus this process's own (and its reaped children's)."""

    HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self) -> None:
        self.jiffies = _stat_jiffies()
        self.own = _own_cpu()
        self.wall = time.monotonic()

    def others(self) -> dict[str, float] | None:
        now = _stat_jiffies()
        if now is None or self.jiffies is None:
            return None
        busy = (now[0] - self.jiffies[0]) / self.HZ
        wall = time.monotonic() - self.wall
        others = max(0.0, busy - (_own_cpu() - self.own))
        return {"wall_s": round(wall, 2), "other_cpu_s": round(others, 2),
                "other_cpus_avg": round(others / wall, 2) if wall > 0 else 0.0}


def busy_cpus(seconds: float = 1.0) -> float | None:
    """CPUs kept busy by other processes over the next `seconds`.

    Sampled before a measurement starts, this is a better guide than the load
    average, which lags by a minute.
    """
    load = Load()
    time.sleep(seconds)
    o = load.others()
    return None if o is None else o["other_cpus_avg"]


def machine_info(sample_load: bool = True) -> dict[str, Any]:
    """The machine, the Python, the interpool build and (sample_load) the load now."""
    cpuinfo = read_text("/proc/cpuinfo") or ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor() or "?")
    meminfo = read_text("/proc/meminfo") or ""
    mem_kib = next((int(line.split()[1]) for line in meminfo.splitlines()
                    if line.startswith("MemTotal:")), None)
    osrel = read_text("/etc/os-release") or ""
    pretty = next((line.split("=", 1)[1].strip().strip('"') for line in osrel.splitlines()
                   if line.startswith("PRETTY_NAME=")), platform.system())
    info: dict[str, Any] = {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "usable_cpus": interpool.usable_cpus(),
        "ram_gib": round(mem_kib / KIB_PER_GIB, 1) if mem_kib else None,
        "os": pretty,
        "kernel": platform.release(),
        "platform": platform.platform(),
        "implementation": platform.python_implementation(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "interpool": interpool.__version__,
        "interpool_module": os.path.dirname(interpool.__file__),
    }
    if sample_load:
        info["loadavg_start"] = loadavg()
        info["busy_cpus_start"] = busy_cpus()
    return info


def machine_line(info: dict[str, Any]) -> str:
    """One line: CPU, CPUs, RAM, OS, Python, interpool."""
    return (f"{info.get('cpu_model', '?')}, {info.get('cpu_count', '?')} CPUs "
            f"({info.get('usable_cpus', '?')} usable), {info.get('ram_gib', '?')} GiB RAM, "
            f"{info.get('os', '?')}, Linux {info.get('kernel', '?')}; "
            f"Python {info.get('python', '?')} ({info.get('python_executable', '?')}), "
            f"interpool {info.get('interpool', '?')}")


def write_json(path: str, data: dict[str, Any]) -> None:
    """Writes `data` to `path`, indented, and says so."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    print(f"wrote {path}")
