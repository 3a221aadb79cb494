"""Run ``in2x ARGS`` in this process and record its peak memory.

Usage: python -m tests.reliability.rss_probe REPORT.json ARGS...

REPORT.json gets ``{"exit": code, "peak_rss_kb": VmHWM, "peak_anon_kb": ..., "baseline_anon_kb": ...}``:
``peak_rss_kb`` is the kernel's high-water mark of this process's resident memory (file-backed
pages such as a memory-mapped embedding cache included; VmHWM, not ru_maxrss, which keeps the
forking parent's size across exec); ``peak_anon_kb`` is the largest RssAnon (heap, the
memory that streaming bounds) seen by a 5 ms sampler thread; ``baseline_anon_kb`` is RssAnon
after the command's imports, just before its work starts (so growth = peak - baseline).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time


def _status_kb(field: str = "RssAnon:") -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _anon_kb() -> int:
    return _status_kb("RssAnon:")


def main() -> None:
    report, argv = sys.argv[1], sys.argv[2:]
    peak = {"anon": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak["anon"] = max(peak["anon"], _anon_kb())
            time.sleep(0.005)

    code = 0
    from in2x_cli import cli  # the command modules: imported before the baseline is taken

    baseline = _anon_kb()
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        cli.main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        stop.set()
        thread.join()
        peak["anon"] = max(peak["anon"], _anon_kb())
        with open(report, "w", encoding="utf-8") as fh:
            json.dump({"exit": code, "peak_rss_kb": _status_kb("VmHWM:"), "peak_anon_kb": peak["anon"], "baseline_anon_kb": baseline}, fh)
        sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
