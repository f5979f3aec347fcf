"""The Python API: errors, lifecycle, audit, guards, LangChain, threads."""

import asyncio
import json
import shutil
import threading

import pytest

import ambit
from ambit.integrations.langchain import guard_tool

SERVICE = 'Helpdesk::Service::"helpdesk"'
TICKET = 'Helpdesk::Ticket::"4711"'
ALICE = 'Helpdesk::User::"alice"'
ACME = {"tenant": {"__entity": {"type": "Helpdesk::Tenant", "id": "acme"}}}


@pytest.fixture
def authz(helpdesk):
    return ambit.Authorizer.from_dir(helpdesk)


def refund_agent(authz, scopes=("issue_refund",), ttl_seconds=900):
    return authz.mint_agent(SERVICE, "ticket-4711", list(scopes), ttl_seconds, attributes=ACME)


def test_decision_is_an_immutable_value(authz):
    d = authz.authorize(ALICE, "read_ticket", TICKET)
    assert d.allowed and bool(d)
    assert d.reasons == ["staff-tickets"]
    assert d.deny_cause is None
    assert d.chain == [ALICE]
    assert d.to_dict()["allowed"] is True
    assert "allowed" in repr(d)
    with pytest.raises(AttributeError):
        d.allowed = False  # type: ignore[misc]
    deny = authz.authorize('Helpdesk::User::"bob"', "read_ticket", 'Helpdesk::Ticket::"9001"')
    assert not deny and deny.deny_cause == "no_permit" and deny.deny_hop == 0


def test_uid_objects_and_strings_are_interchangeable(authz):
    t = ambit.Uid("Helpdesk::Ticket", "4711")
    assert str(t) == TICKET
    assert authz.authorize(ambit.Uid("Helpdesk::User", "alice"), "read_ticket", t).allowed
    assert str(ambit.Uid("User", 'a"b\\c')) == 'User::"a\\"b\\\\c"'
    with pytest.raises(ambit.InvalidRequestError) as e:
        authz.authorize(42, "read_ticket", TICKET)
    assert e.value.code == "AMBIT_INVALID_REQUEST"


def test_uid_is_checked_once_and_is_a_value(authz):
    u = ambit.Uid.parse('Helpdesk::User::"a\\"b"')
    assert (u.type, u.id) == ("Helpdesk::User", 'a"b')
    assert u == ambit.Uid("Helpdesk::User", 'a"b') and hash(u) == hash(ambit.Uid("Helpdesk::User", 'a"b'))
    assert repr(u) == "Uid('Helpdesk::User', 'a\"b')"
    assert sorted([ambit.Uid("B", "x"), ambit.Uid("A", "y")])[0].type == "A"
    for bad in (lambda: ambit.Uid("not a type", "x"), lambda: ambit.Uid.parse("User::alice"), lambda: ambit.Uid("User", b"x")):
        with pytest.raises(ambit.InvalidRequestError) as e:
            bad()
        assert e.value.code == "AMBIT_INVALID_REQUEST"
    # only a Uid or a str is a uid: an object that merely has `type` and `id` (and a __str__ that
    # says anything) is refused, not stringified
    class Lookalike:
        type = "Helpdesk::User"
        id = "alice"

        def __str__(self):
            return 'Helpdesk::User::"alice"'

    with pytest.raises(ambit.InvalidRequestError):
        authz.authorize(Lookalike(), "read_ticket", TICKET)
    with pytest.raises(AttributeError):
        u.id = "mallory"  # frozen
    agent = authz.mint_agent(ambit.Uid("Helpdesk::Service", "helpdesk"), "t", ["read_ticket"], 60, attributes=ACME)
    assert authz.authorize(ambit.Uid.parse(agent.uid), "read_ticket", ambit.Uid("Helpdesk::Ticket", "4711")).allowed


