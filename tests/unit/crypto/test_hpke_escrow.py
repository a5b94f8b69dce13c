"""HPKE (ML-KEM-768 + X25519) wrapping of DEKs, and SLIP-39 escrow of the key seed."""

from __future__ import annotations

import hashlib
import itertools
import os
import pickle
import re

import pytest
import shamir_mnemonic
from shamir_mnemonic.share import Share

from weightvault.crypto.hpke import (
    PUBLIC_KEY_SIZE,
    HpkePrivateKey,
    HpkePublicKey,
    generate_keypair,
    generate_keypair_from_seed,
    load_public,
    public_bytes,
    unwrap,
    wrap,
)
from weightvault.errors import IntegrityError, InvalidInputError
from weightvault.keys import escrow_keypair, generate_escrow_seed, recover_seed, split_seed

INFO = b"escrow-dek\x00artifact-0001"
DEK = bytes(range(32))
SEED = bytes.fromhex("0f" * 32)

# draft-connolly-cfrg-xwing-kem-08, appendix C, first vector: decapsulation key
# (the 32-byte seed) and the encapsulation key it expands to.
XWING_SK = "7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26"
XWING_PK = re.sub(
    r"\s+",
    "",
    """
    e2236b35a8c24b39b10aa1323a96a919a2ced88400633a7b07131713fc14b2b5b19cfc3d
    a5fa1a92c49f25513e0fd30d6b1611c9ab9635d7086727a4b7d21d34244e66969cf15b3b
    2a785329f61b096b277ea037383479a6b556de7231fe4b7fa9c9ac24c0699a0018a52534
    01bacfa905ca816573e56a2d2e067e9b7287533ba13a937dedb31fa44baced4076992361
    0034ae31e619a170245199b3c5c39864859fe1b4c9717a07c30495bdfb98a0a002ccf56c
    1286cef5041dede3c44cf16bf562c7448518026b3d8b9940680abd38a1575fd27b58da06
    3bfac32c39c30869374c05c1aeb1898b6b303cc68be455346ee0af699636224a148ca2ae
    a10463111c709f69b69c70ce8538746698c4c60a9aef0030c7924ceec42a5d36816f545e
    ae13293460b3acb37ea0e13d70e4aa78686da398a8397c08eaf96882113fe4f7bad4da40
    b0501e1c753efe73053c87014e8661c33099afe8bede414a5b1aa27d8392b3e131e9a70c
    1055878240cad0f40d5fe3cdf85236ead97e2a97448363b2808caafd516cd25052c5c362
    543c2517e4acd0e60ec07163009b6425fc32277acee71c24bab53ed9f29e74c66a0a3564
    955998d76b96a9a8b50d1635a4d7a67eb42df5644d330457293a8042f53cc7a69288f17e
    d55827e82b28e82665a86a14fbd96645eca8172c044f83bc0d8c0b4c8626985631ca87af
    829068f1358963cb333664ca482763ba3b3bb208577f9ba6ac62c25f76592743b64be519
    317714cb4102cb7b2f9a25b2b4f0615de31decd9ca55026d6da0b65111b16fe52feed8a4
    87e144462a6dba93728f500b6ffc49e515569ef25fed17aff520507368253525860f58be
    3be61c964604a6ac814e6935596402a520a4670b3d284318866593d15a4bb01c35e3e587
    ee0c67d2880d6f2407fb7a70712b838deb96c5d7bf2b44bcf6038ccbe33fbcf51a54a584
    fe90083c91c7a6d43d4fb15f48c60c2fd66e0a8aad4ad64e5c42bb8877c0ebec2b5e387c
    8a988fdc23beb9e16c8757781e0a1499c61e138c21f216c29d076979871caa6942bafc09
    0544bee99b54b16cb9a9a364d6246d9f42cce53c66b59c45c8f9ae9299a75d15180c3c95
    2151a91b7a10772429dc4cbae6fcc622fa8018c63439f890630b9928db6bb7f9438ae406
    5ed34d73d486f3f52f90f0807dc88dfdd8c728e954f1ac35c06c000ce41a0582580e3bb5
    7b672972890ac5e7988e7850657116f1b57d0809aaedec0bede1ae148148311c6f7e3173
    46e5189fb8cd635b986f8c0bdd27641c584b778b3a911a80be1c9692ab8e1bbb12839573
    cce19df183b45835bbb55052f9fc66a1678ef2a36dea78411e6c8d60501b4e60592d1369
    8a943b509185db912e2ea10be06171236b327c71716094c964a68b03377f513a05bcd99c
    1f346583bb052977a10a12adfc758034e5617da4c1276585e5774e1f3b9978b09d0e9c44
    d3bc86151c43aad185712717340223ac381d21150a04294e97bb13bbda21b5a182b6da96
    9e19a7fd072737fa8e880a53c2428e3d049b7d2197405296ddb361912a7bcf4827ced611
    d0c7a7da104dde4322095339f64a61d5bb108ff0bf4d780cae509fb22c256914193ff734
    9042581237d522828824ee3bdfd07fb03f1f942d2ea179fe722f06cc03de5b69859edb06
    eff389b27dce59844570216223593d4ba32d9abac8cd049040ef6534
    """,
)


