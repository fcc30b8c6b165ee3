"""A running process's CPU time, memory and threads, read from /proc (Linux only)."""

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far, all its threads together."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def status_field(pid: int, name: str) -> str:
    """A field of /proc/PID/status, such as "VmRSS" ("123456 kB") or "Threads"."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise KeyError(name)


def resident_mb(pid: int) -> float:
    return int(status_field(pid, "VmRSS").split()[0]) / 1024


def peak_resident_mb(pid: int) -> float:
    """The most resident memory the process has had (VmHWM)."""
    return int(status_field(pid, "VmHWM").split()[0]) / 1024


def thread_count(pid: int) -> int:
    return int(status_field(pid, "Threads"))