@pytest.mark.parametrize(
    "call,cls,code",
    [
        (lambda a: a.authorize("alice", "read_ticket", TICKET), ambit.InvalidRequestError, "AMBIT_INVALID_REQUEST"),
        (lambda a: a.authorize(ALICE, "launch", TICKET), ambit.InvalidRequestError, "AMBIT_INVALID_REQUEST"),
        (lambda a: a.authorize(ALICE, "issue_refund", TICKET, context={"amount": "x"}), ambit.InvalidRequestError, "AMBIT_INVALID_REQUEST"),
        (lambda a: a.mint_agent('Helpdesk::User::"nobody"', "t", [], 10), ambit.InvalidDelegationError, "AMBIT_INVALID_DELEGATION"),
        (lambda a: a.replace_policies("permit(principal, action resource);"), ambit.ReloadError, "AMBIT_RELOAD"),
        (lambda a: a.authorize(ALICE, "read_ticket", TICKET, entities=[{"uid": {"type": "X"}}]), ambit.EntitiesError, "AMBIT_ENTITIES"),
    ],
)
def test_errors_are_classes_with_codes(authz, call, cls, code):
    with pytest.raises(cls) as info:
        call(authz)
    assert isinstance(info.value, ambit.AmbitError)
    assert info.value.code == code


def test_load_errors(tmp_path, helpdesk):
    with pytest.raises(ambit.SourceError) as e:
        ambit.Authorizer.from_dir(tmp_path / "missing")
    assert e.value.code == "AMBIT_IO"
    with pytest.raises(ambit.SourceError) as e:
        ambit.Authorizer.from_dir(tmp_path)
    assert e.value.code == "AMBIT_EMPTY_SOURCE"
    with pytest.raises(ambit.PolicyError) as e:
        ambit.Authorizer(policies="permit(principal, action resource);", validation="off")
    assert e.value.code == "AMBIT_POLICY_PARSE" and e.value.line == 1
    with pytest.raises(ambit.PolicyError) as e:
        ambit.Authorizer(policies='@id("a") permit(principal, action, resource); @id("a") permit(principal, action, resource);', validation="off")
    assert e.value.code == "AMBIT_DUPLICATE_POLICY_ID"
    with pytest.raises(ambit.SchemaError) as e:
        ambit.Authorizer(schema="entity User = { x: Nope };", policies="permit(principal, action, resource);")
    assert e.value.code == "AMBIT_SCHEMA"
    with pytest.raises(ambit.PolicyError) as e:
        ambit.Authorizer(schema="entity User = { level: Long }; action a appliesTo { principal: User, resource: User };",
                         policies="permit(principal, action, resource) when { principal.levle > 1 };")
    assert e.value.code == "AMBIT_VALIDATION"
    with pytest.raises(ambit.EntitiesError):
        ambit.Authorizer(policies="permit(principal, action, resource);", entities="[{", validation="off")
    # options are the core's one type: every bad one is a ConfigError with the core's words
    policy = "permit(principal, action, resource);"
    for bad, says in [
        (dict(validation="sometimes"), "sometimes"),
        (dict(colour="blue"), "colour"),
        (dict(error_mode="failClosed"), "failClosed"),
        (dict(errorMode="cedar"), "errorMode"),
        (dict(max_delegation_depth=-1), "-1"),
        (dict(max_delegation_depth=2.5), "2.5"),
        (dict(max_delegation_depth=True), "bool"),
        (dict(audit_capacity="8"), "8"),
        (dict(trust_request_entities=1), "1"),
        (dict(audit_file=42), "audit_file"),
    ]:
        with pytest.raises(ambit.ConfigError) as e:
            ambit.Authorizer(policies=policy, **bad)
        assert e.value.code == "AMBIT_CONFIG" and says in str(e.value), (bad, str(e.value))
    assert ambit.Authorizer(policies=policy, validation="off", error_mode="fail_closed", max_delegation_depth=3, agent_type=None)
    assert set(ambit.ERROR_CODES) >= {"AMBIT_IO", "AMBIT_RELOAD", "AMBIT_INTERNAL", "AMBIT_CONFIG"}
    # the request format's fields, the core's list: a batch request with any other is refused
    assert sorted(ambit.REQUEST_FIELDS) == ["action", "context", "entities", "on_behalf_of", "principal", "resource"]
    authz = ambit.Authorizer(policies=policy, validation="off")
    good = {f: v for f, v in {"principal": 'User::"a"', "action": "read", "resource": 'Doc::"d"'}.items() if f in ambit.REQUEST_FIELDS}
    [bad, fine] = authz.authorize_batch([dict(good, contxt={}), good])
    assert isinstance(bad, ambit.AmbitError) and bad.code == "AMBIT_INVALID_REQUEST"
    assert isinstance(fine, ambit.Decision)


