"""The c2sp tlog-witness HTTP interface of a :class:`~weightvault.records.Witness`.

``POST /add-checkpoint`` (old size, proof lines, blank line, checkpoint) answers
the cosignature lines, or the spec's status: 400, 403, 404, 409 (body: the size
last cosigned, ``text/x.tlog.size``), 422. ``GET /<sha256(origin) hex>/checkpoint``
serves the latest cosigned checkpoint (the monitoring API). There is no other
authentication, as the spec says: the log's signatures are checked.
"""

from __future__ import annotations

import hashlib
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from weightvault.crypto.notes import NoteError, parse_note
from weightvault.errors import ConflictError, LogVerificationError
from weightvault.records._witness import Witness
from weightvault.tlog import parse_checkpoint

__all__ = ["WitnessServer"]

_MAX_BODY = 1 << 20
_MONITOR = re.compile(r"^/([0-9a-f]{64})/checkpoint$")


class WitnessServer(ThreadingHTTPServer):
    """An HTTP server for one witness; ``serve_forever()`` runs it, ``shutdown()`` stops it."""

    daemon_threads = True

    def __init__(self, witness: Witness, address: tuple[str, int]) -> None:
        self.witness = witness
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        """``http://host:port`` it listens on."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: WitnessServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the stdlib handler writes every request to stderr."""

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        """``add-checkpoint``."""
        if self.path != "/add-checkpoint":
            self._reply(404, b"not found\n")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._reply(411, b"a Content-Length is required\n")
            return
        if not 0 <= length <= _MAX_BODY:
            self._reply(413, b"the request is too large\n")
            return
        body = self.rfile.read(length)
        witness = self.server.witness
        try:
            lines = witness.add_checkpoint_request(body)
        except ConflictError:
            self._reply(409, f"{self._cosigned_size(body)}\n".encode(), "text/x.tlog.size")
            return
        except LogVerificationError as exc:
            self._reply(exc.status or 422, (exc.message + "\n").encode())
            return
        self._reply(200, lines)

    def _cosigned_size(self, body: bytes) -> int:
        try:
            note = body.partition(b"\n\n")[2]
            origin = parse_checkpoint(parse_note(note).text).origin
        except NoteError:
            return 0
        latest = self.server.witness.latest(origin)
        return latest.size if latest else 0

    def do_GET(self) -> None:
        """The latest cosigned checkpoint of a log, by the SHA-256 of its origin."""
        match = _MONITOR.match(self.path)
        if match is None:
            self._reply(404, b"not found\n")
            return
        witness = self.server.witness
        for origin in witness.logs():
            if hashlib.sha256(origin.encode()).hexdigest() == match.group(1):
                note = witness.latest_note(origin)
                if note is not None:
                    self._reply(200, note)
                    return
        self._reply(404, b"no checkpoint cosigned for that log\n")
