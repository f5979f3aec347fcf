//! Writes the shared workload (P = 100 by default) for the Python and Node bench scripts.

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "target/bench-workload/p100".to_owned());
    let p = args.next().and_then(|n| n.parse().ok()).unwrap_or(100);
    ambit_benches::export(std::path::Path::new(&dir), p, 1000)?;
    println!("wrote the workload for P = {p} to {dir}");
    Ok(())
}
