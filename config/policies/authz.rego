# Authorization policy: who may do what on which tier.
#
# Evaluated in-process by regopy (src/weightvault/gates/_authz.py) for every
# operation the vault logs, in Vault.begin, after the acting principal is
# resolved and before the operation has any effect (docs/authorization.md).
# Rego v1 syntax, as weightvault.rego.
#
# Input:
#   {"principal": {"name": str, "keyid": str, "roles": [str]},
#    "operation": str (the event kind, e.g. "artifact.ingested"),
#    "tier": "hot" | "warm" | "cold" | "quarantine" | null,
#    "artifact_id": str | null,
#    "to": the tier a promotion moves to | null,
#    "isolated_tiers": [the tiers the signed log says are isolated]}
#
# Every rule adds a reason to `deny`; the operation is authorized only when
# `deny` is empty. Each reason starts with the id of the rule that produced it
# and the ids are listed in `rules`. Fail closed: an operation kind missing
# from `operations`, a missing principal or roles, an unknown tier: all deny.
package weightvault.authz

rules := {
	"unknown_operation": "the operation kind is listed in the authorization table (operations)",
	"principal": "the request names a principal with a list of roles",
	"role": "the principal holds one of the roles the table gives the operation",
	"tier": "the operation acts on a tier the table allows for it",
	"put_tier": "put stores into hot; warm and cold are reached by validate + promote",
	"tier_isolated": "no reads from and no writes into a tier the signed log says is isolated, but for containment and recovery",
}

# ------------------------------------------------------------------ the table
#
# kind -> the roles that may perform it, and the tiers it may act on (the
# event's tier; null when the operation names none). To authorize a new
# operation, add one line here (and its row to tests/authz_cases.json).
#
# Kinds an operation logs as part of its own work (a side effect) are given
# the roles of that operation: `artifact.deduplicated` (a put of stored
# content), `artifact.promoted` / `artifact.promotion_refused` /
# `artifact.claim_taken_over` (a promotion), `envelopes.rewrapped` (a key
# rotation), `artifact.read` (validation decrypts what it scans),
# `artifact.quarantined` (validation, and a put whose format scan finds unsafe
# content, quarantine it),
# `artifact.verified` (promotion and rotation verify what they moved),
# `artifact.rekey_needed` (revoking a grant that was used).

any_tier := ["hot", "warm", "cold", "quarantine", null]

operations := {
	# reading an artifact
	"artifact.read": {"roles": ["reader", "validator"], "tiers": any_tier},
	"artifact.verified": {"roles": ["reader", "promoter", "key-admin"], "tiers": any_tier},
	"artifact.exported": {"roles": ["reader"], "tiers": any_tier},
	# putting one in (hot only: put_tier)
	"artifact.ingested": {"roles": ["ingester"], "tiers": ["hot", null]},
	"artifact.deduplicated": {"roles": ["ingester"], "tiers": any_tier},
	# names, labels and aliases (docs/names-and-labels.md): `artifact.named` is a put of stored
	# content under a new name; the others are amendments by whoever may put or promote
	"artifact.named": {"roles": ["ingester"], "tiers": any_tier},
	"artifact.labeled": {"roles": ["ingester", "promoter"], "tiers": any_tier},
	"alias.set": {"roles": ["ingester", "promoter"], "tiers": any_tier},
	"alias.removed": {"roles": ["ingester", "promoter"], "tiers": any_tier},
	# validation
	"artifact.validated": {"roles": ["validator"], "tiers": any_tier},
	# promotion between tiers, and deletion
	"artifact.promotion": {"roles": ["promoter"], "tiers": any_tier},
	"artifact.promoted": {"roles": ["promoter"], "tiers": ["warm", "cold"]},
	"artifact.promotion_refused": {"roles": ["promoter"], "tiers": any_tier},
	"artifact.claim_taken_over": {"roles": ["promoter", "key-admin", "incident-responder"], "tiers": any_tier},
	"artifact.deleted": {"roles": ["promoter"], "tiers": any_tier},
	# approvals (signed by the approver's own key)
	"artifact.approved": {"roles": ["approver"], "tiers": any_tier},
	# incidents
	"artifact.quarantined": {"roles": ["incident-responder", "ingester", "validator"], "tiers": any_tier},
	"artifact.released": {"roles": ["incident-responder"], "tiers": any_tier},
	"key.compromised": {"roles": ["incident-responder", "key-admin"], "tiers": any_tier},
	"artifact.rekeyed": {"roles": ["incident-responder", "key-admin"], "tiers": any_tier},
	# keys, escrow, trust root, disaster recovery
	"key.rotated": {"roles": ["key-admin"], "tiers": any_tier},
	"key.retired": {"roles": ["key-admin"], "tiers": any_tier},
	"keys.rotation_run": {"roles": ["key-admin"], "tiers": any_tier},
	"envelopes.rewrapped": {"roles": ["key-admin"], "tiers": any_tier},
	"key.escrow_split": {"roles": ["key-admin"], "tiers": [null]},
	"trust.root_published": {"roles": ["key-admin"], "tiers": [null]},
	"dr.master_split": {"roles": ["key-admin"], "tiers": [null]},
	"dr.home_restored": {"roles": ["key-admin"], "tiers": [null]},
	"dr.drill_run": {"roles": ["key-admin"], "tiers": [null]},
	# grants to collaborators (docs/grants.md)
	"grant.issued": {"roles": ["key-admin"], "tiers": any_tier},
	"grant.revoked": {"roles": ["key-admin", "incident-responder"], "tiers": any_tier},
	"artifact.rekey_needed": {"roles": ["key-admin", "incident-responder"], "tiers": any_tier},
	"grant.accessed": {"roles": ["key-admin", "auditor", "incident-responder"], "tiers": any_tier},
	"grant.collected": {"roles": ["key-admin"], "tiers": [null]},
	# break-glass: a quarantined artifact read with two approvals since its quarantine
	"artifact.break_glass_read": {"roles": ["incident-responder"], "tiers": any_tier},
	# disaster recovery: rebuild from provenance, certify, and (--restore) rewrite the objects
	"artifact.recovered": {"roles": ["key-admin"], "tiers": any_tier},
	# detection over the log, and the incidents it opens (docs/incidents.md)
	"detect.run": {"roles": ["incident-responder", "auditor"], "tiers": [null]},
	"incident.opened": {"roles": ["incident-responder", "auditor"], "tiers": [null]},
	"incident.resolved": {"roles": ["incident-responder"], "tiers": [null]},
	# maintenance of the derived state (the catalog, orphaned objects)
	"catalog.rebuilt": {"roles": ["key-admin"], "tiers": [null]},
	"store.gc": {"roles": ["key-admin"], "tiers": [null]},
	# containment (docs/containment.md): isolate or restore a whole tier, the playbook's records
	"tier.isolated": {"roles": ["incident-responder"], "tiers": ["hot", "warm", "cold"]},
	"tier.restored": {"roles": ["incident-responder"], "tiers": ["hot", "warm", "cold"]},
	"incident.bundled": {"roles": ["incident-responder"], "tiers": [null]},
	"incident.contained": {"roles": ["incident-responder"], "tiers": [null]},
	"incident.lifted": {"roles": ["incident-responder"], "tiers": [null]},
}

