//! A steady decision loop for profilers (`valgrind --tool=callgrind`, `perf record`).
#![allow(clippy::unwrap_used, reason = "profiling harness")]

fn main() {
    if std::env::args().nth(1).as_deref() == Some("mint") {
        return mint();
    }
    if std::env::args().nth(1).as_deref() == Some("load") {
        return load();
    }
    if std::env::args().nth(1).as_deref() == Some("reload") {
        return reload();
    }
    if std::env::args().nth(1).as_deref() == Some("chain") {
        return chain();
    }
    if std::env::args().nth(1).as_deref() == Some("threads") {
        return threads();
    }
    if std::env::args().nth(1).as_deref() == Some("batch") {
        return batch();
    }
    if std::env::args().nth(1).as_deref() == Some("shapes") {
        return shapes();
    }
    let p: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(10);
    let n: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(5000);
    let a = ambit_benches::authorizer(p);
    let reqs: Vec<ambit::Request> = ambit_benches::requests(200)
        .into_iter()
        .map(|r| {
            ambit::Request::new(r.principal, r.action, r.resource).with_context(serde_json::json!({"amount": r.amount}))
        })
        .collect();
    decide_loop(&a, &reqs, n);
}

/// `profile batch [SIZE]`: one decision at a time against batches of SIZE (P = 100), per decision.
fn batch() {
    let size: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(200);
    let a = ambit_benches::authorizer(100);
    let reqs = ambit_benches::ambit_requests(&ambit_benches::requests(size));
    for round in 0..5 {
        let start = std::time::Instant::now();
        if std::env::var_os("AMBIT_PROFILE_BATCH_ONLY").is_none() {
            for r in &reqs {
                a.authorize(r).unwrap();
            }
        }
        let single = start.elapsed() / u32::try_from(size).unwrap();
        let start = std::time::Instant::now();
        let answers = a.authorize_batch(&reqs);
        let batched = start.elapsed() / u32::try_from(size).unwrap();
        assert!(answers.iter().all(Result::is_ok));
        eprintln!("round {round}: single {single:?}, batch {batched:?} per decision");
    }
}

/// `profile mint [N]`: N mints under one service.
fn mint() {
    let n: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let a = ambit_benches::authorizer(10);
    let start = std::time::Instant::now();
    for _ in 0..n {
        a.mint_agent(&ambit::AgentSpec::new(r#"Desk::Service::"platform""#, "m", 3600).scopes(["read_ticket"]))
            .unwrap();
    }
    eprintln!("{n} mints, {:?} per mint", start.elapsed() / u32::try_from(n).unwrap());
}

/// `profile load [P]`: build an authorizer over P policies, once.
fn load() {
    let p: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let (schema, policies, entities) =
        (ambit_benches::schema(), ambit_benches::policies(p), ambit_benches::entities().to_string());
    let start = std::time::Instant::now();
    let a =
        ambit::Authorizer::builder().schema_str(schema).policies_str(policies).entities_json(entities).build().unwrap();
    eprintln!("loaded {} policies in {:?}", a.policy_ids().len(), start.elapsed());
}

/// `profile reload [P]`: build over P policies, then replace them with the same plus one.
fn reload() {
    let p: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let policies = ambit_benches::policies(p);
    let start = std::time::Instant::now();
    let a = ambit::Authorizer::builder()
        .schema_str(ambit_benches::schema())
        .policies_str(&policies)
        .entities_json(ambit_benches::entities().to_string())
        .build()
        .unwrap();
    let load = start.elapsed();
    let changed = format!(
        "{policies}\n@id(\"extra\") permit(principal == Desk::User::\"t1-u0\", action == Desk::Action::\"read_ticket\", resource);"
    );
    let start = std::time::Instant::now();
    a.replace_policies(&changed).unwrap();
    eprintln!("load {load:?}, replace with one policy more {:?}", start.elapsed());
}

/// `profile chain [N] [AGENTS] [P]`: N decisions by the last of AGENTS agents minted one under
/// the other (default 2: a chain of 3 hops) at P policies (default 100); AGENTS = 0 decides
/// the bench's one-hop request (a user) instead, the baseline of the chain ratios.
fn chain() {
    let n: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let agents: usize = std::env::args().nth(3).and_then(|n| n.parse().ok()).unwrap_or(2);
    let p: usize = std::env::args().nth(4).and_then(|n| n.parse().ok()).unwrap_or(100);
    let a = ambit_benches::authorizer(p);
    let mut parent = if agents == 0 { r#"Desk::User::"t1-u0""# } else { r#"Desk::Service::"platform""# }.to_owned();
    for _ in 0..agents {
        let agent = a.mint_agent(&ambit::AgentSpec::new(&parent, "p", 3600).scopes(["read_ticket"])).unwrap();
        agent.uid().clone_into(&mut parent);
    }
    let q = ambit::Request::new(&parent, "read_ticket", r#"Desk::Ticket::"t1-k1""#)
        .with_context(serde_json::json!({"amount": 1}));
    let start = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(a.authorize(&q).unwrap());
    }
    eprintln!("{n} chain decisions, {:?} per decision", start.elapsed() / u32::try_from(n).unwrap());
}

/// `profile threads [SECS] [N]`: decisions per second at P = 100 on one thread, then on two
/// (or only on N threads). With `AMBIT_PROFILE_SEPARATE` set, each thread builds and uses its
/// own authorizer (its build counts in its time): no data shared between the threads.
fn threads() {
    let secs: u64 = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(2);
    let shared = ambit_benches::authorizer(100);
    let reqs = ambit_benches::ambit_requests(&ambit_benches::requests(200));
    let separate = std::env::var_os("AMBIT_PROFILE_SEPARATE").is_some();
    let budget = std::time::Duration::from_secs(secs);
    let rate = |threads: usize| {
        ambit_benches::per_second(threads, budget, || {
            let own = separate.then(|| ambit_benches::authorizer(100));
            let reqs = &reqs;
            let shared = &shared;
            move || ambit_benches::decide_all(own.as_ref().unwrap_or(shared), reqs)
        })
    };
    if let Some(n) = std::env::args().nth(3).and_then(|n| n.parse().ok()) {
        eprintln!("{n} threads {:.0}/s", rate(n));
        return;
    }
    let (one, two) = (rate(1), rate(2));
    eprintln!("1 thread {one:.0}/s, 2 threads {two:.0}/s: {:.2}x", two / one);
}

/// `profile shapes [P] [N]`: N decisions on the second workload (`ambit_benches::shapes`).
fn shapes() {
    use ambit_benches::shapes as s;
    let p: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let n: usize = std::env::args().nth(3).and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let a = ambit::Authorizer::builder()
        .schema_str(s::schema())
        .policies_str(s::policies(p))
        .entities_json(s::entities().to_string())
        .build()
        .unwrap();
    let reqs: Vec<ambit::Request> = s::requests(300)
        .into_iter()
        .map(|r| ambit::Request::new(r.principal, r.action, r.resource).with_context(r.context))
        .collect();
    decide_loop(&a, &reqs, n);
}

/// `n` decisions over `reqs` in turn, then how many were allowed and the time per decision.
fn decide_loop(a: &ambit::Authorizer, reqs: &[ambit::Request], n: usize) {
    let start = std::time::Instant::now();
    let mut allowed = 0;
    for i in 0..n {
        if a.authorize(&reqs[i % reqs.len()]).unwrap().allowed() {
            allowed += 1;
        }
    }
    eprintln!("{n} decisions, {allowed} allowed, {:?} per decision", start.elapsed() / u32::try_from(n).unwrap());
}
