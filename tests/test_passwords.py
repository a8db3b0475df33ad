from __future__ import annotations

import hashlib

import pytest

from reynard import passwords
from reynard.passwords import Hasher, cost, hash_password, verify_password


def test_hash_string_stores_scheme_parameters_salt_and_digest():
    stored = hash_password("s3cret-pass", 1024)
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "1024", "8", "1")
    assert salt and digest
    assert "s3cret-pass" not in stored


def test_same_password_gets_a_different_salt_each_time():
    assert hash_password("s3cret-pass", 1024) != hash_password("s3cret-pass", 1024)


def test_verify_accepts_the_password_and_rejects_others():
    stored = hash_password("s3cret-pass", 1024)
    assert verify_password("s3cret-pass", stored)
    assert not verify_password("s3cret-pasS", stored)
    assert not verify_password("", stored)


def test_verify_uses_the_parameters_stored_in_the_hash():
    old = hash_password("s3cret-pass", 512)
    assert cost(old) == 512
    assert verify_password("s3cret-pass", old)


def test_digest_is_real_scrypt_output():
    stored = hash_password("pw-12345678", 1024)
    _, n, r, p, salt, digest = stored.split("$")
    import base64

    expected = hashlib.scrypt(
        b"pw-12345678", salt=base64.b64decode(salt), n=1024, r=8, p=1, dklen=32
    )
    assert base64.b64decode(digest) == expected


@pytest.mark.parametrize("bad", ["", "plain", "scrypt$x$8$1$AA==$AA==", "bcrypt$1$2$3$4$5"])
def test_an_unreadable_hash_never_verifies(bad):
    assert not verify_password("anything", bad)
    assert cost(bad) is None


async def test_hasher_checks_unknown_users_against_a_dummy_with_equal_work():
    hasher = Hasher(1024, workers=2)
    try:
        await hasher.start()
        stored = await hasher.hash("right-password")
        before = passwords.computations
        assert not await hasher.verify("wrong-password", stored)
        wrong = passwords.computations - before
        before = passwords.computations
        assert not await hasher.verify("wrong-password", None)
        unknown = passwords.computations - before
        assert wrong == unknown == 1
        assert await hasher.verify("right-password", stored)
        assert hasher.needs_rehash(hash_password("x" * 8, 2048))
        assert not hasher.needs_rehash(stored)
    finally:
        hasher.close()
