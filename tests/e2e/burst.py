"""An open-loop burst of Open311 POSTs for the e2e tests, light enough to offer 1,000+/s.

Request i is due at start + i / rate, whatever the answers so far (open loop); it goes out
on a free keep-alive connection (raw HTTP/1.1 on asyncio, so the client costs little of
the two cores the stack shares). A request that finds no free connection waits for one and
is counted late. Refused connections (the service is down) are answers too: not accepted.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit


@dataclass
class BurstResult:
    offered: int
    seconds: float  # from the first request due to the last one sent
    accepted: list[str] = field(default_factory=list)  # service_request_ids answered 200
    statuses: dict[str, int] = field(default_factory=dict)  # status code or error -> count
    late: int = 0  # sent more than 10 ms after they were due (no free connection)

    @property
    def offered_per_second(self) -> float:
        return self.offered / self.seconds if self.seconds else 0.0


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, request: bytes) -> tuple[int, bytes]:
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        try:
            self._writer.write(request)
            head = await self._reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            return status, await self._reader.readexactly(length)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def open311_burst(
    base_url: str, forms: list[dict[str, str]], rate: float, connections: int = 128
) -> BurstResult:
    """POST each form to `{base_url}/open311/v2/requests.json` at `rate` per second."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    requests = []
    for form in forms:
        body = urlencode(form).encode()
        requests.append(
            b"POST /open311/v2/requests.json HTTP/1.1\r\nHost: %s:%d\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
            % (host.encode(), port, len(body), body)
        )
    free: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(connections):
        free.put_nowait(_Connection(host, port))
    result = BurstResult(offered=len(requests), seconds=0.0)

    def count(outcome: str) -> None:
        result.statuses[outcome] = result.statuses.get(outcome, 0) + 1

    async def send(conn: _Connection, request: bytes) -> None:
        try:
            status, body = await conn.post(request)
        except (OSError, asyncio.IncompleteReadError) as exc:
            count(type(exc).__name__)
        else:
            count(str(status))
            if status == 200:
                result.accepted.append(json.loads(body)[0]["service_request_id"])
        finally:
            free.put_nowait(conn)

    tasks = []
    start = time.monotonic()
    for i, request in enumerate(requests):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        conn = await free.get()
        if time.monotonic() - due > 0.010:
            result.late += 1
        tasks.append(asyncio.create_task(send(conn, request)))
    result.seconds = max(time.monotonic() - start, (len(requests) - 1) / rate)
    await asyncio.gather(*tasks)
    while not free.empty():
        free.get_nowait().close()
    return result
