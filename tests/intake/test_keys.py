"""Specification: an administrator registers, lists and retires office keys."""

import pytest

from shared.signing import KeyPair

pytestmark = pytest.mark.anyio


async def test_an_admin_registers_a_public_key_and_gets_its_thumbprint(intake, admin_headers):
    key = KeyPair.generate()

    response = await intake.post(
        "/v1/offices/bawaslu-36.01/keys", json={"jwk": key.public_jwk}, headers=admin_headers
    )

    assert response.status_code == 201
    assert response.json()["kid"] == key.kid
    assert response.json()["office"] == "bawaslu-36.01"


async def test_registering_the_same_key_again_changes_nothing(intake, admin_headers):
    jwk = KeyPair.generate().public_jwk
    first = await intake.post(
        "/v1/offices/bawaslu-36.01/keys", json={"jwk": jwk}, headers=admin_headers
    )

    again = await intake.post(
        "/v1/offices/bawaslu-36.01/keys", json={"jwk": jwk}, headers=admin_headers
    )

    assert again.status_code == 200
    assert again.json() == first.json()


async def test_one_key_cannot_serve_two_offices(intake, admin_headers):
    jwk = KeyPair.generate().public_jwk
    await intake.post("/v1/offices/bawaslu-36.01/keys", json={"jwk": jwk}, headers=admin_headers)

    response = await intake.post(
        "/v1/offices/bawaslu-36.02/keys", json={"jwk": jwk}, headers=admin_headers
    )

    assert response.status_code == 409


@pytest.mark.parametrize(
    ("jwk", "reason"),
    [
        ({**KeyPair.generate().private_jwk()}, "private key"),
        ({"kty": "RSA", "n": "AQAB", "e": "AQAB"}, "P-256"),
        ({**KeyPair.generate().public_jwk, "crv": "P-384"}, "P-256"),
        ({**KeyPair.generate().public_jwk, "y": KeyPair.generate().public_jwk["x"]}, "point"),
        ({"kty": "EC", "crv": "P-256", "x": "!!", "y": "??"}, "base64url"),
    ],
    ids=["private key", "RSA", "P-384", "point off the curve", "not base64url"],
)
async def test_a_key_that_is_not_an_es256_public_key_is_refused(intake, admin_headers, jwk, reason):
    response = await intake.post(
        "/v1/offices/bawaslu-36.01/keys", json={"jwk": jwk}, headers=admin_headers
    )

    assert response.status_code == 422
    assert reason in response.json()["errors"][0]["message"]


async def test_only_an_admin_registers_keys(intake, token_for):
    jwk = KeyPair.generate().public_jwk
    officer = {"authorization": f"Bearer {token_for('bawaslu-36.01', 'officer')}"}

    assert (
        await intake.post("/v1/offices/bawaslu-36.01/keys", json={"jwk": jwk})
    ).status_code == 401
    assert (
        await intake.post("/v1/offices/bawaslu-36.01/keys", json={"jwk": jwk}, headers=officer)
    ).status_code == 403


async def test_a_key_for_an_office_that_does_not_exist_is_404(intake, admin_headers):
    response = await intake.post(
        "/v1/offices/bawaslu-36.99/keys",
        json={"jwk": KeyPair.generate().public_jwk},
        headers=admin_headers,
    )

    assert response.status_code == 404


async def test_an_office_lists_its_own_keys_but_not_another_offices(
    intake, admin_headers, token_for
):
    key = KeyPair.generate()
    await intake.post(
        "/v1/offices/bawaslu-36.01/keys", json={"jwk": key.public_jwk}, headers=admin_headers
    )

    def listing(office, caller):
        headers = {"authorization": f"Bearer {token_for(caller)}"}
        return intake.get(f"/v1/offices/{office}/keys", headers=headers)

    own = await listing("bawaslu-36.01", "bawaslu-36.01")
    assert [k["kid"] for k in own.json()] == [key.kid]
    assert (await listing("bawaslu-36.01", "bawaslu-36")).status_code == 200
    assert (await listing("bawaslu-36.01", "bawaslu-36.02")).status_code == 404


async def test_retiring_an_unknown_key_is_404(intake, admin_headers):
    response = await intake.post(
        "/v1/offices/bawaslu-36.01/keys/no-such-kid/retire", headers=admin_headers
    )

    assert response.status_code == 404
