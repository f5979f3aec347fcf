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


URL = "https://helpdesk.example/api/refunds"


def test_a_bound_token_needs_a_dpop_proof_by_its_key(helpdesk, key):
    authz = authz_for(helpdesk, key)
    holder = ambit.IssuerKey.generate("holder", "h", alg="ES256")
    token = key.sign_jwt(claims(cnf={"jkt": holder.thumbprint()}))

    def refund(dpop=None):
        return authz.authorize_token(token, "issue_refund", TICKET, context={"amount": 100}, dpop=dpop)

    assert refund().deny_cause == "dpop_required"
    proof = {"proof": holder.dpop_proof("POST", URL, token), "method": "POST", "url": URL}
    assert refund(proof).allowed
    assert refund(proof).deny_cause == "replayed"
    assert refund(dict(proof, proof=holder.dpop_proof("POST", URL + "/x", token))).deny_cause == "dpop_invalid"
    thief = ambit.IssuerKey.generate("thief", "t", alg="ES256")
    assert refund(dict(proof, proof=thief.dpop_proof("POST", URL, token))).deny_cause == "dpop_invalid"
    # a proof without ath, forged with the holder's own key: refused
    header, body = (json.loads(base64.urlsafe_b64decode(p + "==")) for p in holder.dpop_proof("POST", URL, token).split(".")[:2])
    del body["ath"]
    assert refund(dict(proof, proof=holder.sign_jws(header, body))).deny_cause == "dpop_invalid"
    header["jwk"] = holder.private_jwk()
    body["ath"] = base64.urlsafe_b64encode(__import__("hashlib").sha256(token.encode()).digest()).decode().rstrip("=")
    assert refund(dict(proof, proof=holder.sign_jws(header, body))).deny_cause == "dpop_invalid"
    # malformed dpop arguments are errors with a code
    for bad in ({"proof": "x", "method": "POST"}, {"proof": 1, "method": "POST", "url": URL},
                {"proof": "x", "method": "POST", "url": URL, "extra": 1}, "text"):
        with pytest.raises(ambit.InvalidRequestError):
            refund(bad)
    with pytest.raises(ambit.ConfigError):
        holder.dpop_proof("POST", "not a url", token)


def test_required_dpop_and_bound_credentials(helpdesk, key):
    holder = ambit.IssuerKey.generate("holder", "h")
    assert ambit.jwk_thumbprint(holder.public_jwks()["keys"][0]) == holder.thumbprint()
    with pytest.raises(ambit.ConfigError):
        ambit.jwk_thumbprint(holder.private_jwk())
    strict = ambit.Authorizer.from_dir(
        helpdesk, dpop={"required": True},
        oauth_issuers=[{"issuer": IDP, "audience": API, "jwks": key.public_jwks(),
                        "principal_type": "Helpdesk::User", "actor_type": "Helpdesk::Service"}])
    bearer = key.sign_jwt(claims())
    assert strict.authorize_token(bearer, "issue_refund", TICKET, context={"amount": 1}).deny_cause == "dpop_required"
    with pytest.raises(ambit.ConfigError):
        ambit.Authorizer.from_dir(helpdesk, dpop={"replay_capacity": 0})
    with pytest.raises(ambit.ConfigError):
        ambit.Authorizer.from_dir(helpdesk, dpop={"algorithms": ["HS256"]})
    # a credential bound to the holder's key
    issuer_key = ambit.IssuerKey.generate("https://helpdesk.example", "i1")
    minter = ambit.Authorizer.from_dir(helpdesk)
    verifier = ambit.Authorizer.from_dir(
        helpdesk, trusted_issuers=[{"issuer": "https://helpdesk.example", "jwks": issuer_key.public_jwks()}])
    agent = minter.mint_agent('Helpdesk::Service::"helpdesk"', "t", ["issue_refund"], 600,
                              attributes={"tenant": {"__entity": {"type": "Helpdesk::Tenant", "id": "acme"}}})
    with pytest.raises(ambit.InvalidRequestError):
        minter.issue_credential(agent.uid, issuer_key, holder="nope")
    cred = minter.issue_credential(agent.uid, issuer_key, holder=holder.thumbprint())

    def refund(dpop=None):
        return verifier.authorize_credential(cred, "issue_refund", TICKET, context={"amount": 100}, dpop=dpop)

    assert refund().deny_cause == "dpop_required"
    assert refund({"proof": holder.dpop_proof("POST", URL, cred), "method": "POST", "url": URL}).allowed
