"""Escrow of the cold tier's recovery key: a 32-byte seed split into SLIP-39 shares.

The escrow key pair (ML-KEM-768 + X25519, see
:mod:`weightvault.crypto.hpke`) is derived deterministically from a
32-byte seed. The seed is split with SLIP-39 (``shamir-mnemonic``) into
``shares`` mnemonics, one per custodian, a single group of which any
``threshold`` recover it; fewer reveal nothing about it.

Failures, always one line and never quoting a share:

* a share that is not a SLIP-39 mnemonic (unknown word, bad checksum, bad
  length), too few shares, or shares of different splits:
  :class:`~weightvault.errors.InvalidInputError`;
* shares that decode but do not combine (the shared-secret digest check
  fails, e.g. a share altered consistently with its checksum):
  :class:`~weightvault.errors.IntegrityError`.

A wrong passphrase is not detectable by design (SLIP-39 gives plausible
deniability): it recovers a different seed, whose key pair then fails to
unwrap anything with :class:`~weightvault.errors.IntegrityError`.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Sequence
from typing import Final

import shamir_mnemonic
from shamir_mnemonic.share import Share

from weightvault.crypto.hpke import (
    SEED_SIZE,
    HpkePrivateKey,
    HpkePublicKey,
    generate_keypair_from_seed,
)
from weightvault.errors import IntegrityError, InvalidInputError

__all__ = [
    "MAX_SHARES",
    "escrow_keypair",
    "generate_escrow_seed",
    "recover_seed",
    "split_seed",
]

MAX_SHARES: Final = 16
_MIN_SEED: Final = 16


def _check_passphrase(passphrase: object) -> bytes:
    if not isinstance(passphrase, bytes) or not all(32 <= b <= 126 for b in passphrase):
        raise InvalidInputError("escrow passphrase must be printable ASCII bytes")
    return passphrase


def generate_escrow_seed() -> bytes:
    """A fresh random 32-byte escrow seed from the OS CSPRNG."""
    return os.urandom(SEED_SIZE)


def split_seed(
    seed: bytes, threshold: int = 3, shares: int = 5, passphrase: bytes = b""
) -> list[str]:
    """Split ``seed`` into ``shares`` SLIP-39 mnemonics, any ``threshold`` of which recover it.

    One group, ``threshold``-of-``shares``, with 2 <= threshold <= shares <= 16.
    ``seed`` may be any even length of at least 16 bytes (SLIP-39's rule); the
    escrow seed is 32 bytes. ``passphrase`` must be printable ASCII.
    """
    if not isinstance(seed, bytes) or len(seed) < _MIN_SEED or len(seed) % 2:
        raise InvalidInputError("escrow seed must be an even number of bytes, at least 16")
    if (
        not isinstance(threshold, int)
        or not isinstance(shares, int)
        or isinstance(threshold, bool)
        or isinstance(shares, bool)
        or not 2 <= threshold <= shares <= MAX_SHARES
    ):
        raise InvalidInputError(
            f"escrow needs 2 <= threshold <= shares <= {MAX_SHARES}, got {threshold}-of-{shares}"
        )
    secret_pass = _check_passphrase(passphrase)
    try:
        groups = shamir_mnemonic.generate_mnemonics(
            group_threshold=1,
            groups=[(threshold, shares)],
            master_secret=seed,
            passphrase=secret_pass,
        )
    except (ValueError, shamir_mnemonic.MnemonicError):
        raise InvalidInputError("escrow seed could not be split into SLIP-39 shares") from None
    return list(groups[0])


def _split_params(share: Share) -> tuple[int, bool, int, int, int, int, int]:
    return (
        share.identifier,
        share.extendable,
        share.iteration_exponent,
        share.group_index,
        share.group_threshold,
        share.group_count,
        share.member_threshold,
    )


def recover_seed(mnemonics: Sequence[str], passphrase: bytes = b"") -> bytes:
    """Combine SLIP-39 mnemonics back into the seed.

    Duplicate shares count once; when more than the threshold are given,
    the first distinct ones are used. Raises InvalidInputError for a
    malformed share (naming its position only), too few shares or shares
    from different splits, and IntegrityError when the shares decode but
    fail SLIP-39's digest check.
    """
    if isinstance(mnemonics, str | bytes) or not isinstance(mnemonics, Sequence):
        raise InvalidInputError("escrow shares must be a list of mnemonics")
    secret_pass = _check_passphrase(passphrase)
    decoded: list[tuple[int, str, Share]] = []
    for position, mnemonic in enumerate(mnemonics, start=1):
        if not isinstance(mnemonic, str):
            raise InvalidInputError(f"escrow share {position} is not a string")
        try:
            decoded.append((position, mnemonic, Share.from_mnemonic(mnemonic)))
        except (shamir_mnemonic.MnemonicError, ValueError):
            # The library's message can quote words of the share: never pass it on.
            raise InvalidInputError(
                f"escrow share {position} is not a valid SLIP-39 mnemonic "
                "(unknown word, bad checksum or wrong length)"
            ) from None
    if not decoded:
        raise InvalidInputError("no escrow shares given")
    first = decoded[0][2]
    if first.group_count != 1:
        raise InvalidInputError("escrow shares must come from a single-group SLIP-39 split")
    by_index: dict[int, tuple[int, Share]] = {}
    for position, _, share in decoded:
        if _split_params(share) != _split_params(first):
            raise InvalidInputError(
                f"escrow share {position} comes from a different split than share 1"
            )
        seen = by_index.get(share.index)
        if seen is None:
            by_index[share.index] = (position, share)
        elif not hmac.compare_digest(seen[1].value, share.value):
            raise InvalidInputError(
                f"escrow shares {seen[0]} and {position} claim the same member index"
            )
    needed = first.member_threshold
    if len(by_index) < needed:
        raise InvalidInputError(
            f"too few escrow shares: {len(by_index)} distinct given, {needed} required"
        )
    # SLIP-39 combines exactly `threshold` shares: use the first distinct ones given.
    chosen = [
        mnemonic for position, mnemonic, share in decoded if by_index[share.index][0] == position
    ][:needed]
    try:
        seed: bytes = shamir_mnemonic.combine_mnemonics(chosen, passphrase=secret_pass)
    except (shamir_mnemonic.MnemonicError, ValueError):
        raise IntegrityError(
            "escrow shares do not combine: one or more shares are corrupted"
        ) from None
    return seed


def escrow_keypair(seed: bytes) -> tuple[HpkePrivateKey, HpkePublicKey]:
    """The escrow HPKE key pair of a 32-byte seed (same seed, same key pair)."""
    return generate_keypair_from_seed(seed)