@pytest.fixture(scope="module")
def keypair() -> tuple[HpkePrivateKey, HpkePublicKey]:
    return generate_keypair_from_seed(SEED)


@pytest.fixture(scope="module")
def blob(keypair: tuple[HpkePrivateKey, HpkePublicKey]) -> bytes:
    return wrap(keypair[1], DEK, INFO)


# --- keys ------------------------------------------------------------------


def test_seed_expansion_matches_xwing_vector() -> None:
    _, public = generate_keypair_from_seed(bytes.fromhex(XWING_SK))
    assert len(XWING_PK) == 2 * PUBLIC_KEY_SIZE
    assert public_bytes(public).hex() == XWING_PK


def test_keypair_is_deterministic(keypair: tuple[HpkePrivateKey, HpkePublicKey]) -> None:
    again_private, again_public = generate_keypair_from_seed(SEED)
    assert again_public == keypair[1]
    assert again_private.public_key() == keypair[1]
    assert generate_keypair_from_seed(bytes(32))[1] != keypair[1]
    # A key pair derived again from the seed opens what was wrapped before.
    assert unwrap(again_private, wrap(keypair[1], DEK, INFO), INFO) == DEK


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33), "0" * 32])
def test_seed_must_be_32_bytes(seed: object) -> None:
    with pytest.raises(InvalidInputError):
        generate_keypair_from_seed(seed)  # type: ignore[arg-type]


def test_public_bytes_round_trip(keypair: tuple[HpkePrivateKey, HpkePublicKey]) -> None:
    encoded = public_bytes(keypair[1])
    assert len(encoded) == PUBLIC_KEY_SIZE == 1216
    loaded = load_public(encoded)
    assert loaded == keypair[1]
    assert loaded.fingerprint == hashlib.sha256(encoded).hexdigest()
    assert unwrap(keypair[0], wrap(loaded, DEK, INFO), INFO) == DEK


@pytest.mark.parametrize("data", [b"", bytes(1215), bytes(1217), "x" * 1216])
def test_load_public_rejects_malformed(data: object) -> None:
    with pytest.raises(InvalidInputError):
        load_public(data)  # type: ignore[arg-type]


def test_generate_keypair_returns_its_seed() -> None:
    seed, private, public = generate_keypair()
    assert len(seed) == 32
    assert generate_keypair_from_seed(seed)[1] == public == private.public_key()


def test_private_key_never_shows_material(keypair: tuple[HpkePrivateKey, HpkePublicKey]) -> None:
    for text in (repr(keypair[0]), str(keypair[0]), repr(keypair[1])):
        assert SEED.hex() not in text
        assert "0f0f0f0f" not in text
    with pytest.raises(TypeError):
        pickle.dumps(keypair[0])


# --- wrap / unwrap -----------------------------------------------------------


def test_round_trip(keypair: tuple[HpkePrivateKey, HpkePublicKey], blob: bytes) -> None:
    assert blob[:6] == b"WVHW\x01\x01"
    assert len(blob) == 6 + 1120 + 32 + 16
    assert unwrap(keypair[0], blob, INFO) == DEK
    assert wrap(keypair[1], DEK, INFO) != blob  # fresh encapsulation each time
    assert DEK not in blob


