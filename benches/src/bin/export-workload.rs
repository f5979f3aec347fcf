//! Writes the shared workload (P = 100 by default) for the Python and Node bench scripts, and
//! `rust.json`: the Rust decision time on the requests the scripts time, measured here, in
//! the same `make bench` run, so each binding reports what it adds over Rust.

#![allow(clippy::unwrap_used, clippy::cast_precision_loss, reason = "benchmark harness")]

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "target/bench-workload/p100".to_owned());
    let p = args.next().and_then(|n| n.parse().ok()).unwrap_or(100);
    let dir = std::path::Path::new(&dir);
    ambit_benches::export(dir, p, 1000)?;
    // the scripts time the first 200 requests of the file: so does this
    let a = ambit_benches::authorizer(p);
    let reqs = ambit_benches::ambit_requests(&ambit_benches::requests(1000)[..200]);
    let budget = std::time::Duration::from_secs(1);
    ambit_benches::decide_all(&a, &reqs);
    let start = std::time::Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        n += ambit_benches::decide_all(&a, &reqs);
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    std::fs::write(dir.join("rust.json"), serde_json::json!({ "per_decision_us": us }).to_string())?;
    println!("wrote the workload for P = {p} to {}; Rust decides it in {us:.2} µs per decision", dir.display());
    Ok(())
}
