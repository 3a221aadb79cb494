"""``python -m tests.reliability.net_driver PLAN.json REPORT.json``: run several in2x commands in
one interpreter (one import cost) and record, per command, its exit status, its wall time and
every attempt to reach the network, seen by a ``sys.addaudithook`` hook on socket connects and
DNS lookups (Unix-domain sockets excepted). tests/reliability/test_network.py runs it without
HF_HUB_OFFLINE, with an empty HF_HOME, inside a network namespace with no network
(``unshare -rn``) or else behind a proxy on a closed port."""

from __future__ import annotations

import json
import socket
import sys
import time


def main() -> None:
    plan = json.loads(open(sys.argv[1], encoding="utf-8").read())
    attempts: list[str] = []

    def hook(event: str, args: tuple) -> None:
        if event == "socket.connect":
            sock, address = args[0], args[1]
            if getattr(sock, "family", None) != getattr(socket, "AF_UNIX", None):
                attempts.append(f"connect {address!r}")
        elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
            attempts.append(f"{event} {args[0]!r}")

    sys.addaudithook(hook)
    from in2x_cli import cli

    report = []
    for label, argv in plan:
        del attempts[:]
        t0 = time.monotonic()
        code = 0
        try:
            cli.main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException as exc:  # noqa: BLE001 - reported, the next command still runs
            code = f"{type(exc).__name__}: {exc}"
        report.append({"command": label, "exit": code, "seconds": round(time.monotonic() - t0, 2), "network_attempts": list(attempts)})
        with open(sys.argv[2], "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()
