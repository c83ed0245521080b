"""bench/harness.py: what every bench script shares: spare loopback ports, a
process's CPU time, and writing a script's own section of bench/RESULTS.md.

Python 3 standard library only. The scripts beside it import it by name (Python
puts a script's own folder first on its path).
"""

import os
import socket
from pathlib import Path

HOST = "127.0.0.1"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def free_ports_in_a_row(count):
    """The first of `count` consecutive ports that are free now."""
    for _ in range(200):
        first = free_port()
        try:
            for offset in range(1, count):
                with socket.socket() as probe:
                    probe.bind((HOST, first + offset))
            return first
        except OSError:
            continue
    raise RuntimeError(f"no {count} free ports in a row")


def cpu_seconds(pid):
    """utime + stime of a process (every thread) so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # fields 14 and 15 of proc(5)


def write_section(results, begin, end, section):
    """Replaces the text from `begin` to `end` in the file `results` with `section`
    (which starts with `begin` and ends with `end`), or appends it if it is not there."""
    text = results.read_text() if results.exists() else ""
    if begin in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    results.write_text(text)
