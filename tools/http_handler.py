"""The request handler the local stack's HTTP helpers share (the Lambda gateway, the Lambda
host, the fault proxy, the fake GitHub): quiet, without Nagle's delay, and one way to reply;
and how a helper serves it."""

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from parent_watch import exit_with_parent


def serve(handler, port: int, watch_parent: bool = True) -> None:
    """Serves `handler` on loopback `port` (0: a free one), a thread per request, and prints
    `PORT <n>` once it listens (what the local stack reads); runs until the process ends, or
    its parent does if `watch_parent`."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    if watch_parent:
        exit_with_parent()
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


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