def test_lifecycle_mint_attenuate_revoke_expire(helpdesk):
    clock = ambit.ManualClock(1_800_000_000)
    authz = ambit.Authorizer.from_dir(helpdesk, clock=clock, max_delegation_depth=3)
    a1 = authz.mint_agent(SERVICE, "ticket", ["read_ticket", "reply_ticket"], 900, resources=[TICKET], attributes=ACME)
    assert a1.chain == [SERVICE, a1.uid] and a1.depth == 1 and a1.resources == [TICKET]
    a2 = authz.mint_agent(a1.uid, "reply", ["reply_ticket"], 5000, attributes=ACME)
    assert a2.expires_at == a1.expires_at, "clamped to the parent"
    with pytest.raises(ambit.InvalidDelegationError):
        authz.mint_agent(a1.uid, "wider", ["issue_refund"], 10)
    with pytest.raises(AttributeError):
        a1.uid = "x"  # type: ignore[misc]
    assert "Agent" in repr(a1)
    d = authz.authorize(a2.uid, "reply_ticket", TICKET)
    assert d.allowed and d.timestamp == 1_800_000_000 == d.to_dict()["timestamp"]
    tree = authz.delegation_tree(SERVICE)
    assert tree["children"][0]["children"][0]["uid"] == a2.uid
    assert {a.uid for a in authz.agents()} == {a1.uid, a2.uid}
    assert authz.revoke(a1.uid) == 2
    assert authz.authorize(a2.uid, "reply_ticket", TICKET).deny_cause == "revoked"
    a3 = authz.mint_agent(SERVICE, "short", ["read_ticket"], 10, attributes=ACME)
    clock.advance(10)
    assert authz.authorize(a3.uid, "read_ticket", TICKET).deny_cause == "expired"
    assert authz.revoke(SERVICE) == 1
    assert authz.reinstate(SERVICE) is True


def test_reload_keeps_the_last_good(tmp_path, helpdesk):
    d = tmp_path / "p"
    shutil.copytree(helpdesk, d)
    authz = ambit.Authorizer.from_dir(d)
    version = authz.policy_version
    (d / "zz.cedar").write_text("permit(principal, action resource);")
    with pytest.raises(ambit.ReloadError) as e:
        authz.reload()
    assert e.value.code == "AMBIT_RELOAD" and e.value.file.endswith("zz.cedar")
    assert authz.policy_version == version
    (d / "zz.cedar").unlink()
    assert authz.reload()["generation"] == 2


def test_audit_file_callback_and_verify(tmp_path, helpdesk):
    seen = []
    log = tmp_path / "audit.jsonl"
    authz = ambit.Authorizer.from_dir(helpdesk, audit_file=str(log), audit_callback=seen.append)
    agent = refund_agent(authz)
    for amount in (10, 900):
        authz.authorize(agent.uid, "issue_refund", TICKET, context={"amount": amount})
    authz.audit_flush()
    kinds = [r["kind"] for r in seen]
    assert kinds == ["agent_minted", "decision", "decision"]
    assert seen[2]["deny_cause"] == "forbidden" and seen[2]["chain"] == [SERVICE, agent.uid]
    assert [r["seq"] for r in authz.audit_recent(10)] == [1, 2, 3]
    report = ambit.verify_audit_log([log])
    assert report["ok"] and report["records"] == 3
    lines = log.read_text().splitlines()
    lines[1] = lines[1].replace('"allowed":true', '"allowed":false')
    log.write_text("\n".join(lines) + "\n")
    bad = ambit.verify_audit_log([log])
    assert not bad["ok"] and bad["first_bad_seq"] == 2


def test_guard_allows_denies_and_fails_closed(authz):
    agent = refund_agent(authz)
    calls = []

    @authz.guard(action="issue_refund", resource=lambda a: f'Helpdesk::Ticket::"{a["ticket"]}"',
                 principal=agent.uid, context=lambda a: {"amount": a["amount"]})
    def refund(ticket: str, amount: int) -> str:
        calls.append(amount)
        return f"refunded {amount}"

    assert refund("4711", 120) == "refunded 120"
    with pytest.raises(ambit.AmbitDenied) as e:
        refund("4711", 900)
    assert e.value.decision.deny_cause == "forbidden"
    with pytest.raises(ambit.AmbitDenied) as e:
        refund("4711", "lots")  # a context that does not fit the schema: an error, so a deny
    assert e.value.decision is None and isinstance(e.value.error, ambit.InvalidRequestError)
    assert calls == [120]

    @ambit.guard(authz, action="issue_refund", resource=TICKET, principal=agent.uid,
                 context=lambda a: {"amount": a["amount"]})
    async def arefund(amount: int) -> int:
        return amount

    assert asyncio.run(arefund(5)) == 5
    with pytest.raises(ambit.AmbitDenied):
        asyncio.run(arefund(501))


