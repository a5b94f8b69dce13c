"""Object storage.

The S3 client over the minio SDK, its error translation, the embedded SeaweedFS server,
and the store roles: what each S3 credential may do (``_roles``).
"""

from weightvault.store._dvc import configure_dvc_remote
from weightvault.store._objects import (
    DvcRemote,
    ObjectStore,
    RangeRead,
    bucket_roles,
    connect,
    dvc_remote,
    ensure_layout,
)
from weightvault.store._probe import Capability, probe_store, require_capabilities
from weightvault.store._roles import (
    ADMIN_ROLE,
    STORE_ROLES,
    Grant,
    StoreRole,
    iam_policy,
    role_named,
    store_role_names,
)
from weightvault.store._server import (
    Credentials,
    EmbeddedStore,
    NodeStatus,
    ServerStatus,
    free_ports,
    require_port_free,
    weed_binary,
)

__all__ = [
    "ADMIN_ROLE",
    "STORE_ROLES",
    "Capability",
    "Credentials",
    "DvcRemote",
    "EmbeddedStore",
    "Grant",
    "NodeStatus",
    "ObjectStore",
    "RangeRead",
    "ServerStatus",
    "StoreRole",
    "bucket_roles",
    "configure_dvc_remote",
    "connect",
    "dvc_remote",
    "ensure_layout",
    "free_ports",
    "iam_policy",
    "probe_store",
    "require_capabilities",
    "require_port_free",
    "role_named",
    "store_role_names",
    "weed_binary",
]
