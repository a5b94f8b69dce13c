"""Transparency-log formats: RFC 6962 Merkle trees in the c2sp tlog-tiles layout.

Pure formats and algorithms, with no storage: hashing and proofs (RFC 6962 /
RFC 9162), tiles and entry bundles (c2sp.org/tlog-tiles), checkpoints
(c2sp.org/tlog-checkpoint, signed as c2sp.org/signed-note in
:mod:`weightvault.crypto.notes`) and proofs (c2sp.org/tlog-proof). The vault's
log on the object store is built on these.
"""

from weightvault.tlog._checkpoint import (
    Checkpoint,
    TlogProof,
    open_checkpoint,
    parse_checkpoint,
    parse_tlog_proof,
    verify_tlog_proof,
)
from weightvault.tlog._merkle import (
    HashReader,
    ProofError,
    consistency_proof,
    empty_root,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from weightvault.tlog._tiles import (
    TILE_WIDTH,
    TiledHashReader,
    TileSource,
    TileWrite,
    append_tiles,
    decode_bundle,
    encode_bundle,
    entries_path,
    tile_path,
)

__all__ = [
    "TILE_WIDTH",
    "Checkpoint",
    "HashReader",
    "ProofError",
    "TileSource",
    "TileWrite",
    "TiledHashReader",
    "TlogProof",
    "append_tiles",
    "consistency_proof",
    "decode_bundle",
    "empty_root",
    "encode_bundle",
    "entries_path",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "parse_checkpoint",
    "parse_tlog_proof",
    "root_of",
    "tile_path",
    "verify_consistency",
    "verify_inclusion",
    "verify_tlog_proof",
]
