"""Emulate the developer.uscis.gov sandbox on 127.0.0.1: tokens, case statuses, limits, faults.

Start it in-process with ``EmulatorServer(config).start()`` (or as a context manager), or
block with ``serve_emulator(port)``. Control it over HTTP: ``POST /_emulator/faults``,
``POST /_emulator/config``, ``POST /_emulator/reset`` and ``GET /_emulator/stats`` (which
includes every request's arrival time, to count the gaps between requests at the server).
The behaviour lives in `emulator_api`, the cases in `emulator_cases`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

from pipeline.sources.uscis.emulator_api import (
    FAULT_KINDS,
    Emulator,
    EmulatorConfig,
    FaultConfig,
    Reply,
    _errors,
)
from pipeline.sources.uscis.emulator_cases import (
    FORMS,
    PATHS,
    STEPS,
    CasePlan,
    load_sandbox_receipts,
    plan_case,
    synthetic_receipts,
)

__all__ = [
    "FAULT_KINDS", "FORMS", "PATHS", "STEPS", "CasePlan", "Emulator", "EmulatorConfig",
    "EmulatorServer", "FaultConfig", "Reply", "load_sandbox_receipts", "plan_case",
    "serve_emulator", "synthetic_receipts",
]

log = logging.getLogger(__name__)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        super().__init__(address, _Handler)
        self.emulator = emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client hangs up (the timeout fault makes them)."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "uscis-sandbox-emulator"
    timeout = 30  # close idle keep-alive connections
    disable_nagle_algorithm = True  # headers and body go in two writes; avoid 40 ms stalls

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def parse_request(self) -> bool:
        """Note the arrival time as soon as the request line is read (for spike arrest)."""
        self.arrived_at = time.time()
        return super().parse_request()

    def _dispatch(self, method: str) -> None:
        server = cast(_HttpServer, self.server)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = server.emulator.handle(method, self.path, headers, body, self.arrived_at)
        except Exception:  # an emulator bug must still produce an answer
            log.exception("emulator failed on %s %s", method, self.path)
            reply = _errors(500, "EMULATOR_BUG", "The emulator failed; see its log.")
        if reply.delay_s and server.emulator.stopping.wait(reply.delay_s):
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("emulator: " + format, *args)


class EmulatorServer:
    """The emulator on a real socket; port 0 picks a free port, read back from ``port``."""

    def __init__(
        self, config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.emulator = Emulator(config)
        self._http = _HttpServer((host, port), self.emulator)
        self._thread: threading.Thread | None = None
        self._state_lock = threading.Lock()
        self._serving = False

    @property
    def port(self) -> int:
        """Return the bound TCP port."""
        return int(self._http.server_address[1])

    @property
    def base_url(self) -> str:
        """Return the base URL to give an API client."""
        return f"http://{self._http.server_address[0]!s}:{self.port}"

    def start(self) -> EmulatorServer:
        """Serve in a background daemon thread and return self."""
        with self._state_lock:
            self._serving = True
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until ``stop`` is called from another thread."""
        with self._state_lock:
            if self.emulator.stopping.is_set():
                return
            self._serving = True
        self._http.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        """Stop serving, release hung requests and close the socket."""
        with self._state_lock:
            self.emulator.stopping.set()
            serving, self._serving = self._serving, False
        if serving:  # safe even if serve_forever has not started its loop yet
            self._http.shutdown()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._http.server_close()

    def __enter__(self) -> EmulatorServer:
        return self if self._serving else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_emulator(
    port: int,
    *,
    host: str = "127.0.0.1",
    config: EmulatorConfig | None = None,
    on_ready: Callable[[EmulatorServer], None] | None = None,
) -> None:
    """Serve the emulator until interrupted (the ``timelines emulator`` command)."""
    server = EmulatorServer(config, host=host, port=port)
    log.info("USCIS sandbox emulator listening on %s", server.base_url)
    if on_ready is not None:
        on_ready(server)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
