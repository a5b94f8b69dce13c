# Detection rules over a window of the signed log's events (docs/incidents.md).
#
# Evaluated in-process by regopy (src/weightvault/gates/_detect.py) by the
# detector (`weightvault detect`, the `detect` flow) on each batch of new log
# entries. Rego v1 syntax, as weightvault.rego.
#
# Input:
#   {"events": [event],         one batch of new outcome entries, in log order
#    "since": int,              the first new log index (a rule fires only on
#                               a new event)
#    "state": {                 what the log said before the batch
#      "seen_clients": {principal: [host]},
#      "fired": {"<rule>|<key>": t},          when each rule last fired per key
#      "compromised": {"key@vN": t},          since when (epoch seconds)
#      "grants": {grant_id: {"artifact", "expires_t", "revoked_t"}},
#      "releases": {artifact_id: [{"t", "principal"}]}},
#    "thresholds": {name: number},            overrides ([detect] settings)
#    "approval_window_seconds": number, "approvals_required": int}
#
# event: {index, id, ts, t (epoch seconds), kind, phase, outcome, reason,
#         error (the error class of a failed/refused outcome, or null),
#         principal (enrolled name, or "keyid:<hex>"), client {host, process},
#         artifact, tier, key_ids, grant_id, purpose, key, since_t,
#         grant_state, accessed_t, expires_t, counts {rule: n}}; only outcome
#         entries are given. `tags` (the counted events) is asked first, the
#         detector then adds `counts` and asks `decision`.
#
# Output `findings`: {rule, severity, key (dedup key), evidence: [event ids],
#   artifacts, principals, keys, tiers, actions}. Actions are containment's
#   vocabulary: quarantine, revoke_grants, isolate_tier, compromise_keys,
#   recover, rekey.
package weightvault.detect

rules := {
	"read_spike_artifact": "at most read_spike_artifact reads of one artifact in window_seconds",
	"read_spike_principal": "at most read_spike_principal reads by one principal in window_seconds",
	"new_client": "a principal reads only from clients (hosts) it read from before",
	"grant_misuse": "a grant receipt is of a grant the log issued, in scope, not revoked or expired",
	"integrity_failures": "fewer than integrity_failures integrity failures on one artifact in window_seconds",
	"denied_burst": "fewer than denied_burst refused operations by one principal in window_seconds",
	"cold_read_unapproved": "a read or export of cold is covered by an approved release",
	"compromised_key_use": "no operation uses a key after the log marked it compromised",
}

thresholds := {
	"window_seconds": 300,
	"read_spike_artifact": 20,
	"read_spike_principal": 50,
	"denied_burst": 5,
	"integrity_failures": 2,
}

meta := {
	"read_spike_artifact": {"severity": "medium", "actions": ["quarantine"]},
	"read_spike_principal": {"severity": "high", "actions": ["revoke_grants", "isolate_tier"]},
	"new_client": {"severity": "medium", "actions": []},
	"grant_misuse": {"severity": "high", "actions": ["revoke_grants", "rekey"]},
	"integrity_failures": {"severity": "high", "actions": ["quarantine", "recover"]},
	"denied_burst": {"severity": "medium", "actions": []},
	"cold_read_unapproved": {"severity": "high", "actions": ["isolate_tier", "quarantine"]},
	"compromised_key_use": {"severity": "critical", "actions": ["compromise_keys", "rekey"]},
}

read_kinds := {"artifact.read", "artifact.exported", "artifact.break_glass_read"}

integrity_errors := {
	"IntegrityError", "RollbackError", "EvidenceMismatchError", "StatementError",
	"LogVerificationError", "ReproducibilityError", "DrillVerifyError",
}

# Kinds that use a compromised key to contain the compromise (unwrap to rewrap).
containment_kinds := {
	"key.compromised", "key.rotated", "key.retired", "keys.rotation_run",
	"envelopes.rewrapped", "artifact.rekeyed", "artifact.rekey_needed",
	"incident.opened", "incident.resolved", "detect.run",
}

# ------------------------------------------------------------------ accessors

get(obj, key, fallback) := value if {
	is_object(obj)
	value := obj[key]
	value != null
} else := fallback

limits := object.union(thresholds, get(input, "thresholds", {}))

window := limits.window_seconds

