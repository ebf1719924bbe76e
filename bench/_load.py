"""HTTP load generator for the serving benchmark, run as its own process.

``C`` keep-alive connections, each sending the same POST back to back (closed loop) for a fixed
time after a warm-up; a plain asyncio HTTP/1.1 client, so the generator costs far less CPU per
request than an HTTP library would and the server, not the client, is what gets measured. Prints
one JSON object: requests, errors (non-200 answers and broken connections), requests/s, p50, p99.

Usage: python -m bench._load URL --body-file F --concurrency C [--duration S] [--warmup S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from urllib.parse import urlsplit


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.first_error: str | None = None

    def error(self, what: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or what


async def _read_body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        if b":" in line:
            key, _, value = line.partition(b":")
            headers[key.strip().lower()] = value.strip()
    if b"content-length" in headers:
        return await reader.readexactly(int(headers[b"content-length"]))
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    raise ConnectionError("response without length")


async def _client(host: str, port: int, request: bytes, start: float, stop: float, stats: Stats) -> None:
    reader = writer = None
    while time.perf_counter() < stop:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            began = time.perf_counter()
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            await _read_body(reader, head)
            took = time.perf_counter() - began
            status = int(head.split(b" ", 2)[1])
            if began >= start:
                if status == 200:
                    stats.latencies.append(took)
                else:
                    stats.error(f"HTTP {status}")
            if b"connection: close" in head.lower():
                writer.close()
                reader = writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError) as exc:
            if time.perf_counter() >= start:
                stats.error(f"{type(exc).__name__}: {exc}")
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


async def run(url: str, body: bytes, concurrency: int, duration: float, warmup: float) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    stats = Stats()
    start = time.perf_counter() + warmup
    stop = start + duration
    await asyncio.gather(*(_client(host, port, request, start, stop, stats) for _ in range(concurrency)))
    lat = sorted(stats.latencies)

    def pct(q: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 2) if lat else None

    return {
        "concurrency": concurrency,
        "requests": len(lat),
        "errors": stats.errors,
        "rps": round(len(lat) / duration, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        **({"first_error": stats.first_error} if stats.first_error else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--body-file", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    result = asyncio.run(run(args.url, args.body_file.read_bytes(), args.concurrency, args.duration, args.warmup))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
