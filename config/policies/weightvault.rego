# Admission and promotion policy of the vault.
#
# Evaluated in-process by regopy (src/weightvault/policy.py documents the input
# document). Written in Rego v1 syntax, which rego-cpp parses by default.
#
# Every rule adds a reason to `deny`; the artifact is admitted only when `deny`
# is empty. Each reason starts with the id of the rule that produced it
# ("format: ...") and the ids are listed, with what they require, in `rules`.
#
# Fail closed: a rule denies unless its positive condition holds, so a missing
# or mistyped field (an undefined value, or a built-in error, which Rego makes
# undefined) produces a denial, never a silent pass. Messages only use `get`
# and sprintf("%v"), which cannot fail.
package weightvault.admission

# --------------------------------------------------------------------- constants

rules := {
	"tier": "the target tier is hot, warm or cold",
	"files": "the artifact lists at least one file, each with a path and a format",
	"format": "every file is safetensors, json, text, sentencepiece, gguf or npy (no pickle)",
	"extension": "no file has an extension of a pickle-based format",
	"encryption": "payload c2sp-chunked/Cobblestone-256, DEK wrap A256GCM, 256-bit KEK",
	"provenance": "warm and cold need complete provenance",
	"git": "warm and cold need a clean git tree at a known commit",
	"signature": "a valid hybrid Ed25519 + ML-DSA-65 signature",
	"validation": "Great Expectations validation passed (a partial one is named by validation_complete)",
	"validation_complete": "validation ran every check: partial (a check skipped, each named) never admits",
	"license": "cold needs a license",
	"two_person": "cold needs signed approvals, in the log, from enough distinct principals other than the creator",
	"reproducible": "where required (cold by default), a valid reproducibility certificate in the log",
	"backfilled": "provenance recovered after the fact (adopted) reaches warm only with signed approvals in the log, and cold only once re-attested by a valid reproducibility certificate",
}

tiers := {"hot", "warm", "cold"}

replayable_tiers := {"warm", "cold"}

allowed_formats := {"safetensors", "json", "text", "sentencepiece", "gguf", "npy"}

pickle_formats := {"pickle", "torch-zip", "joblib", "dill", "npy-pickle"}

denied_extensions := {".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib", ".jbl", ".dill"}

# The same scheme under the name the brief uses and the one the manifest records.
payload_schemes := {"c2sp-chunked/Cobblestone-256", "c2sp.org/chunked-encryption@v1 Cobblestone-256"}

signature_algorithms := {"ed25519", "ml-dsa-65"}

# --------------------------------------------------------------------- accessors

# obj[key], or null when obj is not an object or lacks the key.
get(obj, key) := value if {
	is_object(obj)
	value := obj[key]
} else := null

artifact := get(input, "artifact")

request := get(input, "request")

target := get(artifact, "target_tier")

files := get(artifact, "files")

encryption := get(artifact, "encryption")

signature := get(artifact, "signature")

provenance := get(artifact, "provenance")

git := get(provenance, "git")

needs_replay if target in replayable_tiers

# Warm and cold need complete provenance at a clean commit, but for an adopted artifact
# whose recovered (backfilled) provenance signed approvals accepted for warm.
needs_complete_provenance if {
	needs_replay
	not approved_backfill
}

is_cold if target == "cold"

non_empty_string(value) if {
	is_string(value)
	trim_space(value) != ""
}

# --------------------------------------------------------------------- decision

default allow := false

allow if count(deny) == 0

decision := {"allow": allow, "deny": deny}

# --------------------------------------------------------------------- tier

deny contains msg if {
	not target in tiers
	msg := sprintf("tier: target tier %v is not one of hot, warm, cold", [target])
}

# --------------------------------------------------------------------- files

files_listed if {
	is_array(files)
	count(files) > 0
}

deny contains "files: the artifact lists no files" if not files_listed

well_formed_file(f) if {
	non_empty_string(get(f, "path"))
	is_string(get(f, "format"))
}

deny contains msg if {
	some f in files
	not well_formed_file(f)
	msg := sprintf("files: entry %v lacks a path or a format", [f])
}

# --------------------------------------------------------------------- format

deny contains msg if {
	some f in files
	f.format in pickle_formats
	msg := sprintf("format: %v is %v, a pickle-based format (loading it can execute code)", [f.path, f.format])
}

deny contains msg if {
	some f in files
	well_formed_file(f)
	not f.format in pickle_formats
	not f.format in allowed_formats
	msg := sprintf("format: %v is %v, which is not an allowed format", [f.path, f.format])
}

# --------------------------------------------------------------------- extension

deny contains msg if {
	some f in files
	some ext in denied_extensions
	endswith(lower(f.path), ext)
	msg := sprintf("extension: %v ends in %v, an extension of pickle-based formats", [f.path, ext])
}

# --------------------------------------------------------------------- encryption

deny contains msg if {
	not get(encryption, "payload") in payload_schemes
	msg := sprintf("encryption: payload scheme %v is not c2sp-chunked/Cobblestone-256", [get(encryption, "payload")])
}

deny contains msg if {
	not get(encryption, "dek_wrap") == "A256GCM"
	msg := sprintf("encryption: DEK wrap %v is not A256GCM", [get(encryption, "dek_wrap")])
}

deny contains msg if {
	not get(encryption, "kek_bits") == 256
	msg := sprintf("encryption: KEK size %v bits is not 256", [get(encryption, "kek_bits")])
}

# --------------------------------------------------------------------- provenance

deny contains msg if {
	needs_complete_provenance
	not get(provenance, "complete") == true
	msg := sprintf("provenance: %v needs complete provenance (complete: %v, missing: %v)", [target, get(provenance, "complete"), get(provenance, "missing")])
}