def test_aad_is_bound(keypair: tuple[HpkePrivateKey, HpkePublicKey]) -> None:
    sealed = wrap(keypair[1], DEK, INFO, aad=b"tier=cold;kek=escrow-v1")
    assert unwrap(keypair[0], sealed, INFO, aad=b"tier=cold;kek=escrow-v1") == DEK
    for aad in (b"", b"tier=cold;kek=escrow-v2"):
        with pytest.raises(IntegrityError):
            unwrap(keypair[0], sealed, INFO, aad=aad)


def test_info_and_aad_framing_is_unambiguous(keypair: tuple[HpkePrivateKey, HpkePublicKey]) -> None:
    sealed = wrap(keypair[1], DEK, b"ab", aad=b"c")
    with pytest.raises(IntegrityError):
        unwrap(keypair[0], sealed, b"a", aad=b"bc")


@pytest.mark.parametrize(
    "info", [b"escrow-dek\x00artifact-0002", b"escrow-dek\x00artifact-000", INFO + b"\x00", b"x"]
)
def test_wrong_info_fails(
    keypair: tuple[HpkePrivateKey, HpkePublicKey], blob: bytes, info: bytes
) -> None:
    with pytest.raises(IntegrityError):
        unwrap(keypair[0], blob, info)


def test_wrong_key_fails(blob: bytes) -> None:
    other, _ = generate_keypair_from_seed(os.urandom(32))
    with pytest.raises(IntegrityError):
        unwrap(other, blob, INFO)


def test_every_blob_byte_matters(
    keypair: tuple[HpkePrivateKey, HpkePublicKey], blob: bytes
) -> None:
    for index in range(len(blob)):
        bad = bytearray(blob)
        bad[index] ^= 0x01
        with pytest.raises(IntegrityError):
            unwrap(keypair[0], bytes(bad), INFO)


def test_x25519_high_bit_of_encapsulation_matters(
    keypair: tuple[HpkePrivateKey, HpkePublicKey], blob: bytes
) -> None:
    # X25519 ignores the top bit of a u-coordinate; the KEM must still bind it.
    bad = bytearray(blob)
    bad[6 + 1120 - 1] ^= 0x80
    with pytest.raises(IntegrityError):
        unwrap(keypair[0], bytes(bad), INFO)


@pytest.mark.parametrize("cut", [0, 6, 100, 1126, 1141, 1173])
def test_truncated_or_extended_blob_fails(
    keypair: tuple[HpkePrivateKey, HpkePublicKey], blob: bytes, cut: int
) -> None:
    with pytest.raises(IntegrityError):
        unwrap(keypair[0], blob[:cut], INFO)
    with pytest.raises(IntegrityError):
        unwrap(keypair[0], blob + bytes(cut or 1), INFO)


def test_wrap_rejects_bad_input(keypair: tuple[HpkePrivateKey, HpkePublicKey]) -> None:
    for secret, info in ((DEK, b""), (b"", INFO), (bytes(1025), INFO), ("text", INFO)):
        with pytest.raises(InvalidInputError):
            wrap(keypair[1], secret, info)  # type: ignore[arg-type]


# --- escrow --------------------------------------------------------------------


@pytest.fixture(scope="module")
def escrow_seed() -> bytes:
    return generate_escrow_seed()


@pytest.fixture(scope="module")
def shares(escrow_seed: bytes) -> list[str]:
    return split_seed(escrow_seed, threshold=3, shares=5)


def test_split_makes_n_single_group_shares(shares: list[str]) -> None:
    assert len(shares) == 5
    assert len(set(shares)) == 5
    decoded = [Share.from_mnemonic(m) for m in shares]
    assert {s.member_threshold for s in decoded} == {3}
    assert {s.group_count for s in decoded} == {1}


def test_any_k_shares_recover_seed_and_keypair(escrow_seed: bytes, shares: list[str]) -> None:
    _, public = escrow_keypair(escrow_seed)
    sealed = wrap(public, DEK, INFO)
    for subset in itertools.combinations(shares, 3):
        recovered = recover_seed(list(subset))
        assert recovered == escrow_seed
        again_private, again_public = escrow_keypair(recovered)
        assert again_public == public
        assert unwrap(again_private, sealed, INFO) == DEK