def test_threads_decide_concurrently(authz):
    agent = refund_agent(authz, scopes=("read_ticket", "issue_refund"))
    errors, allows = [], []

    def work():
        try:
            for _ in range(300):
                allows.append(authz.authorize(agent.uid, "issue_refund", TICKET, context={"amount": 5}).allowed)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(allows) == 1200 and all(allows)


def test_batch_and_explain(authz):
    results = authz.authorize_batch([
        {"principal": ALICE, "action": "read_ticket", "resource": TICKET},
        {"principal": "nope", "action": "read_ticket", "resource": TICKET},
    ])
    assert results[0].allowed
    assert isinstance(results[1], ambit.InvalidRequestError) and results[1].code == "AMBIT_INVALID_REQUEST"
    e = authz.explain('Helpdesk::User::"bob"', "read_ticket", 'Helpdesk::Ticket::"9001"')
    assert e["summary"].startswith("denied (no_permit)")
    assert json.dumps(e)


def test_a_large_batch_answers_in_order_as_single_calls_do(authz):
    # 128 or more requests are split across threads: every slot still equals its one call
    kinds = [
        {"principal": ALICE, "action": "read_ticket", "resource": TICKET},
        {"principal": 'Helpdesk::User::"bob"', "action": "read_ticket", "resource": 'Helpdesk::Ticket::"9001"'},
        {"principal": "nope", "action": "read_ticket", "resource": TICKET},
        {"principal": ambit.Uid.parse(ALICE), "action": "read_ticket", "resource": TICKET, "context": None},
        {"principal": ALICE, "action": "read_ticket", "resource": TICKET, "contxt": {}},
        {"principal": ALICE, "action": "read_ticket", "resource": TICKET, 1: "x"},
        {"action": "read_ticket", "resource": TICKET},
    ]
    batch = [kinds[(i * 5 + i // 11) % len(kinds)] for i in range(600)]
    answers = authz.authorize_batch(batch)
    assert len(answers) == len(batch)

    def one(r):
        try:
            fields = {k: v for k, v in r.items() if k in ("principal", "action", "resource")}
            if set(r) - {"principal", "action", "resource", "context"} or "principal" not in r:
                return ambit.InvalidRequestError
            return authz.authorize(**fields)
        except ambit.AmbitError as e:
            return type(e)

    def same(answer):
        if isinstance(answer, ambit.Decision):
            return (answer.allowed, answer.deny_cause, answer.reasons, answer.chain)
        return answer if isinstance(answer, type) else type(answer)

    for r, answer in zip(batch, answers):
        assert same(answer) == same(one(r)), r
    assert {same(a)[0] for a in answers if isinstance(a, ambit.Decision)} == {True, False}


def test_a_forked_child_never_repeats_its_parents_decision_ids(authz):
    import os
    import uuid

    def counted(decision):
        return uuid.UUID(decision.decision_id).bytes[8:]

    first = authz.authorize(ALICE, "read_ticket", TICKET)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next decision id, then gone without running the parent's cleanup
        try:
            os.write(write, authz.authorize(ALICE, "read_ticket", TICKET).decision_id.encode())
        finally:
            os._exit(0)
    os.close(write)
    child_id = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    os.close(read)
    parent_next = authz.authorize(ALICE, "read_ticket", TICKET)
    assert child_id and child_id != parent_next.decision_id
    # without a fresh seed the child would have counted on from the parent's, as the parent does
    assert uuid.UUID(child_id).bytes[8:] != counted(parent_next)
    assert int.from_bytes(counted(parent_next), "big") == int.from_bytes(counted(first), "big") + 1


def test_an_audited_authorizer_built_before_a_fork_refuses_in_the_child_and_never_hangs(tmp_path, helpdesk):
    # the audit writer is a thread, and threads do not survive fork: in the child the trail is
    # closed (decisions fail closed with AMBIT_AUDIT), and closing it at exit does not wait
    # for a writer that is not there; the parent's trail goes on
    import os
    import time

    log = tmp_path / "audit.jsonl"
    authz = ambit.Authorizer.from_dir(helpdesk, audit_file=str(log), audit_capacity=4)
    assert authz.authorize(ALICE, "read_ticket", TICKET).allowed
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            try:
                authz.authorize(ALICE, "read_ticket", TICKET)
                os.write(write, b"decided")
            except ambit.AuditError as e:
                os.write(write, f"{e.code}: {e}".encode())
            authz.audit_flush()
            ambit._ambit.close_all()  # what exiting runs: must return
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    deadline = time.monotonic() + 20
    while (done := os.waitpid(pid, os.WNOHANG)) == (0, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    if done == (0, 0):
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    said = os.read(read, 1000).decode()
    os.close(read)
    assert done != (0, 0), "the forked child hung closing its audit trail"
    assert os.waitstatus_to_exitcode(done[1]) == 0
    assert said.startswith("AMBIT_AUDIT: ") and "fork" in said, said
    for _ in range(10):  # past the queue's capacity: the parent's writer is still there
        assert authz.authorize(ALICE, "read_ticket", TICKET).allowed
    authz.audit_flush()
    report = ambit.verify_audit_log([log])
    assert report["ok"] and report["records"] == 11, report


def test_watch_follows_the_files(tmp_path, helpdesk):
    import time

    d = tmp_path / "w"
    shutil.copytree(helpdesk, d)
    authz = ambit.Authorizer.from_dir(d)
    outcomes = []
    authz.watch(outcomes.append)
    agent = refund_agent(authz)
    assert authz.authorize(agent.uid, "issue_refund", TICKET, context={"amount": 120}).allowed
    (d / "refunds.cedar").write_text((d / "refunds.cedar").read_text().replace("> 500", "> 100"))
    deadline = time.time() + 20
    while authz.authorize(agent.uid, "issue_refund", TICKET, context={"amount": 120}).allowed:
        assert time.time() < deadline
        time.sleep(0.05)
    while not outcomes:
        assert time.time() < deadline
        time.sleep(0.05)
    # the core's report: the same keys Node's watch callback gets
    assert outcomes[-1] == {"ok": True, "version": authz.policy_version, "generation": authz.generation}
    assert authz.watch_status()["reloads"] >= 1
    authz.unwatch()


def test_limits_are_limit_errors(authz):
    with pytest.raises(ambit.LimitError) as e:
        authz.authorize("Helpdesk::User::\"" + "x" * 10_000 + "\"", "read_ticket", TICKET)
    assert e.value.code == "AMBIT_LIMIT"
    deep = {"amount": 1}
    for _ in range(100):
        deep = {"n": deep}
    with pytest.raises(ambit.LimitError):
        authz.authorize(ALICE, "issue_refund", TICKET, context=deep)


def test_invalid_utf8_and_hostile_strings_from_python(authz):
    for hostile in ["", "Helpdesk::User::\"\x00\"", "Helpdesk::User::\"\u0430lice\"", "\udcff"]:
        try:
            d = authz.authorize(hostile, "read_ticket", TICKET)
        except (ambit.AmbitError, UnicodeEncodeError, TypeError):
            continue
        assert not d.allowed, hostile


def test_audit_records_over_the_size_limit_are_kept_in_short_form():
    seen = []
    authz = ambit.Authorizer(
        policies="permit(principal, action, resource);",
        validation="off",
        audit_include_context=True,
        audit_max_record_bytes=1024,
        audit_callback=seen.append,
    )
    authz.authorize('User::"u"', "read", 'Doc::"d"', context={"note": "x" * 5000})
    authz.authorize('User::"u"', "read", 'Doc::"d"', context={"note": "short"})
    authz.audit_flush()
    assert [r["kind"] for r in seen] == ["oversize", "decision"]
    assert seen[0]["original_kind"] == "decision" and seen[0]["allowed"] is True
    assert seen[0]["limit"] == 1024 and seen[0]["bytes"] > 5000
    assert seen[1]["context"] == {"note": "short"}
    with pytest.raises(ambit.ConfigError):
        ambit.Authorizer(policies="permit(principal, action, resource);", validation="lenient")


def test_precheck_gives_the_identity_causes_without_a_context(authz):
    agent = refund_agent(authz)
    ticket = ambit.Uid("Helpdesk::Ticket", "4711")
    # issue_refund's context requires `amount`: precheck does not read it, authorize does
    assert authz.precheck(agent.uid, "issue_refund", ticket) is None
    with pytest.raises(ambit.InvalidRequestError):
        authz.authorize(agent.uid, "issue_refund", ticket)
    assert authz.precheck(agent.uid, "close_ticket", ticket) == "out_of_scope"
    assert authz.precheck('Helpdesk::Agent::"ghost"', "issue_refund", ticket) == "unknown_principal"
    authz.revoke(SERVICE)
    assert authz.precheck(agent.uid, "issue_refund", ticket) == "revoked"
    with pytest.raises(ambit.InvalidRequestError):
        authz.precheck(agent.uid, "fly", ticket)
    assert authz.audit_recent() == []  # decides nothing, records nothing


def test_check_is_one_boolean_path_and_fails_closed(authz):
    agent = refund_agent(authz)
    assert authz.check(ALICE, "read_ticket", TICKET) is True
    assert authz.check(agent.uid, "issue_refund", ambit.Uid.parse(TICKET), {"amount": 120}) is True
    # the same answer as authorize, for allows and denies alike
    for amount in (1, 120, 499, 500, 501, 900):
        assert authz.check(agent.uid, "issue_refund", TICKET, {"amount": amount}) is authz.authorize(
            agent.uid, "issue_refund", TICKET, {"amount": amount}
        ).allowed
    assert authz.check('Helpdesk::User::"bob"', "read_ticket", 'Helpdesk::Ticket::"9001"') is False
    # every error is a False, never an exception: a malformed uid, an unknown action, a context
    # of the wrong type or shape, arguments of the wrong type
    assert authz.check("not a uid", "read_ticket", TICKET) is False
    assert authz.check(ALICE, "no_such_action", TICKET) is False
    assert authz.check(agent.uid, "issue_refund", TICKET, {"amount": "lots"}) is False
    assert authz.check(agent.uid, "issue_refund", TICKET, {"amount": 2**70}) is False
    assert authz.check(5, "read_ticket", TICKET) is False  # type: ignore[arg-type]
    assert authz.check(ALICE, None, TICKET) is False  # type: ignore[arg-type]
    # revocation is seen at the next check
    authz.revoke(agent.uid)
    assert authz.check(agent.uid, "issue_refund", TICKET, {"amount": 120}) is False


def test_batch_reads_each_request_as_authorize_does(authz):
    agent = refund_agent(authz)
    ok = {"principal": ALICE, "action": "read_ticket", "resource": TICKET}
    results = authz.authorize_batch([
        ok,
        # a Uid wherever a uid is, as authorize takes them
        {"principal": ambit.Uid.parse(ALICE), "action": "read_ticket", "resource": ambit.Uid.parse(TICKET)},
        {"principal": agent.uid, "action": "issue_refund", "resource": TICKET, "context": {"amount": 120},
         "on_behalf_of": None},
        # requests that cannot be read are errors in their own slots; the rest are decided
        "not a dict",
        {"principal": ALICE, "action": "read_ticket"},
        {"principal": ALICE, "action": "read_ticket", "resource": TICKET, "contxt": {}},
        {"principal": ALICE, "action": "read_ticket", "resource": TICKET, "context": {"x": b"bytes"}},
        {"principal": 5, "action": "read_ticket", "resource": TICKET},
        {"principal": "nope", "action": "read_ticket", "resource": TICKET},
        ok,
    ])
    assert len(results) == 10
    assert [r.allowed for r in results[:3]] == [True, True, True]
    for r in results[3:9]:
        assert isinstance(r, ambit.AmbitError) and r.code == "AMBIT_INVALID_REQUEST", r
    assert results[9].allowed
    # each decision is what authorize gives for the same request
    single = authz.authorize(agent.uid, "issue_refund", TICKET, context={"amount": 120})
    assert results[2].reasons == single.reasons and results[2].chain == single.chain
    # too many request entities is the limit's code, in its slot
    many = [{"uid": {"type": "Helpdesk::Tag", "id": str(i)}, "attrs": {}, "parents": []} for i in range(100_000)]
    over = authz.authorize_batch([{"principal": ALICE, "action": "read_ticket", "resource": TICKET, "entities": many}, ok])
    assert isinstance(over[0], ambit.AmbitError) and over[0].code == "AMBIT_LIMIT"
    assert over[1].allowed
