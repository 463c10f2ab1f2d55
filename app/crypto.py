"""AES-256-GCM key ring: field encryption at rest with key ids and row-bound associated data.

A key ring is configured from one setting (``SCREENING_DATA_KEY``)::

    kid:base64(32 bytes)[,kid:base64(32 bytes)...]

Every key decrypts; the **last** one encrypts, so rotation means appending a new key, running
``screening keys rotate``, then removing the old key. A ciphertext is the 12-byte random nonce
followed by GCM's ciphertext and 16-byte tag; the key id is stored beside it (a column), never
inside it.

Associated data binds a value to its place: use :func:`field_aad` (table, column and row id)
so a ciphertext copied into another row or column fails to decrypt.

Limits (NIST SP 800-38D): with random 96-bit nonces a key must not encrypt more than 2**32
values. Rotate long before that.

No message raised here contains plaintext, ciphertext or key material.
"""

import base64
import binascii
import os
import re
import uuid
from collections.abc import Iterable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "KEY_BYTES",
    "NONCE_BYTES",
    "CryptoError",
    "DecryptError",
    "KeyRing",
    "KeySpecError",
    "field_aad",
    "generate_key_spec",
]

KEY_BYTES = 32
NONCE_BYTES = 12
_TAG_BYTES = 16
_KID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")


class CryptoError(Exception):
    """Root of this module's errors."""


class KeySpecError(CryptoError, ValueError):
    """The key-ring setting is malformed. The message never contains key material."""


class DecryptError(CryptoError):
    """A value cannot be decrypted: unknown key id, wrong associated data, or tampering."""


def field_aad(table: str, column: str, row_id: uuid.UUID | str) -> bytes:
    """Return the associated data that binds an encrypted value to one column of one row.

    Args:
        table: Table name, for example ``"screening"``.
        column: Column name, for example ``"answers_ct"``.
        row_id: The row's primary key (a UUID is rendered in its canonical hyphenated form).

    Returns:
        ``b"table|column|row_id"`` in ASCII.
    """
    return f"{table}|{column}|{row_id}".encode("ascii")


def generate_key_spec(kid: str) -> str:
    """Return a new ``kid:base64`` key entry with 32 random bytes, for first-run bootstrap.

    Args:
        kid: Key id: 1-32 characters of letters, digits, ``_``, ``.`` or ``-``.

    Raises:
        KeySpecError: If ``kid`` is not a valid key id.
    """
    _check_kid(kid, position=1)
    return f"{kid}:{base64.b64encode(os.urandom(KEY_BYTES)).decode('ascii')}"


def _check_kid(kid: str, *, position: int) -> None:
    if not _KID_PATTERN.fullmatch(kid):
        raise KeySpecError(
            f"key entry {position}: key id must be 1-32 characters of letters, digits, "
            "'_', '.' or '-', starting with a letter or digit"
        )


def _parse_entry(entry: str, position: int) -> tuple[str, bytes]:
    kid, sep, encoded = entry.strip().partition(":")
    if not sep:
        raise KeySpecError(f"key entry {position}: expected 'kid:base64-key'")
    kid = kid.strip()
    _check_kid(kid, position=position)
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeySpecError(f"key entry {position} ({kid}): key is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise KeySpecError(
            f"key entry {position} ({kid}): key must decode to {KEY_BYTES} bytes, got {len(key)}"
        )
    return kid, key


class KeyRing:
    """An ordered set of AES-256-GCM keys; the last one encrypts, every one decrypts."""

    __slots__ = ("_ciphers", "_current")

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        """Build a key ring from ``(kid, 32-byte key)`` pairs, oldest first.

        Raises:
            KeySpecError: On no keys, a bad kid, a wrong key length or a duplicate kid.
        """
        ciphers: dict[str, AESGCM] = {}
        for position, (kid, key) in enumerate(keys, start=1):
            _check_kid(kid, position=position)
            if kid in ciphers:
                raise KeySpecError(f"key entry {position}: duplicate key id {kid!r}")
            if len(key) != KEY_BYTES:
                raise KeySpecError(
                    f"key entry {position} ({kid}): key must be {KEY_BYTES} bytes, got {len(key)}"
                )
            ciphers[kid] = AESGCM(key)
        if not ciphers:
            raise KeySpecError("no data keys configured")
        self._ciphers = ciphers
        self._current = next(reversed(ciphers))

    @classmethod
    def parse(cls, spec: str) -> "KeyRing":
        """Parse the ``kid:base64[,kid:base64...]`` setting.

        Raises:
            KeySpecError: If the setting is empty or any entry is malformed.
        """
        entries = [part for part in spec.split(",") if part.strip()]
        return cls(_parse_entry(entry, position) for position, entry in enumerate(entries, 1))

    @classmethod
    def from_keys(cls, keys: Mapping[str, bytes]) -> "KeyRing":
        """Build a key ring from a mapping of kid to key, in insertion order (last encrypts)."""
        return cls(keys.items())

    @property
    def current_kid(self) -> str:
        """The key id new values are encrypted with."""
        return self._current

    @property
    def kids(self) -> tuple[str, ...]:
        """Every configured key id, oldest first."""
        return tuple(self._ciphers)

    def __repr__(self) -> str:
        return f"KeyRing(kids={self.kids!r}, current={self._current!r})"

    def encrypt(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        """Encrypt with the current key and a fresh random nonce.

        Args:
            plaintext: The bytes to protect.
            aad: Associated data (see :func:`field_aad`); needed again to decrypt.

        Returns:
            ``(kid, nonce || ciphertext || tag)``.
        """
        nonce = os.urandom(NONCE_BYTES)
        return self._current, nonce + self._ciphers[self._current].encrypt(nonce, plaintext, aad)

    def decrypt(self, kid: str, ciphertext: bytes, aad: bytes) -> bytes:
        """Decrypt and authenticate a value produced by :meth:`encrypt`.

        Raises:
            DecryptError: If the key id is not configured, the value is truncated, or the
                ciphertext, tag or associated data does not authenticate.
        """
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise DecryptError(f"unknown data key id {kid!r}")
        if len(ciphertext) < NONCE_BYTES + _TAG_BYTES:
            raise DecryptError("ciphertext is truncated")
        try:
            return cipher.decrypt(ciphertext[:NONCE_BYTES], ciphertext[NONCE_BYTES:], aad)
        except InvalidTag:
            raise DecryptError(
                "ciphertext failed authentication (altered, moved to another row, or wrong key)"
            ) from None

    def reencrypt(self, kid: str, ciphertext: bytes, aad: bytes) -> tuple[str, bytes]:
        """Decrypt with ``kid`` and encrypt again under the current key (for key rotation).

        Raises:
            DecryptError: As :meth:`decrypt`.
        """
        return self.encrypt(self.decrypt(kid, ciphertext, aad), aad)
