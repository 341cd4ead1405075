"""The request handler the local stack's HTTP helpers share: quiet, without Nagle's delay,
answering JSON."""

from http.server import BaseHTTPRequestHandler


class JsonHandler(BaseHTTPRequestHandler):
    # Headers and body go out in two writes: with Nagle's algorithm the second waits for the
    # client's delayed ACK, adding about 40 ms to every call.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # noqa: A002 - quiet by default
        pass

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
