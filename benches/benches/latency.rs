//! Criterion's view of the hot path, with confidence intervals: one-hop decisions by ambit and
//! by raw Cedar side by side at P = 1, 10 and 100 on the shared workload, and a 3-hop agent
//! chain. The ratio table is the `ratios` bench; `cargo bench` runs both.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc, reason = "benchmark fixtures fail loudly")]

use ambit::{AgentSpec, Request};
use ambit_benches as w;
use cedar_policy::{Entities, PolicySet, Schema};
use criterion::{criterion_group, criterion_main, Criterion};
use std::str::FromStr;
use std::time::Duration;

fn one_hop(c: &mut Criterion) {
    let reqs = w::requests(200);
    let schema = Schema::from_cedarschema_str(&w::schema()).unwrap().0;
    let cedar = cedar_policy::Authorizer::new();
    for p in [1, 10, 100] {
        let a = w::authorizer(p);
        let areqs = w::ambit_requests(&reqs);
        let policies = PolicySet::from_str(&w::policies(p)).unwrap();
        let entities = Entities::from_json_value(w::entities(), Some(&schema)).unwrap();
        let creqs = w::cedar_requests(&reqs, &schema);
        let mut g = c.benchmark_group(format!("one_hop_p{p}"));
        g.bench_function("ambit", |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % areqs.len();
                a.authorize(&areqs[i]).unwrap()
            });
        });
        g.bench_function("raw_cedar_prepared_request", |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % creqs.len();
                cedar.is_authorized(&creqs[i], &policies, &entities)
            });
        });
        g.finish();
    }
}

fn chain(c: &mut Criterion) {
    let a = w::authorizer(100);
    let mut parent = r#"Desk::Service::"platform""#.to_owned();
    for _ in 0..2 {
        let agent = a.mint_agent(&AgentSpec::new(&parent, "bench", 3600).scopes(["read_ticket"])).unwrap();
        agent.uid().clone_into(&mut parent);
    }
    let q =
        Request::new(&parent, "read_ticket", r#"Desk::Ticket::"t1-k1""#).with_context(serde_json::json!({"amount": 1}));
    assert_eq!(a.authorize(&q).unwrap().chain().len(), 3);
    c.bench_function("chain_3_hops_p100", |b| b.iter(|| a.authorize(&q).unwrap()));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = one_hop, chain
}
criterion_main!(benches);