git_clean if {
	regex.match(`^[0-9a-f]{40}$`, get(git, "commit"))
	get(git, "dirty") == false
}

deny contains msg if {
	needs_complete_provenance
	not git_clean
	msg := sprintf("git: %v needs a clean git tree at a known commit (commit: %v, dirty: %v)", [target, get(git, "commit"), get(git, "dirty")])
}

# --------------------------------------------------------------------- signature

deny contains "signature: the artifact has no valid signature" if not get(signature, "valid") == true

# Names as weightvault.crypto.signing spells them, alone or as the suite "ed25519+ml-dsa-65".
signed_with contains lower(trim_space(part)) if {
	some alg in get(signature, "algorithms")
	is_string(alg)
	some part in split(alg, "+")
}

deny contains msg if {
	get(signature, "valid") == true
	some alg in signature_algorithms
	not alg in signed_with
	msg := sprintf("signature: the hybrid signature lacks %v", [alg])
}

# --------------------------------------------------------------------- validation

validation_status := get(get(artifact, "validation"), "status")

deny contains msg if {
	not validation_status in {"passed", "partial"}
	msg := sprintf("validation: Great Expectations validation is %v, not passed", [validation_status])
}

deny contains msg if {
	validation_status == "partial"
	msg := sprintf("validation_complete: validation is partial, skipped %v; run it with the model repository and its validation config", [get(get(artifact, "validation"), "skipped")])
}

# --------------------------------------------------------------------- license

deny contains "license: cold needs a license" if {
	is_cold
	not non_empty_string(get(artifact, "license"))
}

# --------------------------------------------------------------------- two-person rule
#
# request.approvals is what the vault's approval check found in the signed log
# (weightvault.lifecycle.approvals.check_approvals): statements signed by enrolled
# approvers' own keys, within their window. Nothing typed into a form reaches it.

approvals := get(request, "approvals")

approvers := get(approvals, "approvers")

required_approvals := get(approvals, "required")

creator_name := lower(trim_space(get(artifact, "creator")))

independent_approvers contains lower(trim_space(name)) if {
	some name in approvers
	is_string(name)
	counts_as_independent(name)
}

# [approvals] creator_may_approve = true lets the creator's own approval count.
counts_as_independent(_) if get(approvals, "creator_may_approve") == true

counts_as_independent(name) if lower(trim_space(name)) != creator_name

enough_approvers if {
	is_number(required_approvals)
	required_approvals >= 1
	count(independent_approvers) >= required_approvals
}

deny contains "two_person: cold needs a known creator" if {
	is_cold
	not non_empty_string(get(artifact, "creator"))
}

deny contains msg if {
	is_cold
	not get(approvals, "satisfied") == true
	msg := sprintf("two_person: cold needs signed approvals from %v distinct principals; the log backs %v (not counted: %v)", [required_approvals, approvers, get(approvals, "not_counted")])
}

deny contains msg if {
	is_cold
	get(approvals, "satisfied") == true
	not enough_approvers
	msg := sprintf("two_person: cold needs %v approvers other than the creator %v; the approvals name %v", [required_approvals, get(artifact, "creator"), approvers])
}

# --------------------------------------------------------------------- reproducible
#
# request.certificate is what weightvault.lifecycle.certificate found in the
# signed log: the latest `artifact.recovered` outcome naming a reproducibility
# certificate, its statement signed by a trusted vault key and about this
# artifact's content and files. `required` comes from the settings ([policy]
# cold_requires_certificate, warm_requires_certificate). A cold promotion with no
# certificate document at all is treated as required (fail closed).

certificate := get(request, "certificate")

certificate_required if get(certificate, "required") == true

certificate_required if {
	is_cold
	not is_object(certificate)
}

certificate_required if {
	is_cold
	not is_boolean(get(certificate, "required"))
}

deny contains msg if {
	certificate_required
	not get(certificate, "present") == true
	msg := sprintf("reproducible: %v needs a reproducibility certificate in the log; %v", [target, get(certificate, "reason")])
}

deny contains msg if {
	certificate_required
	get(certificate, "present") == true
	not get(certificate, "valid") == true
	msg := sprintf("reproducible: %v needs a valid reproducibility certificate; the one at log entry %v is not: %v", [target, get(certificate, "log_index"), get(certificate, "reason")])
}

# --------------------------------------------------------------------- backfilled
#
# provenance.backfilled is true for an adopted artifact (weightvault.lifecycle.adopt):
# its provenance was recovered after the fact (a git work tree around it, a Hugging
# Face revision, an MLflow run), never captured where it was made. Absent means false;
# anything but a boolean denies. Warm needs signed approvals in the log (`approve ID
# --to warm`, request.approvals); with them the provenance and git rules accept what
# was recovered. Cold needs a valid reproducibility certificate (re-attestation),
# whatever [policy] requires of other artifacts.

backfilled_value := get(provenance, "backfilled")

backfilled if backfilled_value == true

approved_backfill if {
	backfilled
	target == "warm"
	get(approvals, "satisfied") == true
}

deny contains msg if {
	backfilled_value != null
	not is_boolean(backfilled_value)
	msg := sprintf("backfilled: provenance.backfilled %v is not a boolean", [backfilled_value])
}

deny contains msg if {
	backfilled
	target == "warm"
	not get(approvals, "satisfied") == true
	msg := sprintf("backfilled: adopted provenance reaches warm only with signed approvals (approve ID --to warm) from %v principals; the log backs %v", [required_approvals, approvers])
}

deny contains msg if {
	backfilled
	is_cold
	not get(certificate, "valid") == true
	msg := sprintf("backfilled: adopted provenance reaches cold only once re-attested by a valid reproducibility certificate in the log; %v", [get(certificate, "reason")])
}
