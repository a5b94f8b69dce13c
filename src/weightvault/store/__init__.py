"""Object storage.

The S3 client over the minio SDK, its error translation, the embedded SeaweedFS server.
"""

from weightvault.store._objects import ObjectStore, connect, ensure_layout
from weightvault.store._probe import Capability, probe_store, require_capabilities
from weightvault.store._server import EmbeddedStore, ServerStatus, free_ports, weed_binary

__all__ = [
    "Capability",
    "EmbeddedStore",
    "ObjectStore",
    "ServerStatus",
    "connect",
    "ensure_layout",
    "free_ports",
    "probe_store",
    "require_capabilities",
    "weed_binary",
]
