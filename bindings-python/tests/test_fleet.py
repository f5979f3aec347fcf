"""One registry across a fleet of OS processes (issue 18), on a Redis this test starts: this
Python process, a Node process and the Rust CLI share one stream. An agent minted here is
decided in Node, one minted in Node is decided here, a root revoked by the CLI is denied in both
within the bound; Redis killed mid-stream makes both deny `stale_state`, and after it restarts
both recover, every event applied exactly once."""

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import ambit  # noqa: E402
from redis_server import RedisServer, eventually  # noqa: E402

SERVICE = 'Helpdesk::Service::"helpdesk"'
TICKET = 'Helpdesk::Ticket::"4711"'
ACME = {"tenant": {"__entity": {"type": "Helpdesk::Tenant", "id": "acme"}}}
STALENESS_MS = 500


class NodeMember:
    def __init__(self, root, helpdesk, url, stream, **options):
        script = root / "bindings-node" / "__test__" / "fleet-member.mjs"
        options["fleet"] = {"redisUrl": url, "stream": stream, "stalenessMs": STALENESS_MS}
        self.proc = subprocess.Popen(
            ["node", str(script), str(helpdesk), json.dumps(options)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert json.loads(self.proc.stdout.readline()) == {"ready": True}

    def ask(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def refund(self, agent):
        return self.ask(op="authorize", request={"principal": agent, "action": "issue_refund",
                                                 "resource": TICKET, "context": {"amount": 100}})

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture
def redis():
    with RedisServer() as server:
        yield server


def refund(authz, agent):
    return authz.authorize(agent, "issue_refund", TICKET, context={"amount": 100})


def cli(root, *args):
    return subprocess.run(["cargo", "run", "-q", "-p", "ambit-cli", "--", *args], cwd=root,
                          capture_output=True, text=True, timeout=900)


def test_three_processes_in_three_languages_share_one_registry(root, helpdesk, redis):
    # the CLI is built before any agent is minted: a first build takes minutes, longer than
    # the agents here live
    built = cli(root, "--version")
    assert built.returncode == 0, built.stderr
    fleet = {"redis_url": redis.url, "stream": "py", "staleness_ms": STALENESS_MS}
    here = ambit.Authorizer.from_dir(helpdesk, fleet=fleet)
    node = NodeMember(root, helpdesk, redis.url, "py")
    try:
        agent = here.mint_agent(SERVICE, "ticket-4711", ["issue_refund"], 900, attributes=ACME)
        assert refund(here, agent.uid).allowed, "the writer observes its own write"
        eventually(2, "node decides the agent minted here", lambda: node.refund(agent.uid)["allowed"])
        child = node.ask(op="mint", spec={"parent": agent.uid, "task": "sub", "scopes": ["issue_refund"],
                                          "ttlSeconds": 600, "attributes": ACME})
        assert "uid" in child, child
        eventually(2, "this process decides the agent minted in node",
                   lambda: refund(here, child["uid"]).allowed)
        assert sorted(a.uid for a in here.agents()) == node.ask(op="agents")

        # the Rust CLI, a third process, revokes the root service
        start = time.monotonic()
        out = cli(root, "revoke", "--fleet", redis.url, "--stream", "py", "--policies", str(helpdesk), SERVICE)
        assert out.returncode == 0, out.stderr
        assert "3 cut off" in out.stdout, out.stdout
        # the bound holds from the moment Redis acknowledged it (the CLI exited)
        eventually(STALENESS_MS / 1000, "the revocation reaches both",
                   lambda: refund(here, child["uid"]).deny_cause == "revoked"
                   and node.refund(child["uid"])["denyCause"] == "revoked")
        assert time.monotonic() - start < 900
        status = cli(root, "fleet", "status", "--fleet", redis.url, "--stream", "py", "--policies", str(helpdesk))
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["applied"] == 3

        # Redis killed mid-stream: past the bound both deny stale_state
        redis.kill()
        eventually(3, "both go stale", lambda: refund(here, agent.uid).deny_cause == "stale_state"
                   and node.refund(agent.uid)["denyCause"] == "stale_state")
        with pytest.raises(ambit.FleetError) as e:
            here.revoke(agent.uid)
        assert e.value.code == "AMBIT_FLEET"
        redis.start()
        eventually(5, "both recover", lambda: not here.fleet_status()["stale"]
                   and not node.ask(op="status")["stale"])
        assert here.reinstate(SERVICE) is True
        eventually(2, "the reinstatement reaches node", lambda: node.refund(agent.uid)["allowed"])
        for s in (here.fleet_status(), node.ask(op="status")):
            applied = s["applied"]
            events = s["events_applied"] if "events_applied" in s else s["eventsApplied"]
            assert (applied, events) == (4, 4), s

        # Node frozen (SIGSTOP) while this process writes, checkpoints and trims the feed past
        # it: once thawed it restores the checkpoint and converges
        os.kill(node.proc.pid, signal.SIGSTOP)
        try:
            frozen = [here.mint_agent(SERVICE, f"f{i}", ["issue_refund"], 900, attributes=ACME) for i in range(3)]
            here.revoke(frozen[0].uid)
            covered = here.fleet_checkpoint()
            last = here.mint_agent(SERVICE, "last", ["issue_refund"], 900, attributes=ACME)
        finally:
            os.kill(node.proc.pid, signal.SIGCONT)
        assert covered == 8
        eventually(5, "node converges after the trim", lambda: node.refund(last.uid)["allowed"]
                   and node.refund(frozen[0].uid)["denyCause"] == "revoked")
        assert sorted(a.uid for a in here.agents()) == node.ask(op="agents")
        status = node.ask(op="status")
        assert status["resyncs"] == 1 and status["applied"] == 9, status
    finally:
        node.close()


def test_a_credential_decided_in_node_is_cut_off_by_a_revocation_here(root, helpdesk, redis):
    """Issue 17's two processes: this Python process mints and issues; a Node process that
    trusts only the issuer's public keys decides with the credential alone; revoking the root
    here, or the credential's jti, reaches it through the fleet feed."""
    key = ambit.IssuerKey.generate("https://helpdesk.example", "k1")
    here = ambit.Authorizer.from_dir(helpdesk, fleet={"redis_url": redis.url, "stream": "cred",
                                                      "staleness_ms": STALENESS_MS})
    node = NodeMember(root, helpdesk, redis.url, "cred",
                      trustedIssuers=[{"issuer": "https://helpdesk.example", "jwks": key.public_jwks()}])
    try:
        def decide(credential):
            return node.ask(op="authorizeCredential", request={
                "credential": credential, "action": "issue_refund", "resource": TICKET,
                "context": {"amount": 100}})

        first = here.mint_agent(SERVICE, "one", ["issue_refund"], 900, attributes=ACME)
        second = here.mint_agent(SERVICE, "two", ["issue_refund"], 900, attributes=ACME)
        one, two = here.issue_credential(first.uid, key), here.issue_credential(second.uid, key)
        assert decide(one)["allowed"] and decide(two)["allowed"], (decide(one), decide(two))
        # the credential's jti, revoked here
        jti = json.loads(base64.urlsafe_b64decode(one.split(".")[1] + "=="))["jti"]
        here.revoke_credential(jti)
        eventually(STALENESS_MS / 1000, "the jti revocation reaches node", lambda: decide(one)["denyCause"] == "revoked")
        assert decide(two)["allowed"]
        # the root, revoked here
        here.revoke(SERVICE)
        eventually(STALENESS_MS / 1000, "the root revocation reaches node", lambda: decide(two)["denyCause"] == "revoked")
    finally:
        node.close()


def test_a_fleet_authorizer_built_before_a_fork_is_stale_and_writes_nothing_in_the_child(helpdesk, redis):
    # the follower is a thread and the Redis connection the parent's: a forked child must not
    # talk on it (its replies would reach the parent), nor trust a registry nobody updates
    authz = ambit.Authorizer.from_dir(helpdesk, fleet={"redis_url": redis.url, "stream": "fork", "staleness_ms": STALENESS_MS})
    agent = authz.mint_agent(SERVICE, task="t", scopes=["issue_refund"], ttl_seconds=600, attributes=ACME)
    assert refund(authz, agent.uid).allowed
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        said = {}
        try:
            said["refund"] = refund(authz, agent.uid).deny_cause
            try:
                authz.mint_agent(SERVICE, task="t", scopes=["issue_refund"], ttl_seconds=600, attributes=ACME)
                said["mint"] = "minted"
            except ambit.AmbitError as e:
                said["mint"] = e.code
            try:
                authz.revoke(agent.uid)
                said["revoke"] = "revoked"
            except ambit.AmbitError as e:
                said["revoke"] = e.code
            try:
                authz.fleet_checkpoint()
                said["checkpoint"] = "taken"
            except ambit.AmbitError as e:
                said["checkpoint"] = e.code
        finally:
            os.write(write, json.dumps(said).encode())
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    said = json.loads(os.read(read, 4096))
    os.close(read)
    assert said == {"refund": "stale_state", "mint": "AMBIT_FLEET", "revoke": "AMBIT_FLEET", "checkpoint": "AMBIT_FLEET"}
    # the parent's link is untouched: it still mints, decides and revokes through Redis
    other = authz.mint_agent(SERVICE, task="t", scopes=["issue_refund"], ttl_seconds=600, attributes=ACME)
    assert refund(authz, other.uid).allowed and refund(authz, agent.uid).allowed
    assert authz.revoke(agent.uid) == 1
    assert refund(authz, agent.uid).deny_cause == "revoked"


def test_fleet_options_and_errors(helpdesk, redis):
    with pytest.raises(ambit.ConfigError):
        ambit.Authorizer.from_dir(helpdesk, fleet={"redis_url": "http://127.0.0.1:1"})
    with pytest.raises(ambit.ConfigError):
        ambit.Authorizer.from_dir(helpdesk, fleet={"redis_url": redis.url, "stale_static": "allow"})
    with pytest.raises(ambit.ConfigError):
        ambit.Authorizer.from_dir(helpdesk, fleet={"redisUrl": redis.url})
    port = redis.port
    redis.kill()
    with pytest.raises(ambit.FleetError):
        ambit.Authorizer.from_dir(helpdesk, fleet={"redis_url": f"redis://127.0.0.1:{port}/0", "connect_timeout_ms": 200})
    assert ambit.Authorizer.from_dir(helpdesk).fleet_status() is None
    with pytest.raises(ambit.ConfigError):
        ambit.Authorizer.from_dir(helpdesk).fleet_checkpoint()
    assert "stale_state" in ambit.DENY_CAUSES and "AMBIT_FLEET" in ambit.ERROR_CODES
