"""ambit from Python against cedarpy, on the same generated workload, in one run.

Usage: python bindings-python/bench/bench.py WORKLOAD_DIR   (make bench exports the workload)
Prints per-decision times and ratios; cedarpy runs in each of its modes: policy text per call
(as its README shows) and its fastest, reusable PolicySet / Entities / Schema handles.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import ambit


def per_call(fn, items, budget=1.0):
    calls, start = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - start < budget:
        for it in items:
            fn(it)
        calls += len(items)
    return (time.perf_counter() - start) / calls * 1e6  # µs


def main(workload: Path) -> None:
    schema = (workload / "schema.cedarschema").read_text()
    policies = (workload / "policies.cedar").read_text()
    entities = (workload / "entities.json").read_text()
    requests = json.loads((workload / "requests.json").read_text())[:200]
    authz = ambit.Authorizer(schema=schema, policies=policies, entities=entities)

    def run_ambit(r):
        authz.authorize(r["principal"], r["action"], r["resource"], context=r["context"])

    rows = [("ambit (Python binding)", per_call(run_ambit, requests))]
    # uids parsed once, kept native: what a caller holding ambit.Uid objects pays per call
    typed = [dict(r, principal=ambit.Uid.parse(r["principal"]), resource=ambit.Uid.parse(r["resource"])) for r in requests]

    def run_typed(r):
        authz.authorize(r["principal"], r["action"], r["resource"], context=r["context"])

    t_typed = per_call(run_typed, typed)
    rows.append(("ambit with ambit.Uid", t_typed))
    # the whole list in one call: per decision
    batch = per_call(lambda rs: authz.authorize_batch(rs), [requests]) / len(requests)
    rows.append(("ambit authorize_batch, per decision", batch))
    fastest_peer = None
    try:
        import cedarpy
    except ImportError:
        print("cedarpy is not installed: pip install cedarpy")
        cedarpy = None
    if cedarpy is not None:
        full = [dict(r, action=f'Desk::Action::"{r["action"]}"') for r in requests]
        ps = cedarpy.PolicySet.from_str(policies)
        sch = cedarpy.Schema.from_str(schema)
        ents = cedarpy.Entities.from_json_str(entities, sch)

        def fast(r):
            cedarpy.is_authorized(r, ps, ents, sch)

        def text(r):
            cedarpy.is_authorized(r, policies, entities, schema)

        # sanity: both engines agree on the decisions they are timed on
        for a, c in zip(requests[:50], full[:50]):
            d = authz.authorize(a["principal"], a["action"], a["resource"], context=a["context"])
            assert d.allowed == (cedarpy.is_authorized(c, ps, ents, sch).decision == cedarpy.Decision.Allow), a
        fastest_peer = per_call(fast, full)
        rows.append(("cedarpy, reusable handles (fastest)", fastest_peer))
        rows.append(("cedarpy, policy text per call", per_call(text, full[:20], budget=2.0)))
    base = rows[0][1]
    print(f"workload: {workload} ({policies.count('@id(')} policies, {len(requests)} requests)")
    print("| engine | per decision | ratio to ambit |")
    print("| --- | --- | --- |")
    for name, us in rows:
        print(f"| {name} | {us:.2f} µs | {us / base:.1f}× |")
    # issue 19's goals for the binding, each met or missed
    print("\n| goal (issue 19) | measured | |")
    print("| --- | --- | --- |")

    def goal(text, measured, met):
        print(f"| {text} | {measured} | {'met' if met else '**missed**'} |")

    rust_file = workload / "rust.json"
    if rust_file.exists():
        rust = json.loads(rust_file.read_text())["per_decision_us"]
        goal("≤ 1.5 µs over Rust per call, with ambit.Uid", f"{t_typed - rust:+.2f} µs (Rust {rust:.2f} µs)", t_typed - rust <= 1.5)
    else:
        goal("≤ 1.5 µs over Rust per call, with ambit.Uid", "no rust.json (run export-workload)", False)
    goal("authorize_batch ≥ 1.3× faster per decision than single calls", f"{base / batch:.2f}×", base / batch >= 1.3)
    if fastest_peer is not None:
        goal("≥ 30× cedarpy's fastest mode", f"{fastest_peer / base:.1f}×", fastest_peer / base >= 30)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "target/bench-workload/p100"))
