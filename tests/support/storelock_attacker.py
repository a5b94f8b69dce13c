"""A local attacker against the embedded store's internal ports, run as another user.

The test reads this file and runs it with ``python -c SOURCE SPEC_JSON`` as
``nobody`` (so the file need not be readable by that user). Standard library
only; it knows what any local user can learn: the listening ports (``ss -ltn``),
the bucket names (the vault's default prefix), and, to make the attack
stronger, the object keys and file ids the test hands it. It prints one JSON
object: for each attack, ``harm`` (did it read, write or delete what it should
not) and a short ``detail``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import selectors
import socket
import ssl
import subprocess
import sys
import time
import uuid
from typing import Any

HOST = "127.0.0.1"
TIMEOUT = 20.0


def _no_verify() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One HTTP request, over plain HTTP or, if the port wants it, TLS without a client cert."""
    last = "no attempt"
    for scheme in ("http", "https"):
        conn: http.client.HTTPConnection
        if scheme == "http":
            conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
        else:
            conn = http.client.HTTPSConnection(HOST, port, timeout=TIMEOUT, context=_no_verify())
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            last = f"{scheme}: {type(exc).__name__}: {exc}"[:200]
            continue
        finally:
            conn.close()
        if scheme == "http" and resp.status == 400 and b"HTTPS server" in data:
            last = "http: the port speaks only TLS"
            continue
        return {
            "scheme": scheme,
            "status": resp.status,
            "body": data,
            "headers": {k.lower(): v for k, v in resp.getheaders()},
        }
    return {"status": None, "error": last, "body": b"", "headers": {}}


def _ok(resp: dict[str, Any]) -> bool:
    return resp["status"] is not None and 200 <= resp["status"] < 300


def _detail(resp: dict[str, Any]) -> str:
    if resp["status"] is None:
        return str(resp["error"])
    return f"{resp['scheme']} {resp['status']} {resp['body'][:120]!r}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def filer_delete(spec: dict[str, Any]) -> dict[str, Any]:
    """HTTP DELETE of the COMPLIANCE-locked cold manifest (and its artifact) on the filer."""
    path = f"/buckets/{spec['buckets']['cold']}/{spec['cold_manifest']}"
    resp = request(spec["ports"]["filer"], "DELETE", path)
    folder = path.rsplit("/", 1)[0]
    resp2 = request(spec["ports"]["filer"], "DELETE", f"{folder}?recursive=true")
    return {"harm": _ok(resp) or _ok(resp2), "detail": f"{_detail(resp)} | {_detail(resp2)}"}


def filer_list_envelopes(spec: dict[str, Any]) -> dict[str, Any]:
    """List the envelope bucket through the filer."""
    path = f"/buckets/{spec['buckets']['envelopes']}/envelopes/"
    resp = request(spec["ports"]["filer"], "GET", path, headers={"Accept": "application/json"})
    harm = _ok(resp) and spec["artifact_id"].encode() in resp["body"]
    return {"harm": harm, "detail": _detail(resp)}


def _envelope_fid(spec: dict[str, Any]) -> str | None:
    if spec.get("envelope_fid"):
        return str(spec["envelope_fid"])
    path = f"/buckets/{spec['buckets']['envelopes']}/{spec['envelope_filer_key']}?metadata=true"
    resp = request(spec["ports"]["filer"], "GET", path, headers={"Accept": "application/json"})
    if not _ok(resp):
        return None
    try:
        chunks = json.loads(resp["body"]).get("chunks") or []
    except ValueError:
        return None
    return str(chunks[0]["file_id"]) if chunks else None


def filer_read_envelope(spec: dict[str, Any]) -> dict[str, Any]:
    """Read the wrapped DEK (the envelope object) through the filer."""
    path = f"/buckets/{spec['buckets']['envelopes']}/{spec['envelope_filer_key']}"
    resp = request(spec["ports"]["filer"], "GET", path)
    harm = _ok(resp) and _sha(resp["body"]) == spec["envelope_sha256"]
    return {"harm": harm, "detail": _detail(resp)}


def volume_read_envelope(spec: dict[str, Any]) -> dict[str, Any]:
    """Read the envelope's needle from the volume server, with a token from the master's lookup."""
    fid = _envelope_fid(spec)
    if fid is None:
        return {"harm": False, "detail": "no file id learnt"}
    lookup = request(spec["ports"]["master"], "GET", f"/dir/lookup?fileId={fid}&read=yes")
    headers = {}
    if "authorization" in lookup["headers"]:
        headers["Authorization"] = lookup["headers"]["authorization"]
    reads = [
        request(spec["ports"]["volume"], "GET", f"/{fid}", headers=headers),
        request(spec["ports"]["volume"], "GET", f"/{fid}"),
    ]
    harm = any(_ok(r) and _sha(r["body"]) == spec["envelope_sha256"] for r in reads)
    return {"harm": harm, "detail": " | ".join([_detail(lookup), *map(_detail, reads)])}