events := [e | some e in get(input, "events", []); is_object(e); is_number(e.t); is_number(e.index)]

since := get(input, "since", 0)

approval_window := get(input, "approval_window_seconds", 259200)

state := get(input, "state", {})

new(e) if e.index >= since

host(e) := get(get(e, "client", {}), "host", null)

reads := [e | some e in events; read_kinds[e.kind]; e.outcome == "ok"]

# An integrity failure: the outcome names an integrity error class; an outcome
# that names no class (a log older than error classes) counts when it failed a
# read or a verify.
integrity(e) if {
	e.outcome in {"failed", "refused"}
	integrity_errors[get(e, "error", "")]
}

integrity(e) if {
	e.outcome == "failed"
	get(e, "error", null) == null
	e.kind in {"artifact.read", "artifact.verified", "artifact.exported"}
}

strings(values) := {v | some v in values; is_string(v)}

# ------------------------------------------------------------------ counting rules
#
# `counted` says which events each counting rule counts, and by what group; the
# detector keeps the sliding count over window_seconds per rule and group (in
# its state: memory bounded by the window) and gives every new event its
# counts (`counts`: rule -> the group's count up to and including it). A rule
# fires at the event that brings its group to the threshold, unless it fired
# for that group less than window_seconds before (`state.fired`, or an earlier
# event of this batch): one incident per burst, not one per event. The
# detector adds the window's counted events to the evidence.

counted contains {"rule": "read_spike_artifact", "group": e.artifact, "index": e.index} if {
	some e in reads
	is_string(e.artifact)
}

counted contains {"rule": "read_spike_principal", "group": e.principal, "index": e.index} if {
	some e in reads
	is_string(e.principal)
}

counted contains {"rule": "denied_burst", "group": e.principal, "index": e.index} if {
	some e in events
	e.outcome == "refused"
	is_string(e.principal)
}

counted contains {"rule": "integrity_failures", "group": get(e, "artifact", "-"), "index": e.index} if {
	some e in events
	integrity(e)
}

counting_rules := {"read_spike_artifact", "read_spike_principal", "denied_burst", "integrity_failures"}

group_at[concat("|", [c.rule, format_int(c.index, 10)])] := c.group if some c in counted

group_of(rule, e) := group_at[concat("|", [rule, format_int(e.index, 10)])]

over(rule, e) if get(get(e, "counts", {}), rule, 0) >= limits[rule]

recently_fired(rule, key, e) if get(get(state, "fired", {}), concat("|", [rule, key]), -1) > e.t - window

earlier_over(rule, group, e) if {
	some x in events
	x.index < e.index
	x.t > e.t - window
	over(rule, x)
	group_of(rule, x) == group
}

findings contains f if {
	some e in events
	new(e)
	some rule in counting_rules
	over(rule, e)
	group := group_of(rule, e)
	not recently_fired(rule, group, e)
	not earlier_over(rule, group, e)
	f := finding(rule, group, [e], set())
}

finding(rule, key, evidence, keys) := {
	"rule": rule,
	"severity": meta[rule].severity,
	"key": key,
	"counted": rule in counting_rules,
	"evidence": sort({e.id | some e in evidence}),
	"artifacts": sort(strings({e.artifact | some e in evidence})),
	"principals": sort(strings({e.principal | some e in evidence})),
	"keys": sort(keys),
	"tiers": sort(strings({e.tier | some e in evidence})),
	"actions": meta[rule].actions,
}

# ------------------------------------------------------------------ new client

seen_clients := get(state, "seen_clients", {})

# A host is seen for a principal once it read from it (an ok read): anything else
# from a new host (a verify, a refused attempt) does not make it familiar. The
# first read of a principal ever is learned, not flagged. First indexes in this
# batch of each principal's reads, and of each principal and host.
first_of_principal[p] := min({x.index | some x in reads; x.principal == p; is_string(host(x))}) if {
	some y in reads
	p := y.principal
}

first_on_host[k] := min({x.index | some x in reads; concat("|", [x.principal, host(x)]) == k}) if {
	some y in reads
	is_string(host(y))
	k := concat("|", [y.principal, host(y)])
}

known_principal(e) if count(get(seen_clients, e.principal, [])) > 0

known_principal(e) if first_of_principal[e.principal] < e.index

