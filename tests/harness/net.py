"""Loopback networking helpers shared by every fixture."""

from __future__ import annotations

import random
import socket
import time

# Ports handed out come from below Linux's ephemeral range (32768-60999 by default), where outgoing
# connections take their local ports: a port the kernel picked for bind(0) is free now, but under load an
# outgoing connection could take it before the server that was given it binds ("address already in use").
_PORTS = range(15000, 32000)
_given: set[int] = set()


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now and was not handed out before in this process."""
    for _ in range(1000):
        port = random.choice(_PORTS)
        if port not in _given and _bindable(port):
            _given.add(port)
            return port
    raise RuntimeError(f"no free port in {_PORTS}")


def wait_for_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts TCP connections on host:port, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")
