"""The request handler the local stack's HTTP helpers share (the Lambda gateway, the Lambda
host, the fault proxy): quiet, without Nagle's delay, and one way to reply."""

from http.server import BaseHTTPRequestHandler


class QuietHandler(BaseHTTPRequestHandler):
    # Headers and body go out in two writes: with Nagle's algorithm the second waits for the
    # client's delayed ACK, adding about 40 ms to every call.
    disable_nagle_algorithm = True
    # The Content-Type of a reply whose headers name none; None sends none (the fault proxy
    # passes on whatever the emulator answered).
    content_type: str | None = "application/json"

    def log_message(self, format, *args):  # noqa: A002 - quiet by default
        pass

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        headers = headers or {}
        self.send_response(status)
        if self.content_type and not any(key.lower() == "content-type" for key in headers):
            self.send_header("Content-Type", self.content_type)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