def test_more_than_k_and_duplicate_shares(escrow_seed: bytes, shares: list[str]) -> None:
    assert recover_seed(shares) == escrow_seed
    assert recover_seed([shares[0], shares[0], shares[1], shares[2]]) == escrow_seed
    assert recover_seed([f"  {shares[0].upper()}  ", shares[3], shares[4]]) == escrow_seed


def test_k_minus_one_shares_fail(shares: list[str]) -> None:
    for subset in itertools.combinations(shares, 2):
        with pytest.raises(InvalidInputError) as info:
            recover_seed(list(subset))
        assert "too few" in str(info.value)
    with pytest.raises(InvalidInputError):
        recover_seed([shares[0], shares[0], shares[1]])  # a duplicate is not a third share
    with pytest.raises(InvalidInputError):
        recover_seed([])


def test_corrupted_share_fails_without_quoting_it(shares: list[str]) -> None:
    words = shares[1].split()
    for position in (0, 5, len(words) - 1):
        changed = list(words)
        changed[position] = "academic" if words[position] != "academic" else "acid"
        with pytest.raises(InvalidInputError) as info:
            recover_seed([shares[0], " ".join(changed), shares[2]])
        message = str(info.value)
        assert "share 2" in message
        assert "\n" not in message
        assert " ".join(words[:2]) not in message
        assert " ".join(changed[:2]) not in message
    with pytest.raises(InvalidInputError) as info:
        recover_seed([shares[0], shares[1] + " notaword", shares[2]])
    assert "notaword" not in str(info.value)


def test_share_with_valid_checksum_but_wrong_value_fails(shares: list[str]) -> None:
    share = Share.from_mnemonic(shares[2])
    value = bytearray(share.value)
    value[0] ^= 0x01
    forged = Share(**{**share.__dict__, "value": bytes(value)}).mnemonic()
    Share.from_mnemonic(forged)  # the checksum is valid
    with pytest.raises(IntegrityError) as info:
        recover_seed([shares[0], shares[1], forged])
    assert forged.split()[0] not in str(info.value).split()


def test_shares_of_different_splits_fail(escrow_seed: bytes, shares: list[str]) -> None:
    other = split_seed(escrow_seed, threshold=3, shares=5)
    with pytest.raises(InvalidInputError):
        recover_seed([shares[0], shares[1], other[2]])


def test_passphrase(escrow_seed: bytes) -> None:
    protected = split_seed(escrow_seed, 2, 3, passphrase=b"correct horse")
    assert recover_seed(protected[:2], passphrase=b"correct horse") == escrow_seed
    # A wrong passphrase gives another seed (SLIP-39 by design), hence another key pair.
    wrong = recover_seed(protected[:2], passphrase=b"wrong")
    assert wrong != escrow_seed
    _, public = escrow_keypair(escrow_seed)
    wrong_private, _ = escrow_keypair(wrong)
    with pytest.raises(IntegrityError):
        unwrap(wrong_private, wrap(public, DEK, INFO), INFO)
    with pytest.raises(InvalidInputError):
        split_seed(escrow_seed, passphrase="caf\u00e9".encode())


@pytest.mark.parametrize(
    ("threshold", "count"), [(1, 5), (0, 5), (6, 5), (3, 17), (True, 5), (2, 1)]
)
def test_split_rejects_bad_parameters(escrow_seed: bytes, threshold: int, count: int) -> None:
    with pytest.raises(InvalidInputError):
        split_seed(escrow_seed, threshold, count)


@pytest.mark.parametrize("seed", [b"", bytes(15), bytes(17), "0" * 32])
def test_split_rejects_bad_seed(seed: object) -> None:
    with pytest.raises(InvalidInputError):
        split_seed(seed)  # type: ignore[arg-type]


def test_recover_rejects_a_bare_string(shares: list[str]) -> None:
    with pytest.raises(InvalidInputError):
        recover_seed(shares[0])


def test_library_api_still_matches() -> None:
    """Guard the shamir-mnemonic calls the escrow relies on."""
    groups = shamir_mnemonic.generate_mnemonics(1, [(2, 2)], bytes(16))
    assert shamir_mnemonic.combine_mnemonics(groups[0]) == bytes(16)
