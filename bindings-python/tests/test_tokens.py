"""OAuth access tokens from Python (issue 17): a token-exchange token's `sub` and nested `act`
claims are the chain, decided hop by hop; a bad token is a deny with its cause."""

import base64
import json
import time

import pytest

import ambit

IDP = "https://idp.example"
API = "https://helpdesk.example/api"
TICKET = 'Helpdesk::Ticket::"4711"'


@pytest.fixture
def key():
    return ambit.IssuerKey.generate(IDP, "k1", alg="ES256")


def authz_for(helpdesk, key, **extra):
    issuer = {"issuer": IDP, "audience": API, "jwks": key.public_jwks(),
              "principal_type": "Helpdesk::User", "actor_type": "Helpdesk::Service", **extra}
    return ambit.Authorizer.from_dir(helpdesk, oauth_issuers=[issuer])


def claims(**over):
    now = int(time.time())
    c = {"iss": IDP, "aud": API, "sub": "alice", "iat": now - 5, "exp": now + 300, "act": {"sub": "helpdesk"}}
    c.update(over)
    return c


def test_the_act_chain_decides_hop_by_hop(helpdesk, key):
    authz = authz_for(helpdesk, key)
    token = key.sign_jwt(claims())
    ok = authz.authorize_token(token, "issue_refund", TICKET, context={"amount": 100})
    assert ok.allowed and ok.chain == ['Helpdesk::User::"alice"', 'Helpdesk::Service::"helpdesk"']
    no = authz.authorize_token(token, "issue_refund", TICKET, context={"amount": 6000})
    assert (no.deny_cause, no.deny_hop) == ("no_permit", 0)
    scoped = key.sign_jwt(claims(scope="read_ticket"))
    assert authz.authorize_token(scoped, "issue_refund", TICKET, context={"amount": 1}).deny_cause == "out_of_scope"
    assert authz.authorize_token(scoped, "read_ticket", TICKET).allowed


def test_bad_tokens_are_denies_with_their_cause(helpdesk, key):
    authz = authz_for(helpdesk, key)

    def cause(token):
        return authz.authorize_token(token, "issue_refund", TICKET, context={"amount": 1}).deny_cause

    now = int(time.time())
    assert cause(key.sign_jwt(claims(exp=now - 3600))) == "token_expired"
    assert cause(key.sign_jwt(claims(aud="https://other.example"))) == "invalid_token"
    assert cause(key.sign_jwt(claims(iss="https://evil.example"))) == "untrusted_issuer"
    assert cause(ambit.IssuerKey.generate(IDP, "k1", alg="ES256").sign_jwt(claims())) == "invalid_token"
    payload = key.sign_jwt(claims()).split(".")[1]
    hs = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "k1"}).encode()).decode().rstrip("=")
    assert cause(f"{hs}.{payload}.AAAA") == "invalid_token"
    none = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": "k1"}).encode()).decode().rstrip("=")
    assert cause(f"{none}.{payload}.") == "invalid_token"
    deep = {"sub": "s0"}
    for i in range(1, 20):
        deep = {"sub": f"s{i}", "act": deep}
    assert cause(key.sign_jwt(claims(act=deep))) == "depth_exceeded"
    assert cause("x" * 70_000) == "invalid_token"
    with pytest.raises(ambit.ConfigError):
        authz_for(helpdesk, key, algorithms=["HS256"])
    with pytest.raises(ambit.ConfigError):
        key.sign_jwt([1, 2])
