"""AES-256-GCM key ring: parsing, binding to associated data, tampering and rotation."""

import base64
import uuid

import pytest

from app import crypto

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
SPEC_A = "a:" + base64.b64encode(KEY_A).decode()
SPEC_B = "b:" + base64.b64encode(KEY_B).decode()
ROW_1 = uuid.UUID(int=1)
ROW_2 = uuid.UUID(int=2)
AAD_1 = crypto.field_aad("screening", "answers_ct", ROW_1)
PLAINTEXT = b'{"pregnant":"CANARY-ANSWER"}'


class TestParse:
    def test_parse_last_key_encrypts(self) -> None:
        ring = crypto.KeyRing.parse(f"{SPEC_A},{SPEC_B}")
        assert ring.kids == ("a", "b")
        assert ring.current_kid == "b"
        assert ring.encrypt(PLAINTEXT, AAD_1)[0] == "b"

    def test_parse_tolerates_spaces_and_trailing_comma(self) -> None:
        ring = crypto.KeyRing.parse(f" {SPEC_A} , ")
        assert ring.kids == ("a",)

    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            ("", "no data keys"),
            (" , ", "no data keys"),
            ("a" + base64.b64encode(KEY_A).decode(), "expected 'kid:base64-key'"),
            ("a:" + base64.b64encode(KEY_A[:16]).decode(), "32 bytes, got 16"),
            ("a:not*base64!", "not valid base64"),
            (f"{SPEC_A},a:" + base64.b64encode(KEY_B).decode(), "duplicate key id 'a'"),
            (":" + base64.b64encode(KEY_A).decode(), "key id must be"),
            ("bad kid:" + base64.b64encode(KEY_A).decode(), "key id must be"),
        ],
    )
    def test_parse_rejects_malformed_spec(self, spec: str, message: str) -> None:
        with pytest.raises(crypto.KeySpecError, match=message):
            crypto.KeyRing.parse(spec)

    def test_parse_error_never_contains_key_material(self) -> None:
        short = base64.b64encode(b"\x07" * 31).decode()
        with pytest.raises(crypto.KeySpecError) as excinfo:
            crypto.KeyRing.parse(f"{SPEC_A},b:{short}")
        assert short not in str(excinfo.value)
        assert SPEC_A.split(":")[1] not in str(excinfo.value)

    def test_repr_shows_kids_only(self) -> None:
        ring = crypto.KeyRing.parse(SPEC_A)
        assert repr(ring) == "KeyRing(kids=('a',), current='a')"

    def test_generate_key_spec_round_trips(self) -> None:
        spec = crypto.generate_key_spec("k2026")
        ring = crypto.KeyRing.parse(spec)
        assert ring.current_kid == "k2026"
        assert len(base64.b64decode(spec.split(":")[1])) == 32
        assert crypto.generate_key_spec("k2026") != spec

    def test_generate_key_spec_rejects_bad_kid(self) -> None:
        with pytest.raises(crypto.KeySpecError):
            crypto.generate_key_spec("a,b")


class TestEncryptDecrypt:
    def test_round_trip(self) -> None:
        ring = crypto.KeyRing.from_keys({"a": KEY_A})
        kid, ct = ring.encrypt(PLAINTEXT, AAD_1)
        assert ring.decrypt(kid, ct, AAD_1) == PLAINTEXT
        assert b"CANARY" not in ct
        assert len(ct) == 12 + len(PLAINTEXT) + 16

    def test_nonce_is_fresh_each_time(self) -> None:
        ring = crypto.KeyRing.from_keys({"a": KEY_A})
        assert ring.encrypt(PLAINTEXT, AAD_1)[1] != ring.encrypt(PLAINTEXT, AAD_1)[1]

    def test_ciphertext_copied_to_another_row_fails(self) -> None:
        ring = crypto.KeyRing.from_keys({"a": KEY_A})
        kid, ct = ring.encrypt(PLAINTEXT, AAD_1)
        with pytest.raises(crypto.DecryptError, match="failed authentication"):
            ring.decrypt(kid, ct, crypto.field_aad("screening", "answers_ct", ROW_2))

    def test_ciphertext_copied_to_another_column_fails(self) -> None:
        ring = crypto.KeyRing.from_keys({"a": KEY_A})
        kid, ct = ring.encrypt(PLAINTEXT, AAD_1)
        with pytest.raises(crypto.DecryptError):
            ring.decrypt(kid, ct, crypto.field_aad("screening", "result_ct", ROW_1))

    def test_unknown_kid_fails(self) -> None:
        ring = crypto.KeyRing.from_keys({"a": KEY_A})
        _, ct = ring.encrypt(PLAINTEXT, AAD_1)
        with pytest.raises(crypto.DecryptError, match="unknown data key id 'zz'"):
            ring.decrypt("zz", ct, AAD_1)

    def test_wrong_key_under_same_kid_fails(self) -> None:
        kid, ct = crypto.KeyRing.from_keys({"a": KEY_A}).encrypt(PLAINTEXT, AAD_1)
        with pytest.raises(crypto.DecryptError):
            crypto.KeyRing.from_keys({"a": KEY_B}).decrypt(kid, ct, AAD_1)

    @pytest.mark.parametrize("position", [0, 11, 12, 20, -1])
    def test_any_flipped_bit_fails(self, position: int) -> None:
        ring = crypto.KeyRing.from_keys({"a": KEY_A})
        kid, ct = ring.encrypt(PLAINTEXT, AAD_1)
        tampered = bytearray(ct)
        tampered[position] ^= 0x01
        with pytest.raises(crypto.DecryptError) as excinfo:
            ring.decrypt(kid, bytes(tampered), AAD_1)
        assert "CANARY" not in str(excinfo.value)

    def test_truncated_ciphertext_fails(self) -> None:
        ring = crypto.KeyRing.from_keys({"a": KEY_A})
        with pytest.raises(crypto.DecryptError, match="truncated"):
            ring.decrypt("a", b"\x00" * 27, AAD_1)


class TestRotation:
    def test_old_values_decrypt_after_new_key_added(self) -> None:
        old_ring = crypto.KeyRing.parse(SPEC_A)
        kid, ct = old_ring.encrypt(PLAINTEXT, AAD_1)
        new_ring = crypto.KeyRing.parse(f"{SPEC_A},{SPEC_B}")
        assert new_ring.decrypt(kid, ct, AAD_1) == PLAINTEXT

    def test_reencrypt_moves_value_to_newest_key(self) -> None:
        kid, ct = crypto.KeyRing.parse(SPEC_A).encrypt(PLAINTEXT, AAD_1)
        both = crypto.KeyRing.parse(f"{SPEC_A},{SPEC_B}")
        new_kid, new_ct = both.reencrypt(kid, ct, AAD_1)
        assert new_kid == "b"
        only_new = crypto.KeyRing.parse(SPEC_B)
        assert only_new.decrypt(new_kid, new_ct, AAD_1) == PLAINTEXT
        with pytest.raises(crypto.DecryptError):
            only_new.decrypt(kid, ct, AAD_1)

    def test_order_decides_current_key(self) -> None:
        assert crypto.KeyRing.parse(f"{SPEC_B},{SPEC_A}").current_kid == "a"
