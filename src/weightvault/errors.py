"""The vault's one exception hierarchy.

Every error the vault raises on purpose is a :class:`VaultError`. Each class
carries the process exit code the CLI maps it to, so a script can tell
failures apart without parsing messages. Messages are one line and never
contain key material or credentials.
"""

from __future__ import annotations

from collections.abc import Sequence


class VaultError(Exception):
    """Base class of every error the vault raises on purpose."""

    exit_code: int = 10

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))

    @property
    def message(self) -> str:
        """The one-line message, without the class name."""
        return str(self)

    def lines(self) -> list[str]:
        """What the CLI prints, one ``error:`` line each: the message."""
        return [self.message]


class UsageError(VaultError):
    """The command line or a parameter is malformed."""

    exit_code = 2


class ConfigError(VaultError):
    """Settings are missing, malformed or contradictory."""

    exit_code = 3


class NotFoundError(VaultError):
    """An artifact, key, file or object does not exist."""

    exit_code = 4


class IntegrityError(VaultError):
    """Data failed authentication, a digest check or a signature check."""

    exit_code = 5


class PolicyError(VaultError):
    """A policy, validation or lifecycle gate refused the operation."""

    exit_code = 6


class StoreUnavailableError(VaultError):
    """The object store cannot be reached; transient, safe to retry."""

    exit_code = 7


class AuthenticationError(VaultError):
    """The store or keystore rejected the credentials or master key."""

    exit_code = 8


class ConflictError(VaultError):
    """A concurrent operation won, or the target already exists."""

    exit_code = 9


class KeyStateError(VaultError):
    """A key exists but its state forbids the requested use."""

    exit_code = 11


class RetentionError(VaultError):
    """Object lock or legal hold forbids deleting or overwriting an object."""

    exit_code = 12


class QuarantinedError(PolicyError):
    """The artifact is in quarantine: no reads until it is released."""

    exit_code = 13


class InvalidInputError(VaultError):
    """An input file or document is malformed or unsafe."""

    exit_code = 14


class AuditError(VaultError):
    """The audit trail could not be written, so the operation was refused."""

    exit_code = 15


class StoreError(VaultError):
    """The object store refused a request for a reason that is not transient."""

    exit_code = 16


class IncompleteError(VaultError):
    """An operation did only part of its work; running it again finishes it."""

    exit_code = 17


# -- S3 portability (store capability probe) ------------------------------------


class StoreCapabilityError(StoreError):
    """The object store lacks a capability the vault relies on (versioning, object lock ...)."""

    exit_code = 28

    def __init__(self, endpoint: str, missing: list[str]) -> None:
        self.endpoint = endpoint
        self.missing = tuple(" ".join(m.split()) for m in missing)
        super().__init__(
            f"object store at {endpoint} lacks what the vault needs: " + "; ".join(missing)
        )

    def lines(self) -> list[str]:
        """One line per missing capability, as the CLI prints them."""
        return [f"object store at {self.endpoint}: {m}" for m in self.missing]


# -- inputs, outputs and local disks (issue 10: bad input, crashes) -------------


class SourceUnreadableError(InvalidInputError):
    """A file or directory to store cannot be read (permissions, I/O error)."""

    exit_code = 22


class OutputUnwritableError(VaultError):
    """An output path cannot be created or written (permissions, read-only file system)."""

    exit_code = 23


class DiskFullError(VaultError):
    """A local file system (the output or the vault home) has no space left."""

    exit_code = 24


class StoreFullError(StoreError):
    """The object store refused a write because it is out of space or over quota."""

    exit_code = 25


class UnsafeNameError(InvalidInputError):
    """A file name is not UTF-8 or holds newlines, control or bidi characters."""

    exit_code = 26


# -- key lifetimes (issue 10: expiry, wrap limits, keystore rollback) ------------


class KeystoreRollbackError(VaultError):
    """The keystore is older than the newest version the store records: a restored copy."""

    exit_code = 18


class KeyUsageError(KeyStateError):
    """A key is past its lifetime or its usage limit: rotate it before it is used again."""

    exit_code = 19


