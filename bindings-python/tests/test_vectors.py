"""The shared decision vectors (tests/vectors/*.json), run through the Python API."""

import base64
import hashlib
import json

import pytest

import ambit
from conftest import ROOT

FILES = sorted((ROOT / "tests" / "vectors").glob("*.json"))
DEFAULT_NOW = 1_800_000_000


def test_vectors_exist():
    assert FILES, "no decision vectors found in tests/vectors"


def cases():
    for f in FILES:
        spec = json.loads(f.read_text())
        for case in spec["cases"]:
            yield pytest.param(spec, case, id=f"{f.name}: {case['description']}")


def proof(step, token, now):
    """A proof step (see ambit::vector::ProofStep): the standard proof, then the step's changes."""
    key = ambit.IssuerKey.from_jwk("holder", json.dumps(step["key"]))
    header = {"typ": "dpop+jwt", "alg": key.algorithm, "jwk": key.public_jwks()["keys"][0]}
    ath = base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()
    claims = {"jti": step.get("jti", step["as"]), "htm": step["method"], "htu": step["url"],
              "iat": step.get("iat", now), "ath": ath}
    if "nonce" in step:
        claims["nonce"] = step["nonce"]
    for target, changes in ((header, step.get("header", {})), (claims, step.get("claims", {}))):
        for k, v in changes.items():
            if v is None:
                target.pop(k, None)
            else:
                target[k] = v
    return key.sign_jws(header, claims)


def run_case(spec, case):
    clock = ambit.ManualClock(spec.get("now", DEFAULT_NOW))
    options = {k: v for k, v in spec.get("options", {}).items()}
    authz = ambit.Authorizer.from_dir(ROOT / spec["policies"], clock=clock, **options)
    names = {}

    def sub(value):
        if isinstance(value, str) and value.startswith("$") and value[1:] in names:
            return names[value[1:]]
        return value

    for i, step in enumerate(case.get("setup", [])):
        want_error = step.get("expect_error")
        try:
            count = None
            if "mint" in step:
                m = dict(step["mint"])
                name = m.pop("as")
                agent = authz.mint_agent(
                    sub(m["parent"]), m.get("task", ""), m.get("scopes", []), m.get("ttl_seconds", m.get("ttl")),
                    resources=m.get("resources"), attributes=m.get("attributes"),
                )
                names[name] = agent.uid
            elif "revoke" in step:
                count = authz.revoke(sub(step["revoke"]))
            elif "reinstate" in step:
                authz.reinstate(sub(step["reinstate"]))
            elif "advance" in step:
                clock.advance(step["advance"])
            elif "link" in step:
                link = step["link"]
                args = {k: sub(v) for k, v in link.get("args", {}).items()}
                authz.link(link["template_id"], link["link_id"], principal=args.get("?principal"), resource=args.get("?resource"))
            elif "unlink" in step:
                authz.unlink(step["unlink"])
            elif "replace_policies" in step:
                authz.replace_policies(step["replace_policies"])
            elif "issue" in step:
                issue = step["issue"]
                key = ambit.IssuerKey.from_jwk(issue["issuer"], json.dumps(issue["key"]))
                names[issue["as"]] = authz.issue_credential(sub(issue["agent"]), key, holder=issue.get("holder"))
            elif "sign" in step:
                sign = step["sign"]
                key = ambit.IssuerKey.from_jwk(sign["issuer"], json.dumps(sign["key"]))
                names[sign["as"]] = key.sign_jwt(sign["claims"])
            elif "proof" in step:
                names[step["proof"]["as"]] = proof(step["proof"], sub(step["proof"]["token"]), clock.now())
            else:
                raise AssertionError(f"setup step {i} does nothing")
        except ambit.AmbitError as e:
            assert want_error == e.code, f"setup step {i}: unexpected {e.code}: {e}"
            continue
        assert want_error is None, f"setup step {i}: expected {want_error}"
        if "expect_count" in step:
            assert count == step["expect_count"]

    r = case["request"]
    expect = case["expect"]
    dpop = dict(case["dpop"], proof=sub(case["dpop"]["proof"])) if "dpop" in case else None

    def decide():
        if "credential" in case:
            return authz.authorize_credential(sub(case["credential"]), r["action"], sub(r["resource"]),
                                              context=r.get("context"), dpop=dpop)
        if "token" in case:
            return authz.authorize_token(sub(case["token"]), r["action"], sub(r["resource"]),
                                         context=r.get("context"), dpop=dpop)
        return authz.authorize(
            sub(r["principal"]), r["action"], sub(r["resource"]),
            context=r.get("context"), entities=r.get("entities"),
            on_behalf_of=[sub(x) for x in r.get("on_behalf_of", [])] or None,
        )

    try:
        for _ in range(case.get("times", 1) - 1):
            try:
                decide()
            except ambit.AmbitError:
                pass
        d = decide()
    except ambit.AmbitError as e:
        assert expect.get("error") == e.code, f"unexpected {e.code}: {e}"
        return
    assert "error" not in expect, f"expected {expect['error']}, got {d!r}"
    if "allowed" in expect:
        assert d.allowed == expect["allowed"], repr(d)
    if "deny_cause" in expect:
        assert d.deny_cause == expect["deny_cause"], repr(d)
    if "reasons" in expect:
        assert d.reasons == expect["reasons"]
    if "deny_hop" in expect:
        assert d.deny_hop == expect["deny_hop"]
    if "errors" in expect:
        assert [e["policy_id"] for e in d.errors] == expect["errors"]


@pytest.mark.parametrize("spec,case", list(cases()))
def test_vector(spec, case):
    run_case(spec, case)
