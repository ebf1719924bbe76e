"""Peak memory of the calling process, from the kernel's high-water mark of its own address space.

``ru_maxrss`` (getrusage, wait4) is not used: Linux folds the RSS high-water mark of the address
space a process had before ``exec`` into it, so a child started by a big parent reports the
parent's peak. ``VmHWM`` in /proc/self/status belongs to the current address space only.
"""

from __future__ import annotations

import resource


def peak_rss_mib() -> float:
    """This process's peak RSS in MiB (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
