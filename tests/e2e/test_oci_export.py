"""`export ID --oci DIR`: a CNCF ModelPack OCI layout that real OCI tools take.

skopeo (Debian's) inspects the layout; the layout is pushed to a real registry
(Debian's docker-registry, distribution 2.8, on loopback) and pulled back, blob
for blob, with the signed statement and the OMS signature reachable as referrers
of the model manifest. The export is logged before any plaintext is written, is
for cold releases only, and writes nothing when a file does not decrypt.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, make_tree
from tests.support.oci_registry import docker_registry, missing_tools
from tests.support.payloads import weights
from tests.support.tiers import stored_in
from weightvault.artifacts import Vault
from weightvault.errors import IntegrityError, PolicyError
from weightvault.lifecycle import ingest
from weightvault.lifecycle.oci import ARTIFACT_TYPE, CONFIG_MEDIA_TYPE, export_oci
from weightvault.lifecycle.trust import init_root
from weightvault.provenance import OMS_SIGNATURE_NAME, verify_model
from weightvault.store.layout import oms_signature_key, statement_key

pytestmark = pytest.mark.skipif(
    bool(missing_tools()), reason=f"OCI tools not installed: {missing_tools()} (.ci/install-tools)"
)
CLI = [sys.executable, "-m", "weightvault.cli"]
FILES = {
    "model.safetensors": weights(40_000),
    "config.json": b'{"layers": 2}',
    "README.md": b"# tiny\n",
    "tokenizer/tokenizer.json": b"{}",
    "run.py": b"print('hi')\n",
}
KINDS = {
    "model.safetensors": "application/vnd.cncf.model.weight.v1.raw",
    "config.json": "application/vnd.cncf.model.weight.config.v1.raw",
    "README.md": "application/vnd.cncf.model.doc.v1.raw",
    "tokenizer/tokenizer.json": "application/vnd.cncf.model.weight.config.v1.raw",
    "run.py": "application/vnd.cncf.model.code.v1.raw",
}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=os.environ.copy(), cwd=REPO, check=False
    )


def skopeo(*args: str) -> str:
    proc = subprocess.run(["skopeo", *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def blobs(layout: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (layout / "blobs" / "sha256").iterdir()}


@pytest.fixture
def release(vault: Vault, tmp_path: Path) -> str:
    init_root(vault)  # the signed root lists the OMS key the put signs model.sig with
    return stored_in(vault, make_tree(tmp_path / "src", FILES), "tiny-oci", "cold")


def test_the_layout_is_modelpack_and_skopeo_reads_it(
    vault: Vault, release: str, tmp_path: Path
) -> None:
    layout = tmp_path / "layout"
    proc = cli("export", release, "--oci", str(layout), "--tag", "v1", "--json")
    assert proc.returncode == 0, proc.stderr
    done = json.loads(proc.stdout)
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    manifest = json.loads(skopeo("inspect", "--raw", f"oci:{layout}:v1"))
    assert manifest["artifactType"] == ARTIFACT_TYPE
    assert manifest["config"]["mediaType"] == CONFIG_MEDIA_TYPE
    by_path = {
        layer["annotations"]["org.cncf.model.filepath"]: layer for layer in manifest["layers"]
    }
    assert {p: layer["mediaType"] for p, layer in by_path.items()} == KINDS
    # One raw layer per file: the layer is the file's plaintext, byte for byte.
    assert {p: blob(layout, layer["digest"]) for p, layer in by_path.items()} == FILES
    config = json.loads(blob(layout, manifest["config"]["digest"]))
    assert config["descriptor"]["name"] == "tiny-oci"
    assert config["modelfs"] == {
        "type": "layers",
        "diffIds": [layer["digest"] for layer in manifest["layers"]],
    }
    assert manifest["annotations"]["dev.weightvault.artifact.id"] == release
    # The statement and the OMS signature are referrers of the model manifest.
    index = json.loads((layout / "index.json").read_text())
    subject = next(m for m in index["manifests"] if m.get("artifactType") == ARTIFACT_TYPE)
    assert subject["digest"] == done["manifest"]
    referrers = {r: json.loads(blob(layout, r)) for r in done["referrers"]}
    assert {m["subject"]["digest"] for m in referrers.values()} == {subject["digest"]}
    held = {m["artifactType"]: blob(layout, m["layers"][0]["digest"]) for m in referrers.values()}
    bucket = vault.bucket("cold")
    assert held == {
        "application/vnd.in-toto+json": vault.store.get_bytes(bucket, statement_key(release)),
        "application/vnd.dev.sigstore.bundle.v0.3+json": vault.store.get_bytes(
            bucket, oms_signature_key(release)
        ),
    }
    tags = {
        m.get("annotations", {}).get("org.opencontainers.image.ref.name")
        for m in index["manifests"]
    }
    assert {"v1", subject["digest"].replace(":", "-")} <= tags
    # The export is logged as an export, with its format, before anything was written.
    logged = vault.history(release, {"artifact.exported"})
    assert logged[-1].event.details["format"] == "oci"
    assert logged[-1].event.details["manifest"] == subject["digest"]


def test_push_to_a_registry_and_pull_back_with_the_referrers(
    vault: Vault, release: str, tmp_path: Path
) -> None:
    layout = tmp_path / "layout"
    done = export_oci(vault, release, layout, "v1")
    fallback = done.manifest_digest.replace(":", "-")
    with docker_registry(tmp_path) as registry:
        repo = f"docker://{registry}/models/tiny"
        skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"{repo}:v1")
        # distribution 2.8 has no referrers API: the referrers go by the OCI 1.1
        # referrers tag schema (a tag sha256-<subject hex> naming an index of them).
        skopeo(
            "copy",
            "--all",
            "--dest-tls-verify=false",
            f"oci:{layout}:{fallback}",
            f"{repo}:{fallback}",
        )
        pulled = tmp_path / "pulled"
        skopeo("copy", "--src-tls-verify=false", f"{repo}:v1", f"oci:{pulled}:v1")
        skopeo(
            "copy",
            "--all",
            "--src-tls-verify=false",
            f"{repo}:{fallback}",
            f"oci:{pulled}:{fallback}",
        )
        api = _referrers_api(registry, done.manifest_digest)
    remote = json.loads(skopeo("inspect", "--raw", f"oci:{pulled}:v1"))
    assert remote["artifactType"] == ARTIFACT_TYPE
    # Every blob came back unchanged, the referrer manifests (and their subject) included.
    # Only the referrers index itself is re-encoded: skopeo 1.9 rewrites an index it
    # copies, dropping the descriptors' artifactType (its image-spec predates OCI 1.1).
    listing = json.loads(skopeo("inspect", "--raw", f"oci:{pulled}:{fallback}"))
    assert [m["digest"] for m in listing["manifests"]] == list(done.referrers)
    ours = json.loads((layout / "index.json").read_text())
    ours_listing = next(
        m["digest"] for m in ours["manifests"] if m["mediaType"].endswith("index.v1+json")
    )
    theirs = json.loads((pulled / "index.json").read_text())
    theirs_listing = {
        m["digest"] for m in theirs["manifests"] if m["mediaType"].endswith("index.v1+json")
    }
    here, there = blobs(layout), blobs(pulled)
    here.pop(ours_listing.removeprefix("sha256:"))
    for digest in theirs_listing:
        there.pop(digest.removeprefix("sha256:"))
    assert there == here
    if api is not None:  # a registry with the OCI 1.1 referrers API lists them there too
        assert {m["digest"] for m in api["manifests"]} >= set(done.referrers)
    # The pulled files with the pulled OMS signature verify with model_signing.
    model = tmp_path / "model"
    for layer in remote["layers"]:
        target = model / layer["annotations"]["org.cncf.model.filepath"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob(pulled, layer["digest"]))
    bundle = next(
        json.loads(blob(pulled, r))
        for r in done.referrers
        if json.loads(blob(pulled, r))["artifactType"].startswith("application/vnd.dev.sigstore")
    )
    (model / OMS_SIGNATURE_NAME).write_bytes(blob(pulled, bundle["layers"][0]["digest"]))
    pem = cli("trust", "show", "--signing-key-pem")
    assert pem.returncode == 0, pem.stderr
    verify_model(model, model / OMS_SIGNATURE_NAME, pem.stdout.encode())
    # And with model-signing's own command, as a user of the registry runs it.
    (tmp_path / "vault.pub").write_text(pem.stdout)
    stock = subprocess.run(
        [
            *(str(Path(sys.executable).parent / "model_signing"), "verify", "key"),
            *("--signature", str(model / OMS_SIGNATURE_NAME)),
            *("--public_key", str(tmp_path / "vault.pub"), str(model)),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert stock.returncode == 0, stock.stdout + stock.stderr


def _referrers_api(registry: str, digest: str) -> Any:
    try:
        url = f"http://{registry}/v2/models/tiny/referrers/{digest}"
        with urllib.request.urlopen(url, timeout=10) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        if exc.code != 404:  # distribution 2.8: no referrers API, a 404
            raise
        return None


def test_only_cold_releases_and_nothing_written_when_a_file_fails(
    vault: Vault, release: str, tmp_path: Path
) -> None:
    hot = ingest.put(vault, make_tree(tmp_path / "h", {"w.bin": b"x"}), "hot-one").artifact_id
    proc = cli("export", hot, "--oci", str(tmp_path / "hot"))
    assert proc.returncode == PolicyError.exit_code
    assert "only cold releases" in proc.stderr
    assert not (tmp_path / "hot").exists()
    # A flipped ciphertext byte: the export stops, logged as failed, and leaves no layout.
    bucket = vault.bucket("cold")
    entry = next(f for f in vault.catalog.files_of(release) if f["path"] == "model.safetensors")
    data = bytearray(vault.store.get_bytes(bucket, entry["object_key"]))
    data[len(data) // 2] ^= 1
    vault.store.put_bytes(bucket, entry["object_key"], bytes(data))
    with pytest.raises(IntegrityError):
        export_oci(vault, release, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    assert not [p for p in tmp_path.iterdir() if "bad" in p.name]
