"""Independent checks of RFC 6962 proofs and c2sp tlog-proof documents, for the tests.

Written from RFC 6962 section 2.1.1 (PATH) and 2.1.2 (SUBPROOF) by following
the definitions' recursion, and from c2sp signed-note / tlog-proof with plain
``cryptography`` Ed25519: nothing here comes from ``weightvault``, so a bug in
the product's proofs is not mirrored by its check.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.support.rfc6962 import largest_power_of_two_below
from tests.support.rfc6962 import ref_leaf as _leaf
from tests.support.rfc6962 import ref_node as _node


def ref_root_from_path(index: int, size: int, entry: bytes, path: list[bytes]) -> bytes:
    """The root PATH(index, D[size]) leads to from ``entry``; ValueError if it is malformed.

    PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) if m < k, else
    PATH(m - k, D[k:n]) : MTH(D[0:k]): the last hash is the top-level sibling.
    """
    rest = list(path)

    def walk(m: int, n: int) -> bytes:
        if n == 1:
            return _leaf(entry)
        if not rest:
            raise ValueError("the inclusion path is too short")
        k = largest_power_of_two_below(n)
        sibling = rest.pop()
        if m < k:
            return _node(walk(m, k), sibling)
        return _node(sibling, walk(m - k, n - k))

    if not 0 <= index < size:
        raise ValueError("index out of range")
    root = walk(index, size)
    if rest:
        raise ValueError("the inclusion path is too long")
    return root


def ref_consistent(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> bool:
    """Whether PROOF(old, D[new]) shows ``old_root`` is the root of a prefix of ``new_root``.

    SUBPROOF(m, D[n], b) = [] if m == n and b; [MTH(D[n])] if m == n and not b;
    SUBPROOF(m, D[0:k], b) : MTH(D[k:n]) if m <= k; SUBPROOF(m - k, D[k:n], false) :
    MTH(D[0:k]) otherwise. Walking it back from its last hash rebuilds both roots.
    """
    if not 0 < old <= new:
        return False
    rest = list(proof)

    def walk(m: int, n: int, whole: bool) -> tuple[bytes, bytes]:
        if m == n:
            if whole:
                return old_root, old_root
            if not rest:
                raise ValueError("short")
            h = rest.pop()
            return h, h
        if not rest:
            raise ValueError("short")
        k = largest_power_of_two_below(n)
        sibling = rest.pop()
        if m <= k:
            o, s = walk(m, k, whole)
            return o, _node(s, sibling)
        o, s = walk(m - k, n - k, False)
        return _node(sibling, o), _node(sibling, s)

    try:
        got_old, got_new = walk(old, new, True)
    except ValueError:
        return False
    return not rest and got_old == old_root and got_new == new_root


def ref_check_tlog_proof(text: str, entry: bytes, vkey: str) -> tuple[str, int, bytes]:
    """Check a c2sp tlog-proof of ``entry`` with an Ed25519 (0x01) vkey only.

    Returns the checkpoint's (origin, size, root); AssertionError on any failure.
    """
    head, _, note = text.partition("\n\n")
    lines = head.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    pos = 2 if lines[1].startswith("extra ") else 1
    assert lines[pos].startswith("index ")
    index = int(lines[pos][len("index ") :])
    path = [base64.b64decode(line) for line in lines[pos + 1 :]]
    body, _, signatures = note.rpartition("\n\n")
    body += "\n"
    name, key_hex, key_b64 = vkey.split("+", 2)
    raw = base64.b64decode(key_b64)
    assert raw[0] == 0x01
    public = ed25519.Ed25519PublicKey.from_public_bytes(raw[1:])
    wanted_id = bytes.fromhex(key_hex)
    assert hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4] == wanted_id
    good = False
    for line in signatures.strip("\n").split("\n"):
        signer, _, blob_b64 = line.removeprefix("\u2014 ").partition(" ")
        blob = base64.b64decode(blob_b64)
        if signer == name and blob[:4] == wanted_id:
            try:
                public.verify(blob[4:], body.encode())
            except InvalidSignature as exc:
                raise AssertionError("the checkpoint signature is invalid") from exc
            good = True
    assert good, "the checkpoint is not signed by the vkey"
    origin, size_text, root_b64 = body.split("\n")[:3]
    size, root = int(size_text), base64.b64decode(root_b64)
    assert ref_root_from_path(index, size, entry, path) == root, "the entry is not included"
    return origin, size, root
