//! Every committed fuzz seed (`fuzz/corpus/<target>/`) runs through the same target body as
//! an ordinary test, so a fixed crash stays fixed. Fails when a target has no seeds.

use std::path::Path;

type Target = (&'static str, fn(&[u8]));

#[test]
fn every_committed_fuzz_seed_passes() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let targets: [Target; 4] = [
        ("load_policies", ambit::fuzzing::load_policies),
        ("wire_request", ambit::fuzzing::wire_request),
        ("delegation_ops", ambit::fuzzing::delegation_ops),
        ("audit_verify", ambit::fuzzing::audit_verify),
    ];
    for (name, run) in targets {
        let dir = corpus.join(name);
        let seeds: Vec<_> =
            std::fs::read_dir(&dir).map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect()).unwrap_or_default();
        assert!(!seeds.is_empty(), "no seeds for fuzz target {name} in {}", dir.display());
        for seed in seeds {
            let data = std::fs::read(&seed).unwrap_or_default();
            run(&data);
        }
    }
}