# Operations allowed on an isolated tier: what containment and recovery need, none of
# which hands out plaintext or stores new content (docs/containment.md). Everything else
# that names an isolated tier (get, export, put, validate, promote from or into it, delete,
# grant) is refused by `tier_isolated`.
isolation_exempt := {
	"artifact.verified",
	"artifact.quarantined",
	"artifact.released",
	"artifact.approved",
	"artifact.rekeyed",
	"artifact.rekey_needed",
	"artifact.claim_taken_over",
	"artifact.recovered",
	"key.compromised",
	"key.rotated",
	"key.retired",
	"keys.rotation_run",
	"envelopes.rewrapped",
	"grant.revoked",
	"grant.accessed",
	"tier.isolated",
	"tier.restored",
}

known_tiers := {"hot", "warm", "cold", "quarantine"}

# ------------------------------------------------------------------ accessors

# obj[key], or null when obj is not an object or lacks the key.
get(obj, key) := value if {
	is_object(obj)
	value := obj[key]
} else := null

kind := get(input, "operation")

tier := get(input, "tier")

principal := get(input, "principal")

entry := operations[kind]

roles := [r | some r in get(principal, "roles"); is_string(r)] if {
	is_array(get(principal, "roles"))
} else := []

held(role) if {
	some r in roles
	r == role
}

# ------------------------------------------------------------------ rules

deny contains msg if {
	not entry
	msg := sprintf("unknown_operation: %v is not in the authorization table", [kind])
}

deny contains msg if {
	not is_string(get(principal, "name"))
	msg := sprintf("principal: %v has no enrolled principal", [kind])
}

deny contains msg if {
	not is_array(get(principal, "roles"))
	msg := sprintf("principal: %v names no roles", [kind])
}

deny contains msg if {
	entry
	not authorized_role
	msg := sprintf("role: %v needs one of the roles %v; %v holds %v", [kind, entry.roles, get(principal, "name"), roles])
}

authorized_role if {
	some role in entry.roles
	held(role)
}

deny contains msg if {
	tier != null
	not known_tiers[tier]
	msg := sprintf("tier: %v is not a tier", [tier])
}

deny contains msg if {
	kind == "artifact.ingested"
	tier != "hot"
	tier != null
	msg := sprintf("put_tier: put stores into hot, not %v; warm and cold are reached by validate + promote (weightvault put, validate, promote --to warm, then cold)", [tier])
}

deny contains msg if {
	entry
	kind != "artifact.ingested"
	not tier_allowed
	msg := sprintf("tier: %v does not act on tier %v (it may on %v)", [kind, tier, entry.tiers])
}

tier_allowed if {
	some t in entry.tiers
	t == tier
}

isolated_tiers := [t | some t in get(input, "isolated_tiers"); is_string(t)] if {
	is_array(get(input, "isolated_tiers"))
} else := []

deny contains msg if {
	some t in isolated_tiers
	touches(t)
	not isolation_exempt[kind]
	msg := sprintf("tier_isolated: tier %v is isolated (weightvault tier restore lifts it): %v refused", [t, kind])
}

touches(t) if tier == t

touches(t) if get(input, "to") == t

decision := {"allow": count(deny) == 0, "deny": deny}