# -- log verification, proofs and the witness (issue 11, "witness") ----------------


class LogVerificationError(IntegrityError):
    """The transparency log does not verify: a tampered entry, tile or checkpoint, or a
    missing, invalid or refused cosignature.

    ``status`` is the c2sp tlog-witness HTTP status a witness answers with (400, 403,
    404, 422), 0 when the error is not a witness's answer.
    """

    exit_code = 27

    def __init__(self, message: str, *, status: int = 0, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.problems = tuple(" ".join(p.split()) for p in problems)

    def lines(self) -> list[str]:
        """One line per problem when the error names several, else the message."""
        return list(self.problems) or [self.message]


class LogForkError(LogVerificationError):
    """Two views of the transparency log disagree: a rollback to a smaller log, or a fork
    (the same size with another root, or a tree that does not extend one seen before)."""

    exit_code = 29


# -- the signed trust root (issue 11: trust root, offline verification) ---------


class TrustRootError(IntegrityError):
    """A trust root failed verification: signatures under threshold, rollback, expiry ..."""

    exit_code = 30


class NoTrustRootError(VaultError):
    """No pinned trust root to verify against (and trust on first use was not asked for)."""

    exit_code = 31


# -- restoring the vault home (issue 13, "homerestore") -----------------------------


class MasterSharesError(InvalidInputError):
    """The master-key shares do not recover this vault's master key: too few, malformed,
    from different splits, or from another split than the one recorded in the store."""

    exit_code = 32


class KeystoreBackupError(IntegrityError):
    """No usable keystore backup: none stored, one that does not open or names another
    version, or an older backup than the newest keystore version recorded (a rollback)."""

    exit_code = 33


# -- least-privilege store credentials (issue 12, "storecreds") ---------------------


class StoreRoleError(ConfigError):
    """An unknown store role, or a role credential that is not there to hand out or use."""

    exit_code = 38


class StoreRoleDeniedError(AuthenticationError):
    """The object store refused an action to the vault's role credential: the operation
    needs a role that may do it (docs/store-credentials.md)."""

    exit_code = 39


# -- signed statements bound to the log (issue 11, "statements") --------------------
class StatementError(IntegrityError):
    """A signed statement (validation report, quarantine, release, key record, recovery
    certificate, promotion attestation) cannot be trusted: missing, not the one the log
    recorded, not signed by a trusted key, or about something else."""

    exit_code = 36


class EvidenceMismatchError(QuarantinedError):
    """The log records the artifact quarantined while the catalog says otherwise: reads
    stay refused (the catalog is an index, the log is the evidence)."""

    exit_code = 37


# -- rollback and key compromise against the log (issue 11, "rollback") -------------
class RollbackError(IntegrityError):
    """An artifact's objects in the store are not the latest state the log records
    (an older version restored, another artifact's envelope, or no logged state at all)."""

    exit_code = 34


class UnloggedSignatureError(IntegrityError):
    """A signed document the log does not record: without a logged time, a signature by a
    compromised key cannot be dated (the document's own claimed time is not trusted)."""

    exit_code = 35


# -- principals proved by a key (issue 12, "principals") -------------------------------
class PrincipalError(VaultError):
    """The acting key is not an enrolled principal of the vault: never enrolled, revoked, or
    not the key enrolled under that name. The operation is refused before any effect."""

    exit_code = 40


class IdentityError(InvalidInputError):
    """An identity (a principal's key file) is missing, malformed, of another name, or its
    passphrase is wrong or cannot be asked for."""

    exit_code = 41


# -- grants for collaborators (issue 12, "grants") -------------------------------------
class GrantExpiredError(PolicyError):
    """A grant is used after its expiry: the collaborator's client refuses it, and the
    store refuses its presigned URLs."""

    exit_code = 44


class GrantRevokedError(PolicyError):
    """A grant was revoked (its copies are gone: the store answers 403/404), or the store
    refused one of its URLs for another reason."""

    exit_code = 45


class GrantScopeError(IntegrityError):
    """A grant that does not verify: edited, signed by a key the pinned root does not
    trust, not in the log, for another recipient, or naming objects outside its scope."""

    exit_code = 46


class GrantReplayError(PolicyError):
    """A single-use grant used again: its receipt is already in the store."""

    exit_code = 47


# -- approval UI and break-glass reads (issue 12 item 3, "approvalui") ---------------
class BreakGlassError(PolicyError):
    """A break-glass read of a quarantined artifact is refused: it is not quarantined in the
    log, or the signed approvals the log records since its quarantine do not meet the
    two-person rule (``weightvault approve ID --to break-glass``)."""

    exit_code = 48


# -- rebuild kit and recover (issue 13, "recover") -------------------------------------
class RebuildKitError(IntegrityError):
    """An artifact has no usable rebuild kit: none stored, malformed, not the one its signed
    statement names, or the source cannot be restored from it nor from the recorded remote."""

    exit_code = 50


class EnvironmentLockError(InvalidInputError):
    """The recorded training environment's lock file cannot be satisfied offline (or is
    not a format the rebuild can install)."""

    exit_code = 51


class DatasetMismatchError(IntegrityError):
    """A dataset pulled from the DVC remote is not the one the signed statement records
    (its md5 or sha256 differ), or it cannot be pulled."""

    exit_code = 52


class ReproducibilityError(IntegrityError):
    """A rebuild did not reproduce the artifact: a stage failed, or an output file differs
    from the manifest (which files, and for safetensors which tensors, are named)."""

    exit_code = 53


# -- authorization as policy (issue 12, "authz") -----------------------------------------
class AuthorizationError(VaultError):
    """The authorization policy (config/policies/authz.rego) does not let the acting principal
    perform this operation on this tier, or cannot be evaluated. The message names the rule;
    the operation is refused before any effect."""

    exit_code = 42


# -- the DR drill (issue 13 item 4, "drill") ---------------------------------------------
class DrillError(VaultError):
    """A DR drill cannot run safely: its scratch bucket prefix would reach live buckets, or
    the sample names no artifact it can rehearse. Nothing live was touched."""

    exit_code = 54


class DrillVerifyError(IntegrityError):
    """An artifact the drill restored does not verify, or differs from the live artifact it
    was copied from (content digest)."""

    exit_code = 55


# -- containment: tier isolation, the contain playbook (issue 14 items 3-4, "contain") ----
class TierIsolatedError(AuthorizationError):
    """The operation reads from or writes into a tier an incident responder isolated
    (``weightvault tier isolate``; the signed log says so). Refused before any effect until
    ``weightvault tier restore``."""

    exit_code = 68


class ContainmentError(VaultError):
    """A step of the contain playbook failed: the playbook stopped there (fail closed) and
    its report names the step; what ran before it stays done and is skipped on a re-run."""

    exit_code = 69


class IncidentBundleError(IntegrityError):
    """An incident bundle does not verify offline: a file differs from its signed index, an
    entry or proof was edited, proofs are under different checkpoints or another log's keys."""

    exit_code = 70


class LiftRefusedError(PolicyError):
    """Lifting a containment was refused for part of it: a quarantined artifact lacks the
    signed release approvals (each named); the rest was lifted."""

    exit_code = 71


# -- detection and incidents (issue 14 item 2, "detect") ---------------------------------
class IncidentError(VaultError):
    """An incident cannot change that way: it is resolved already."""

    exit_code = 63


# -- DVC and S3 (issue 15 item 5, "dvc-s3") -----------------------------------------------
class PortInUseError(ConfigError):
    """A configured port (the embedded store's S3 port, the Prefect server's) is taken by
    another program; the message names the port and the setting that chose it."""

    exit_code = 65


# -- gates on every ingest (issue 15 item 3, "ingest-gates") -----------------------------
class IngestQuarantinedError(QuarantinedError):
    """A put stored the artifact, but its format scan found unsafe content (a pickle, a
    malformed safetensors header, ...): it was committed straight into quarantine and is
    never readable until released. The message names each file and its detected type."""

    exit_code = 58


class ValidationConfigError(ConfigError):
    """A model repository's validation configuration (``[tool.weightvault.validation]`` in
    its pyproject.toml, or its weightvault.toml) is malformed or names a missing file or
    suite."""

    exit_code = 59


class ValidationPartialError(PolicyError):
    """A validation skipped checks (no model repository, or a configured check that could
    not run): its signed report says ``partial`` and names them; partial never satisfies
    a promotion gate."""

    exit_code = 60


# -- names, aliases and the command line (issue 15 items 4 and 6) --------------------------------
class AmbiguousIdError(NotFoundError):
    """An artifact id prefix matches more than one artifact; the candidates are listed."""

    exit_code = 61

    def __init__(self, prefix: str, candidates: Sequence[str]) -> None:
        self.candidates = tuple(" ".join(c.split()) for c in candidates)
        super().__init__(
            f"artifact id prefix {prefix!r} is ambiguous: it matches {len(candidates)} "
            "artifacts; give more of the id"
        )

    def lines(self) -> list[str]:
        """The message, then one line per candidate."""
        return [self.message, *(f"candidate: {c}" for c in self.candidates)]


class ConfirmationError(UsageError):
    """A destructive command was not confirmed (no terminal to ask on and no ``--yes``)."""

    exit_code = 62


class LocalPathError(VaultError):
    """A local file or directory a command was given cannot be used (missing, not a
    directory, not permitted) where no more specific error applies; the message names it."""

    exit_code = 57


class AliasNotFoundError(NotFoundError):
    """A ``name@alias`` the signed log does not point at any artifact."""

    exit_code = 64


class SingleBucketError(StoreError):
    """The one existing bucket of the single-bucket layout (``[store] bucket``) is missing or
    lacks what the layout needs: versioning, Object Lock, no default retention. The vault
    never creates nor reconfigures that bucket; the message names it and what is missing."""

    exit_code = 66


# -- scale-out (issue 16) -----------------------------------------------------------------
class DatabaseUnavailableError(VaultError):
    """A database of the vault (the catalog's, the shared keystore's) cannot be reached
    (refused, timed out, unknown host, dropped mid-operation); transient, safe to retry.
    The message names the database, never its password."""

    exit_code = 72


class DatabaseConfigError(ConfigError):
    """A database URL of the vault (catalog, shared keystore) cannot be used: not a
    database URL, a driver the vault does not use (it needs a synchronous one:
    ``sqlite:///PATH`` or ``postgresql://...`` through psycopg 3), or a database that
    refuses it (bad credentials, no such database)."""

    exit_code = 73


class CatalogSchemaError(ConfigError):
    """The catalog's schema is at a revision this weightvault does not know (a newer one
    migrated it); nothing is written with the wrong schema."""

    exit_code = 74


# -- model CI: weightvault check (issue 19) -------------------------------------------------
class CheckFailedError(PolicyError):
    """``weightvault check`` found a rule that fails: a gate (format, safetensors header,
    provenance, Great Expectations) or a Rego rule a promotion to the tier would deny.
    Nothing was stored; the reports (--junit, --sarif) name each failed rule."""

    exit_code = 75


class CheckUnsafeContentError(CheckFailedError):
    """``weightvault check`` found a file whose loading can run code or attack its loader
    (pickle-based content, a malformed safetensors header): a put would quarantine it at
    once. Takes precedence over :class:`CheckFailedError`."""

    exit_code = 76


# -- adoption (issue 19 item 1) -----------------------------------------------------------
class AdoptSourceError(InvalidInputError):
    """``adopt SOURCE`` cannot be read as the kind of source asked for (no such
    directory, not a Hugging Face cache or MLflow root, an S3 URL without a bucket),
    or holds no model artifact at all. Nothing is stored."""

    exit_code = 80


class AdoptIncompleteError(VaultError):
    """An adoption ran, but some candidates could not be brought in (each is named with
    its reason in the report); what was adopted stays, and a re-run continues."""

    exit_code = 81
