"""ModelPack layer media types by file kind (lifecycle.oci.media_type)."""

from __future__ import annotations

import pytest

from weightvault.lifecycle.oci import media_type

BASE = "application/vnd.cncf.model"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("model.safetensors", "weight"),
        ("shards/model-00001-of-00002.SAFETENSORS", "weight"),
        ("llama.gguf", "weight"),
        ("model.onnx", "weight"),
        ("config.json", "weight.config"),
        ("tokenizer/tokenizer.json", "weight.config"),
        ("tokenizer.model", "weight.config"),
        ("README.md", "doc"),
        ("LICENSE", "doc"),
        ("docs/model_card.txt", "doc"),
        ("modeling.py", "code"),
    ],
)
def test_known_kinds(path: str, kind: str) -> None:
    assert media_type(path) == (f"{BASE}.{kind}.v1.raw", False)


def test_an_unknown_file_is_a_weight_marked_untested() -> None:
    assert media_type("blob.xyz") == (f"{BASE}.weight.v1.raw", True)
    assert media_type("noextension") == (f"{BASE}.weight.v1.raw", True)
