"""Hostile input and callbacks (issue 13): every failure is an ambit error with a code, nothing
crashes, hangs or deadlocks the interpreter, nothing queued is lost at exit, and the audit
chain verifies with an independent verifier written from docs/audit.md alone."""

import hashlib
import json
import subprocess
import sys
import threading

import pytest

import ambit

TICKET = 'Helpdesk::Ticket::"4711"'
ALICE = 'Helpdesk::User::"alice"'


@pytest.fixture
def authz(helpdesk):
    return ambit.Authorizer.from_dir(helpdesk)


@pytest.mark.parametrize(
    "context, code",
    [
        ({"x": b"bytes"}, "AMBIT_INVALID_REQUEST"),
        ({"x": "\ud800"}, "AMBIT_INVALID_REQUEST"),
        ({"x": 2**63}, "AMBIT_INVALID_REQUEST"),
        ({"x": -(2**63) - 1}, "AMBIT_INVALID_REQUEST"),
        ({"x": object()}, "AMBIT_INVALID_REQUEST"),
        ({"x": {1, 2}}, "AMBIT_INVALID_REQUEST"),
        ({1: "int key"}, "AMBIT_INVALID_REQUEST"),
        ({"x": float("nan")}, "AMBIT_INVALID_REQUEST"),
    ],
)
def test_values_that_cannot_be_converted_faithfully_are_coded_errors(authz, context, code):
    with pytest.raises(ambit.AmbitError) as e:
        authz.authorize(ALICE, "read_ticket", TICKET, context=context)
    assert e.value.code == code


def schemaless(**options):
    return ambit.Authorizer(policies="permit(principal, action, resource);", validation="off", **options)


def test_a_legal_cedar_long_is_accepted_at_both_ends():
    a = schemaless()
    for n in (2**63 - 1, -(2**63)):
        d = a.authorize(ALICE, "read_ticket", TICKET, context={"n": n})
        assert d.allowed


def test_a_uid_that_is_not_text_is_a_coded_error(authz):
    with pytest.raises(ambit.AmbitError) as e:
        authz.authorize(b'Helpdesk::User::"alice"', "read_ticket", TICKET)
    assert e.value.code == "AMBIT_INVALID_REQUEST"


def test_deep_nesting_fails_during_conversion_on_a_small_thread_stack(authz):
    deep = 1
    for _ in range(100_000):
        deep = {"x": deep}
    out = {}

    def run():
        try:
            authz.authorize(ALICE, "read_ticket", TICKET, context=deep)
        except ambit.AmbitError as e:
            out["code"] = e.code

    threading.stack_size(2 << 20)
    try:
        t = threading.Thread(target=run)
        t.start()
        t.join()
    finally:
        threading.stack_size(0)
    assert out["code"] == "AMBIT_LIMIT"


def test_a_million_request_entities_fail_at_the_limit_before_conversion(authz):
    # the first item cannot be converted: converting before counting would fail on it with
    # AMBIT_INVALID_REQUEST, counting first fails with AMBIT_LIMIT
    entity = {"uid": {"type": "Helpdesk::Ticket", "id": "x"}, "attrs": {}, "parents": []}
    entities = [object()] + [entity] * 1_000_000
    with pytest.raises(ambit.AmbitError) as e:
        authz.authorize(ALICE, "read_ticket", TICKET, entities=entities)
    assert e.value.code == "AMBIT_LIMIT"


def test_callbacks_that_raise_reenter_or_flush_never_hang(helpdesk):
    seen = []
    holder = {}

    def callback(record):
        seen.append(record["kind"])
        a = holder.get("a")
        if a is not None and len(seen) < 20:
            a.authorize(ALICE, "read_ticket", TICKET)
            a.audit_flush()
        raise RuntimeError("callback failure")

    a = ambit.Authorizer.from_dir(helpdesk, audit_callback=callback, audit_capacity=4)
    holder["a"] = a
    for _ in range(10):
        assert a.authorize(ALICE, "read_ticket", TICKET).allowed
    a.audit_flush()
    assert len(seen) >= 10
    holder.clear()
    del a  # dropping an authorizer whose callback needs the GIL must not freeze


def test_records_pending_at_exit_are_written_and_the_log_closes(helpdesk, tmp_path):
    log = tmp_path / "audit.jsonl"
    script = f"""
import ambit
calls = []
a = ambit.Authorizer.from_dir({str(helpdesk)!r}, audit_file={str(log)!r}, audit_callback=lambda r: calls.append(r))
for _ in range(2000):
    a.authorize({ALICE!r}, "read_ticket", {TICKET!r})
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = ambit.verify_audit_log([log])
    assert report["ok"] and report["closed"], report
    assert report["records"] == 2001


def independent_canonical(value):
    """RFC 8785 as docs/audit.md states it, written from the docs alone."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise AssertionError("audit records hold no floats")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(independent_canonical(v) for v in value) + "]"
    keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
    return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + independent_canonical(value[k]) for k in keys) + "}"


