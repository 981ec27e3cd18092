"""A webhook receiver for the e2e tests: records every delivery, can refuse some."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @cached_property
    def json(self) -> Any:
        # Parsed once: tests poll every delivery a few times a second, and after the bursts
        # the receiver holds tens of thousands of them (parsing them all on each poll took
        # most of a core from the stack under test).
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers 500 to the first `refuse_first` deliveries, 204 after that."""

    refuse_first: int = 0
    deliveries: list[Delivery] = field(default_factory=list)
    refused: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hooks/gridline"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    if len(body) < length:  # the sender died mid-request: not a delivery
                        status = 400
                    elif receiver.refused < receiver.refuse_first:
                        receiver.refused += 1
                        status = 500
                    else:
                        receiver.deliveries.append(
                            Delivery({k.lower(): v for k, v in self.headers.items()}, body)
                        )
                        status = 204
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def received(self) -> list[Delivery]:
        """Every delivery so far (a copy: the server thread goes on appending)."""
        with self._lock:
            return list(self.deliveries)

    def notification_ids(self, kind: str) -> dict[str, set[str]]:
        """work_order_id -> the distinct webhook ids of its `kind` deliveries."""
        ids: dict[str, set[str]] = {}
        for d in self.received():
            body = d.json
            if body["type"] == kind:
                ids.setdefault(body["work_order_id"], set()).add(d.headers["webhook-id"])
        return ids

    def for_order(self, work_order_id: str) -> list[Delivery]:
        return [d for d in self.received() if d.json["work_order_id"] == work_order_id]
