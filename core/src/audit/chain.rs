//! The hash chain: each record's hash covers its canonical JSON and the previous hash, from
//! `GENESIS`.

use super::AuditRecord;
use crate::canonical::canonical;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `prev` of the very first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The record's hash and the length of its JSON line (the canonical text plus the `hash` field).
pub(crate) fn record_hash(record: &AuditRecord) -> (String, usize) {
    let mut v = serde_json::to_value(record).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.remove("hash");
    }
    let text = canonical(&v);
    (hash_text(&record.prev, &text), text.len() + HASH_FIELD_BYTES)
}

/// `,"hash":"<64 hex>"`
pub(crate) const HASH_FIELD_BYTES: usize = 75;

pub(crate) fn hash_of(prev: &str, without_hash: &Value) -> String {
    hash_text(prev, &canonical(without_hash))
}

pub(crate) fn hash_text(prev: &str, canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(canonical.as_bytes());
    hex(&h.finalize())
}
