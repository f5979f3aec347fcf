//! An audit log written by a process that is killed (SIGKILL) mid-write verifies up to its
//! last complete record, a torn last line is reported (never accepted), and the next process
//! cuts it off, records that it did, and continues the chain.
//!
//! This test has its own `main` (`harness = false`): run with `AMBIT_KILLED_WRITER_LOG` set,
//! the binary is the child, writing large decision records until it is killed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests fail loudly on a broken fixture")]

use ambit::audit::{self, Audit, FileOptions};
use ambit::{Authorizer, Limits, Request, Validation};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "AMBIT_KILLED_WRITER_LOG";
/// Kill at least this many writers, and keep going (up to `MAX_ROUNDS`) until one of the kills
/// left a torn record, so the torn path is exercised for real.
const ROUNDS: usize = 4;
const MAX_ROUNDS: usize = 30;

fn authorizer(log: &Path) -> Authorizer {
    let audit = Audit::builder()
        .include_context(true)
        .max_record_bytes(8 << 20)
        .file(log, FileOptions::default())
        .build()
        .unwrap();
    Authorizer::builder()
        .policies_str("permit(principal, action, resource) when { context has note };")
        .validation(Validation::Off)
        .limits(Limits::default().with_max_request_bytes(8 << 20))
        .audit(audit)
        .build()
        .unwrap()
}

/// The child: large records (up to ~4 MB) so that a kill can land inside one `write`.
fn child(log: &Path) -> ! {
    let a = authorizer(log);
    for i in 0u64.. {
        let note = "n".repeat(usize::try_from(1 + (i * 7_919) % (4 << 20)).unwrap());
        let r = Request::new(r#"User::"u""#, "write", r#"Doc::"d""#).with_context(json!({ "note": note }));
        a.authorize(&r).unwrap();
    }
    unreachable!()
}

fn last_byte(log: &Path) -> Option<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(log).ok()?;
    f.seek(SeekFrom::End(-1)).ok()?;
    let mut b = [0u8];
    f.read_exact(&mut b).ok()?;
    Some(b[0])
}

fn complete_records(log: &Path) -> (u64, bool) {
    let bytes = std::fs::read(log).unwrap();
    let complete = bytes.split(|b| *b == b'\n').count() as u64 - 1;
    (complete, bytes.last().is_some_and(|b| *b != b'\n'))
}

fn main() {
    if let Some(log) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&log));
    }
    let dir = std::env::temp_dir().join(format!("ambit-killed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("audit.jsonl");
    let me = std::env::current_exe().unwrap();
    let mut torn_rounds = 0;
    let mut rounds = 0;
    while rounds < ROUNDS || (torn_rounds == 0 && rounds < MAX_ROUNDS) {
        let round = rounds;
        rounds += 1;
        let start_len = std::fs::metadata(&log).map_or(0, |m| m.len());
        let mut child = Command::new(&me).env(CHILD_ENV, &log).stdout(Stdio::null()).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        // let it write a record or two, then kill it, preferably while a record is half on
        // disk (the file does not end with a newline); give up waiting for that after a while
        let mut tries = 0u32;
        loop {
            let len = std::fs::metadata(&log).map_or(0, |m| m.len());
            assert!(Instant::now() < deadline, "the child wrote nothing");
            assert!(child.try_wait().unwrap().is_none(), "the child exited on its own");
            if len > start_len + (1 << 20) {
                tries += 1;
                if last_byte(&log) != Some(b'\n') || tries > 20_000 {
                    break;
                }
            }
            std::hint::spin_loop();
        }
        child.kill().unwrap();
        child.wait().unwrap();

        let (complete, torn) = complete_records(&log);
        let report = audit::verify_with(std::slice::from_ref(&log), 8 << 20).unwrap();
        assert_eq!(report.records, complete, "round {round}: every complete record verifies: {report:?}");
        if torn {
            torn_rounds += 1;
            assert!(!report.ok, "round {round}: a torn last line was accepted");
            assert_eq!(report.first_bad_seq, Some(complete + 1));
            assert!(report.problem.as_deref().unwrap().contains("torn last record"), "{report:?}");
        } else {
            assert!(report.ok, "round {round}: {report:?}");
        }
    }
    assert!(torn_rounds > 0, "{rounds} kills and none landed mid-record");
    // a last, orderly writer continues the chain
    {
        let a = authorizer(&log);
        a.authorize(&Request::new(r#"User::"u""#, "write", r#"Doc::"d""#).with_context(json!({"note": "bye"})))
            .unwrap();
    }
    let report = audit::verify_with(std::slice::from_ref(&log), 8 << 20).unwrap();
    assert!(report.ok, "after restart: {report:?}");
    let records: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=records.len() as u64).collect::<Vec<_>>(), "one unbroken chain");
    let discarded = records.iter().filter(|r| r["kind"] == "torn_tail_discarded").count();
    assert_eq!(discarded, torn_rounds, "each torn tail is cut off and recorded by the next writer");
    let _ = std::fs::remove_dir_all(&dir);
    println!("killed_writer: {rounds} kills, {torn_rounds} left a torn last record; {} records verify", report.records);
}