findings contains f if {
	some e in reads
	new(e)
	is_string(e.principal)
	is_string(host(e))
	not host(e) in get(seen_clients, e.principal, [])
	key := concat("|", [e.principal, host(e)])
	first_on_host[key] == e.index
	known_principal(e)
	f := finding("new_client", key, [e], set())
}

# ------------------------------------------------------------------ grants

grant_of(e) := get(get(state, "grants", {}), e.grant_id, null)

grant_issued(e) if grant_of(e) != null

grant_issued(e) if {
	some x in events
	x.index < e.index
	x.kind == "grant.issued"
	x.outcome == "ok"
	x.grant_id == e.grant_id
}

revoked_times(e) := {t | t := grant_of(e).revoked_t; is_number(t)} | {x.t |
	some x in events
	x.index < e.index
	x.kind == "grant.revoked"
	x.outcome == "ok"
	x.grant_id == e.grant_id
}

expiry_times(e) := {t | t := grant_of(e).expires_t; is_number(t)} | {t |
	some x in events
	x.index < e.index
	x.kind == "grant.issued"
	x.outcome == "ok"
	x.grant_id == e.grant_id
	t := get(x, "expires_t", null)
	is_number(t)
}

# When the collaborator used it: its receipt's time, else when it was synced.
used_at(e) := get(e, "accessed_t", e.t)

grant_problem(e) if e.outcome in {"refused", "failed"}

grant_problem(e) if get(e, "grant_state", "valid") in {"revoked", "expired", "out_of_scope"}

grant_problem(e) if not grant_issued(e)

grant_problem(e) if {
	some t in revoked_times(e)
	used_at(e) >= t
}

grant_problem(e) if {
	some t in expiry_times(e)
	used_at(e) >= t
}

findings contains f if {
	some e in events
	new(e)
	e.kind == "grant.accessed"
	is_string(e.grant_id)
	grant_problem(e)
	f := finding("grant_misuse", e.grant_id, [e], set())
}

# ------------------------------------------------------------------ cold reads

release_approvers(e) := {a.principal |
	some a in get(get(state, "releases", {}), e.artifact, [])
	a.t > e.t - approval_window
	a.t <= e.t
} | {x.principal |
	some x in events
	x.index < e.index
	x.kind == "artifact.approved"
	x.outcome == "ok"
	x.purpose == "release"
	x.artifact == e.artifact
	x.t > e.t - approval_window
}

unapproved_cold(e) if {
	e.tier == "cold"
	count(release_approvers(e)) < get(input, "approvals_required", 2)
}

findings contains f if {
	some e in reads
	new(e)
	unapproved_cold(e)
	key := concat("|", [e.artifact, e.principal])
	not recently_fired("cold_read_unapproved", key, e)
	not earlier_unapproved(e)
	f := finding("cold_read_unapproved", key, [e], set())
}

earlier_unapproved(e) if {
	some x in reads
	x.index < e.index
	x.artifact == e.artifact
	x.principal == e.principal
	x.t > e.t - window
	unapproved_cold(x)
}

# ------------------------------------------------------------------ compromised keys

compromise_marks contains {"ref": ref, "t": t, "index": -1} if {
	some ref, t in get(state, "compromised", {})
	is_number(t)
}

compromise_marks contains {"ref": x.key, "t": get(x, "since_t", x.t), "index": x.index} if {
	some x in events
	x.kind == "key.compromised"
	x.outcome == "ok"
	is_string(x.key)
}

compromised_refs := {m.ref | some m in compromise_marks}

uses_compromised(e, ref) if {
	compromised_refs[ref]
	ref in e.key_ids
	not containment_kinds[e.kind]
	some m in compromise_marks
	m.ref == ref
	m.index < e.index
	e.t >= m.t
}

findings contains f if {
	some e in events
	new(e)
	some ref in e.key_ids
	compromised_refs[ref]
	uses_compromised(e, ref)
	not recently_fired("compromised_key_use", ref, e)
	not earlier_use(e, ref)
	f := finding("compromised_key_use", ref, [e], {ref})
}

earlier_use(e, ref) if {
	some x in events
	x.index < e.index
	x.t > e.t - window
	uses_compromised(x, ref)
}

decision := {"findings": findings, "limits": limits}

tags := {"counted": counted, "limits": limits}
