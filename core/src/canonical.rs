//! The canonical JSON text audit hashes are computed over: RFC 8785 (JSON Canonicalization
//! Scheme), with one stated difference for integers.
//!
//! - Objects: members sorted by their keys compared as UTF-16 code units, no whitespace.
//! - Strings: `"` and `\` escaped, `\b \t \n \f \r` for those control characters, `\u00xx`
//!   (lowercase hex) for the other characters below U+0020; everything else as is (UTF-8).
//! - `true`, `false`, `null` as written.
//! - Integers (every number serde_json holds as `i64` / `u64`): exact decimal, no sign for
//!   non-negative, no leading zeros. JCS writes integers of magnitude at most 2^53 the same
//!   way; beyond that JCS would round through a double, which would let a ±1 change of a large
//!   Cedar `Long` go unnoticed, so ambit keeps them exact.
//! - Other numbers: ECMAScript's `Number.prototype.toString`, as JCS requires.
//!
//! The text does not depend on the order in which keys were inserted (cedar-policy-core turns on
//! serde_json's `preserve_order`, so `serde_json::to_string` would).

use serde_json::Value;
use std::fmt::Write as _;

/// The canonical text of `v`.
pub(crate) fn canonical(v: &Value) -> String {
    let mut out = String::with_capacity(256);
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => number(n, out),
        Value::String(s) => string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (k, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(k, out);
                out.push(':');
                write(item, out);
            }
            out.push('}');
        }
    }
}

fn string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn number(n: &serde_json::Number, out: &mut String) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        ecmascript(f, out);
    }
}

/// ECMAScript `Number.prototype.toString` of a finite double (JSON has no others).
fn ecmascript(f: f64, out: &mut String) {
    if f == 0.0 {
        out.push('0');
        return;
    }
    if f < 0.0 {
        out.push('-');
    }
    // shortest round-trip digits and exponent: `d.ddde<exp>`
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let n = exp.parse::<i64>().unwrap_or(0).saturating_add(1);
    if k <= n && n <= 21 {
        out.push_str(&digits);
        for _ in 0..(n - k) {
            out.push('0');
        }
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(usize::try_from(n).unwrap_or(0));
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        for _ in 0..(-n) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let e = n - 1;
        let _ = write!(out, "e{}{}", if e < 0 { '-' } else { '+' }, e.abs());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::canonical;
    use serde_json::json;

    #[test]
    fn keys_sort_by_utf16_code_units_whatever_the_insertion_order() {
        // U+1F600 is a surrogate pair (0xD83D...), which sorts before U+FB01 in UTF-16 but
        // after it in UTF-8 / code points
        let a: serde_json::Value = serde_json::from_str(r#"{"b":1,"a":2,"\ufb01":3,"😀":4}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"😀":4,"\ufb01":3,"a":2,"b":1}"#).unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(canonical(&a), "{\"a\":2,\"b\":1,\"😀\":4,\"\u{fb01}\":3}");
    }

    #[test]
    fn strings_and_numbers_follow_rfc_8785() {
        let v = json!({"s": "\u{1}\u{8}\t\n\u{c}\r\"\\/é\u{7f}", "i": -12, "u": u64::MAX, "big": 9_007_199_254_740_993_i64});
        assert_eq!(
            canonical(&v),
            "{\"big\":9007199254740993,\"i\":-12,\"s\":\"\\u0001\\b\\t\\n\\f\\r\\\"\\\\/é\u{7f}\",\"u\":18446744073709551615}"
        );
        // RFC 8785 appendix B samples
        for (f, text) in [
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (0.000_001, "0.000001"),
            (1e-7, "1e-7"),
            (123.456, "123.456"),
            (-1.5, "-1.5"),
            (5e-324, "5e-324"),
            (1.797_693_134_862_315_7e308, "1.7976931348623157e+308"),
            (333_333_333.333_333_3, "333333333.3333333"),
        ] {
            assert_eq!(canonical(&json!(f)), text, "{f}");
        }
    }
}
