"""Signed agent credentials from Python (issue 17): one authorizer issues, another that trusts
the issuer's public keys decides with the credential alone; a forged or revoked credential is
a deny with its cause."""

import base64
import json

import pytest

import ambit

SERVICE = 'Helpdesk::Service::"helpdesk"'
ACME = {"tenant": {"__entity": {"type": "Helpdesk::Tenant", "id": "acme"}}}
TICKET = ambit.Uid("Helpdesk::Ticket", "4711")
ISSUER = "https://helpdesk.example"


@pytest.fixture
def key():
    return ambit.IssuerKey.generate(ISSUER, "k1")


def parties(helpdesk, key):
    issuer = ambit.Authorizer.from_dir(helpdesk)
    verifier = ambit.Authorizer.from_dir(helpdesk, trusted_issuers=[{"issuer": ISSUER, "jwks": key.public_jwks()}])
    return issuer, verifier


def test_a_credential_decides_in_another_authorizer(helpdesk, key):
    issuer, verifier = parties(helpdesk, key)
    agent = issuer.mint_agent(SERVICE, "ticket-4711", ["issue_refund"], 900, attributes=ACME)
    token = issuer.issue_credential(agent.uid, key)
    ok = verifier.authorize_credential(token, "issue_refund", TICKET, context={"amount": 120})
    assert ok.allowed and ok.chain == [SERVICE, agent.uid]
    no = verifier.authorize_credential(token, "issue_refund", TICKET, context={"amount": 900})
    assert no.deny_cause == "forbidden" and no.reasons == ["agent-refund-cap"]
    assert verifier.authorize_credential(token, "close_ticket", TICKET).deny_cause == "out_of_scope"
    jti = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["jti"]
    verifier.revoke_credential(jti)
    assert verifier.authorize_credential(token, "issue_refund", TICKET, context={"amount": 1}).deny_cause == "revoked"


def test_forged_and_untrusted_credentials_are_denies_not_exceptions(helpdesk, key):
    issuer, verifier = parties(helpdesk, key)
    agent = issuer.mint_agent(SERVICE, "t", ["issue_refund"], 900, attributes=ACME)
    token = issuer.issue_credential(agent.uid, ambit.IssuerKey.generate(ISSUER, "k1"))  # not the trusted key
    assert verifier.authorize_credential(token, "issue_refund", TICKET, context={"amount": 1}).deny_cause == "invalid_token"
    stranger = issuer.issue_credential(agent.uid, ambit.IssuerKey.generate("https://evil.example", "k1"))
    assert verifier.authorize_credential(stranger, "issue_refund", TICKET, context={"amount": 1}).deny_cause == "untrusted_issuer"
    for bad in ["", "a.b.c", "x" * 100_000]:
        assert verifier.authorize_credential(bad, "issue_refund", TICKET, context={"amount": 1}).deny_cause == "invalid_token"
    with pytest.raises(ambit.InvalidRequestError):
        verifier.authorize_credential(token, "issue_refund", TICKET, context={"amount": b"bytes"})


def test_keys_round_trip_and_bad_key_sets_are_config_errors(helpdesk, key):
    again = ambit.IssuerKey.from_jwk(ISSUER, json.dumps(key.private_jwk()))
    assert again.public_jwks() == key.public_jwks() and again.kid == "k1" and again.issuer == ISSUER
    assert key.private_jwk()["d"] not in repr(key)
    with pytest.raises(ambit.ConfigError):
        ambit.Authorizer.from_dir(helpdesk, trusted_issuers=[{"issuer": ISSUER, "jwks": {"keys": [key.private_jwk()]}}])
    with pytest.raises(ambit.ConfigError):
        ambit.Authorizer.from_dir(helpdesk, trusted_issuers=[{"issuer": ISSUER}])
    with pytest.raises(ambit.ConfigError):
        ambit.IssuerKey.from_jwk(ISSUER, "{}")


def test_es256_keys_issue_credentials_that_verify(helpdesk):
    key = ambit.IssuerKey.generate(ISSUER, "ec1", alg="ES256")
    assert key.algorithm == "ES256" and key.private_jwk()["kty"] == "EC"
    issuer, verifier = parties(helpdesk, key)
    agent = issuer.mint_agent(SERVICE, "t", ["issue_refund"], 900, attributes=ACME)
    assert verifier.authorize_credential(issuer.issue_credential(agent.uid, key), "issue_refund", TICKET, context={"amount": 1}).allowed
    with pytest.raises(ambit.ConfigError):
        ambit.IssuerKey.generate(ISSUER, "k", alg="HS256")


def test_a_holder_attenuates_for_its_sub_agent(helpdesk, key):
    worker_key = ambit.IssuerKey.generate("https://worker.example", "w1")
    issuer = ambit.Authorizer.from_dir(helpdesk)
    holder = ambit.Authorizer.from_dir(helpdesk, trusted_issuers=[{"issuer": ISSUER, "jwks": key.public_jwks()}])
    verifier = ambit.Authorizer.from_dir(helpdesk, trusted_issuers=[
        {"issuer": ISSUER, "jwks": key.public_jwks()},
        {"issuer": "https://worker.example", "jwks": worker_key.public_jwks()},
    ])
    agent = issuer.mint_agent(SERVICE, "t", ["issue_refund", "read_ticket"], 900, attributes=ACME)
    token = issuer.issue_credential(agent.uid, key)
    narrow = holder.attenuate(token, worker_key, "refund-only", ["issue_refund"], 300, attributes=ACME)
    assert verifier.authorize_credential(narrow, "issue_refund", TICKET, context={"amount": 5}).allowed
    assert verifier.authorize_credential(narrow, "read_ticket", TICKET).deny_cause == "out_of_scope"
    with pytest.raises(ambit.InvalidDelegationError):
        holder.attenuate(token, worker_key, "x", ["close_ticket"], 300)
