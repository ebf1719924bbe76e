"""Worker throughput on I/O-bound tasks: bench/worker_throughput.py with every handler waiting 50 ms.

At concurrency 8 the ceiling is 8 / 50 ms = 160 tasks/s; the result compares each contender with
it. Usage: ``python -m bench.worker_throughput_io [worker_throughput's options]``.
"""

from __future__ import annotations

import sys

from bench.worker_throughput import main

if __name__ == "__main__":
    main(["--work-ms", "50", *sys.argv[1:]])