def test_an_independent_verifier_accepts_the_chain_and_reordered_keys_do_not_matter(helpdesk, tmp_path):
    log = tmp_path / "audit.jsonl"
    a = schemaless(audit_file=str(log), audit_include_context=True)
    a.authorize(ALICE, "read_ticket", TICKET, context={"z": 1, "a": "é😀\u0001", "\ufb01": [1, {"b": 2, "a": 3}]})
    a.close()
    with pytest.raises(ambit.AuditError):
        a.authorize(ALICE, "read_ticket", TICKET)
    prev = "0" * 64
    lines = log.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    for line in lines:
        record = json.loads(line)
        digest = record.pop("hash")
        assert record["prev"] == prev
        # reorder every object's keys: the canonical text must not change
        shuffled = json.loads(json.dumps(record, sort_keys=True))
        mine = hashlib.sha256((prev + independent_canonical(shuffled)).encode("utf-8")).hexdigest()
        assert mine == digest
        prev = digest


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.authorize(ALICE, b"read_ticket", TICKET),
        lambda a: a.authorize(ALICE, "read_\ud800", TICKET),
        lambda a: a.mint_agent('Helpdesk::Service::"helpdesk"', "t", ["read_ticket"], -1),
        lambda a: a.mint_agent('Helpdesk::Service::"helpdesk"', "t", ["read_ticket"], 2**64),
        lambda a: a.mint_agent('Helpdesk::Service::"helpdesk"', "t", ["read_ticket"], 1.5),
        lambda a: a.mint_agent('Helpdesk::Service::"helpdesk"', "t", "read_ticket", 60),
        lambda a: a.mint_agent('Helpdesk::Service::"helpdesk"', b"t", ["read_ticket"], 60),
        lambda a: a.mint_agent('Helpdesk::Service::"helpdesk"', "t", ["read_ticket"], 60, attributes={"x": b"y"}),
        lambda a: a.replace_policies(b"permit(principal, action, resource);"),
        lambda a: a.audit_recent(-1),
        lambda a: ambit.ManualClock(-1),
        lambda a: ambit.ManualClock(0).advance(2**64),
        lambda a: ambit.format_uid(b"User", "x"),
        lambda a: ambit.Authorizer(policies="permit(principal, action, resource);", validation="off", max_delegation_depth=-1),
        lambda a: ambit.Authorizer(policies="permit(principal, action, resource);", validation="off", audit_capacity=-5),
        lambda a: ambit.Authorizer(policies="permit(principal, action, resource);", validation="off", audit_capacity=2**40),
        lambda a: ambit.Authorizer(policies="permit(principal, action, resource);", validation="off", bogus=1),
        lambda a: ambit.Authorizer(policies=b"permit(principal, action, resource);", validation="off"),
    ],
)
def test_every_entry_point_answers_with_an_ambit_code(authz, call):
    with pytest.raises(ambit.AmbitError) as e:
        call(authz)
    assert e.value.code in ambit.ERROR_CODES


def test_a_guard_decides_on_a_snapshot_and_the_tool_gets_that_snapshot(helpdesk):
    a = ambit.Authorizer(
        policies='forbid (principal, action, resource) when { context.amount > 100 };\npermit (principal, action, resource);',
        validation="off",
    )

    class Flip(dict):
        reads = 0

        def __getitem__(self, key):
            Flip.reads += 1
            return 5 if Flip.reads == 1 else 5000

        def __deepcopy__(self, memo):
            return {"amount": self["amount"]}

    seen = {}

    @ambit.guard(a, principal=ALICE, action="refund", resource=TICKET, context=lambda args: {"amount": args["order"]["amount"]})
    def refund(order):
        seen["amount"] = order["amount"]
        return "done"

    assert refund(Flip()) == "done"
    assert seen["amount"] == 5, "the tool saw the value the policy decided on"
    with pytest.raises(ambit.AmbitDenied) as e:
        refund({"amount": 500})
    assert e.value.code == "AMBIT_DENIED"


def test_a_json_schema_works_inline_and_entity_validation_has_its_own_switch():
    schema = json.dumps({"": {"entityTypes": {"User": {"shape": {"type": "Record", "attributes": {"level": {"type": "Long"}}}}},
                              "actions": {"read": {"appliesTo": {"principalTypes": ["User"], "resourceTypes": ["User"]}}}}})
    entities = [{"uid": {"type": "User", "id": "a"}, "attrs": {"levle": 1}, "parents": []}]
    policies = "permit(principal, action, resource);"
    with pytest.raises(ambit.EntitiesError) as e:
        ambit.Authorizer(schema=schema, policies=policies, entities=entities)
    assert e.value.code == "AMBIT_ENTITIES"
    a = ambit.Authorizer(schema=schema, policies=policies, entities=entities, validate_entities=False)
    assert a.authorize('User::"a"', "read", 'User::"a"').allowed
    with pytest.raises(ambit.InvalidRequestError):
        a.authorize('User::"a"', "write", 'User::"a"')


def test_another_agent_type_can_be_named():
    schema = "entity User; entity Bot in [User] = { owner: String, task: String, scopes: Set<String>, depth: Long, created_at: Long, expires_at: Long }; entity Agent; action read appliesTo { principal: [User, Bot, Agent], resource: User };"
    entities = [{"uid": {"type": "User", "id": "u"}, "attrs": {}, "parents": []}]
    a = ambit.Authorizer(schema=schema, policies="permit(principal, action, resource);", entities=entities, agent_type="Bot")
    bot = a.mint_agent('User::"u"', "t", ["read"], 60)
    assert bot.uid.startswith("Bot::")
    assert a.authorize(bot.uid, "read", 'User::"u"').chain == ['User::"u"', bot.uid]


def test_denied_has_one_shape_in_both_languages(helpdesk):
    a = ambit.Authorizer.from_dir(helpdesk)

    @ambit.guard(a, principal='Helpdesk::User::"carol"', action="read_ticket", resource=TICKET)
    def read():
        return "read"

    with pytest.raises(ambit.AmbitError) as e:
        read()
    assert isinstance(e.value, ambit.AmbitDenied) and isinstance(e.value, PermissionError)
    assert e.value.code == "AMBIT_DENIED"
    assert e.value.decision.deny_cause == "no_permit"
    assert "no_permit" in str(e.value)
