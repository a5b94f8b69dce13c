"""The trust root's defaults (``trust init``): a module of constants alone, so the CLI's
parser can show them without importing the trust-root machinery."""

__all__ = ["DEFAULT_EXPIRES_DAYS", "DEFAULT_ROOT_KEYS", "DEFAULT_THRESHOLD"]

#: root keys ``trust init`` makes
DEFAULT_ROOT_KEYS = 3
#: of them, how many must sign a new root version
DEFAULT_THRESHOLD = 2
#: days until a root version expires
DEFAULT_EXPIRES_DAYS = 365