def _multipart(data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def filer_upload(spec: dict[str, Any], bucket: str) -> dict[str, Any]:
    """Upload an object into ``bucket`` through the filer's HTTP API (PUT and POST)."""
    path = f"/buckets/{spec['buckets'][bucket]}/{spec['planted_key']}"
    put = request(spec["ports"]["filer"], "PUT", path, body=b"planted by nobody")
    body, ctype = _multipart(b"planted by nobody")
    post = request(spec["ports"]["filer"], "POST", path, body=body, headers={"Content-Type": ctype})
    return {"harm": _ok(put) or _ok(post), "detail": f"{_detail(put)} | {_detail(post)}"}


def master_assign_upload(spec: dict[str, Any], bucket: str) -> dict[str, Any]:
    """Ask the master for a file id (and its write token) in a bucket's collection; write it."""
    collection = spec["buckets"][bucket]
    assign = request(spec["ports"]["master"], "GET", f"/dir/assign?collection={collection}")
    if not _ok(assign):
        return {"harm": False, "detail": _detail(assign)}
    answer = json.loads(assign["body"])
    body, ctype = _multipart(b"planted by nobody")
    headers = {"Content-Type": ctype}
    if "authorization" in assign["headers"]:
        headers["Authorization"] = assign["headers"]["authorization"]
    port = int(answer["url"].rsplit(":", 1)[1])
    write = request(port, "POST", f"/{answer['fid']}", body=body, headers=headers)
    return {"harm": _ok(write), "detail": f"{_detail(assign)} | {_detail(write)}"}


def master_col_delete(spec: dict[str, Any]) -> dict[str, Any]:
    """Drop the cold bucket's whole collection (every volume) through the master."""
    collection = spec["buckets"]["cold"]
    resp = request(spec["ports"]["master"], "GET", f"/col/delete?collection={collection}")
    return {"harm": _ok(resp), "detail": _detail(resp)}


def master_status(spec: dict[str, Any]) -> dict[str, Any]:
    """Read the master's volume layout (which collections, volumes, sizes)."""
    resp = request(spec["ports"]["master"], "GET", "/vol/status")
    return {"harm": _ok(resp), "detail": _detail(resp)}


def _weed(spec: dict[str, Any], args: list[str], stdin: str = "", timeout: float = 30.0) -> str:
    try:
        done = subprocess.run(
            [spec["weed"], *args],
            input=stdin.encode(),
            capture_output=True,
            timeout=timeout,
            cwd="/",
            check=False,
        )
        return (done.stdout + done.stderr).decode(errors="replace")
    except subprocess.TimeoutExpired as exc:
        return ((exc.stdout or b"") + (exc.stderr or b"")).decode(errors="replace")


def _weed_until(spec: dict[str, Any], args: list[str], needle: str, timeout: float) -> str:
    """Run weed until it prints ``needle``, exits, or ``timeout`` passes; what it printed."""
    proc = subprocess.Popen(
        [spec["weed"], *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd="/",
    )
    assert proc.stdout is not None
    out = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while needle.encode() not in out and time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
    proc.kill()
    proc.wait()
    proc.stdout.close()
    return out.decode(errors="replace")


def grpc_list_entries(spec: dict[str, Any]) -> dict[str, Any]:
    """Stream every filer entry (SubscribeMetadata over gRPC) with weed's own client, no cert."""
    ports = spec["ports"]
    filer = f"{HOST}:{ports['filer']}.{ports['filer_grpc']}"
    args = ["filer.meta.tail", f"-filer={filer}", "-timeAgo=87600h"]
    out = _weed_until(spec, args, spec["artifact_id"], timeout=60.0)
    return {"harm": spec["artifact_id"] in out, "detail": out[-300:]}


def grpc_delete_entry(spec: dict[str, Any]) -> dict[str, Any]:
    """Delete the cold artifact's entries (DeleteEntry over gRPC) from ``weed shell``, no cert."""
    ports = spec["ports"]
    folder = f"/buckets/{spec['buckets']['cold']}/{spec['cold_manifest'].rsplit('/', 1)[0]}"
    args = [
        "shell",
        f"-master={HOST}:{ports['master']}.{ports['master_grpc']}",
        f"-filer={HOST}:{ports['filer']}.{ports['filer_grpc']}",
    ]
    # Locked out, weed shell waits for ever for a connection; let in, it acts in a second.
    out = _weed(spec, args, stdin=f"fs.rm -r {folder}\nfs.ls {folder}\nexit\n", timeout=30.0)
    # The test decides the harm from the store itself; the output shows what weed said.
    return {"harm": False, "detail": out[-300:]}


def anonymous_s3(spec: dict[str, Any]) -> dict[str, Any]:
    """Unsigned S3 requests to the gateway: read, list, write, delete."""
    port, b = spec["ports"]["s3"], spec["buckets"]
    tries = [
        request(port, "GET", f"/{b['cold']}/{spec['cold_manifest']}"),
        request(port, "GET", f"/{b['envelopes']}/{spec['envelope_key']}"),
        request(port, "GET", f"/{b['envelopes']}?list-type=2"),
        request(port, "PUT", f"/{b['hot']}/{spec['planted_key']}", body=b"planted"),
        request(port, "DELETE", f"/{b['cold']}/{spec['cold_manifest']}"),
    ]
    return {"harm": any(map(_ok, tries)), "detail": " | ".join(map(_detail, tries))}


def internal_ports(spec: dict[str, Any]) -> dict[str, Any]:
    """Any HTTP answer at all from the master, volume, filer and admin HTTP ports."""
    answers = {}
    for name in ("master", "volume", "filer", "admin"):
        resp = request(spec["ports"][name], "GET", "/")
        answers[name] = resp["status"] is not None
    return {"harm": any(answers.values()), "detail": json.dumps(answers)}


_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _h2_settings_reply(sock: socket.socket) -> bool:
    sock.sendall(_H2_PREFACE)
    head = b""
    while len(head) < 9:
        chunk = sock.recv(9 - len(head))
        if not chunk:
            return False
        head += chunk
    return head[3] == 0x04  # a SETTINGS frame: an HTTP/2 (gRPC) server talks to us


def grpc_ports(spec: dict[str, Any]) -> dict[str, Any]:
    """An HTTP/2 session with any gRPC port, in plain text or TLS without a client cert."""
    answers = {}
    for name in ("master_grpc", "volume_grpc", "filer_grpc", "s3_grpc", "admin_grpc"):
        talked = False
        for tls in (False, True):
            try:
                with socket.create_connection((HOST, spec["ports"][name]), TIMEOUT) as raw:
                    if tls:
                        ctx = _no_verify()
                        ctx.set_alpn_protocols(["h2"])
                        with ctx.wrap_socket(raw) as sock:
                            talked = talked or _h2_settings_reply(sock)
                    else:
                        talked = talked or _h2_settings_reply(raw)
            except OSError:
                pass
        answers[name] = talked
    return {"harm": any(answers.values()), "detail": json.dumps(answers)}


def local_files(spec: dict[str, Any]) -> dict[str, Any]:
    """Read or list the store's files on disk."""
    opened = []
    for path in spec["paths"]:
        try:
            if os.path.isdir(path):
                os.listdir(path)
            else:
                with open(path, "rb") as fh:
                    fh.read(1)
            opened.append(path)
        except OSError:
            pass
    return {"harm": bool(opened), "detail": json.dumps(opened)}


def local_sockets(spec: dict[str, Any]) -> dict[str, Any]:
    """Connect to the unix sockets weed opens in /tmp for its servers."""
    connected = []
    for path in spec["sockets"]:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(TIMEOUT)
                sock.connect(path)
                connected.append(path)
        except OSError:
            pass
    return {"harm": bool(connected), "detail": json.dumps(connected)}


def squat_sockets(spec: dict[str, Any]) -> dict[str, Any]:
    """Make unix sockets, before weed does, where weed would put its own."""
    made = []
    for path in spec["sockets"]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(path)
                made.append(path)
            except OSError:
                pass
    return {"harm": len(made) == len(spec["sockets"]), "detail": json.dumps(made)}


ATTACKS = {
    "filer_delete": filer_delete,
    "filer_list_envelopes": filer_list_envelopes,
    "filer_read_envelope": filer_read_envelope,
    "volume_read_envelope": volume_read_envelope,
    "filer_upload_hot": lambda spec: filer_upload(spec, "hot"),
    "filer_upload_audit": lambda spec: filer_upload(spec, "audit"),
    "master_assign_upload_hot": lambda spec: master_assign_upload(spec, "hot"),
    "master_assign_upload_audit": lambda spec: master_assign_upload(spec, "audit"),
    "master_col_delete": master_col_delete,
    "master_status": master_status,
    "grpc_list_entries": grpc_list_entries,
    "grpc_delete_entry": grpc_delete_entry,
    "anonymous_s3": anonymous_s3,
    "internal_ports": internal_ports,
    "grpc_ports": grpc_ports,
    "local_files": local_files,
    "local_sockets": local_sockets,
    "squat_sockets": squat_sockets,
}


def main() -> None:
    """Run the attacks the spec names; print their results as JSON."""
    spec = json.loads(sys.argv[1])
    results = {"uid": os.getuid()}
    for name in spec["attacks"]:
        results[name] = ATTACKS[name](spec)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
