"""A real HTTP server on 127.0.0.1 for testing remote backends.

`handler(path, body, headers) -> (status, answer)` decides each reply; every
request is recorded so tests can check exactly what the client sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[str, Any, dict[str, str]], tuple[int, Any]]


@dataclass
class RecordedRequest:
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class JsonServer:
    url: str
    requests: list[RecordedRequest] = field(default_factory=list)


@contextmanager
def json_server(handler: Handler) -> Iterator[JsonServer]:
    state = JsonServer(url="")

    class _Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server API)
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            body = json.loads(raw) if raw else None
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.requests.append(RecordedRequest(self.path, body, headers))
            status, answer = handler(self.path, body, headers)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
