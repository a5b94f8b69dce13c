"""Cryptography: the only package (with keys) that touches ``cryptography.hazmat``.

Its modules are its public face, each a small safe layer with one opaque error
per failure:

- :mod:`weightvault.crypto.chunked`: the Cobblestone-256 payload format
  (c2sp.org/chunked-encryption), streaming both ways; ``encrypt``/``decrypt``
  keep their signatures for outside tools;
- :mod:`weightvault.crypto.binding`: the contexts and MACs that bind a
  ciphertext or manifest to its artifact and path;
- :mod:`weightvault.crypto.signing`: hybrid Ed25519 + ML-DSA-65 signatures;
- :mod:`weightvault.crypto.dsse`: DSSE envelopes signed with them;
- :mod:`weightvault.crypto.hpke`: HPKE (RFC 9180) wraps with ML-KEM-768 + X25519;
- :mod:`weightvault.crypto.tls`: a one-off CA and certificates for mutual TLS
  between the parts of a local service (the embedded store).
"""
