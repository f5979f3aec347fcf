//! Plain JSON (strings, booleans, integers, sets, records, `__entity` references where the
//! caller allows them, and `__extn` escapes of Cedar's one-string constructors such as `ip` and
//! `decimal`) built directly as Cedar values: what Cedar's untyped JSON parse gives, without
//! its expression building and evaluation. Optionally writes the value's type
//! signature, on which Cedar's schema checks depend (used to remember checks that passed).

use cedar_policy::EntityTypeName;
use cedar_policy_core::ast::Value;
use rustc_hash::FxHashMap;
use serde_json::Value as Json;
use std::fmt::Write as _;

/// Builds Cedar values from plain JSON, appending type signatures to `sig` when given.
pub(crate) struct Plain<'a> {
    /// Entity types `__entity` references may name; `None` refuses references.
    pub(crate) types: Option<&'a FxHashMap<String, EntityTypeName>>,
    pub(crate) sig: Option<&'a mut String>,
}

impl Plain<'_> {
    fn mark(&mut self, c: char) {
        if let Some(s) = self.sig.as_deref_mut() {
            s.push(c);
        }
    }

    /// The value, or `None` for anything not plain (floats, null, extension escapes other than
    /// a one-string constructor whose argument it accepts, `{type, id}` objects, or references
    /// when they are not allowed).
    pub(crate) fn value(&mut self, v: &Json) -> Option<Value> {
        Some(match v {
            Json::String(s) => {
                self.mark('s');
                Value::new(s.as_str(), None)
            }
            Json::Bool(b) => {
                self.mark('b');
                Value::new(*b, None)
            }
            Json::Number(n) => {
                self.mark('l');
                Value::new(n.as_i64()?, None)
            }
            Json::Array(items) => {
                self.mark('[');
                let set = items.iter().map(|i| self.value(i)).collect::<Option<Vec<_>>>()?;
                self.mark(']');
                Value::set(set, None)
            }
            Json::Object(map) if map.len() == 1 && map.contains_key("__entity") => {
                let e = map.get("__entity")?.as_object()?;
                let (ty, id) = (e.get("type")?.as_str()?, e.get("id")?.as_str()?);
                let ty = self.types?.get(ty)?;
                // the id is part of the signature: enumerated entity types check it
                if let Some(s) = self.sig.as_deref_mut() {
                    let (t, ty_len) = (ty.to_string(), ty.to_string().len());
                    let _ = write!(s, "e{ty_len}:{t}{}:{id}", id.len());
                }
                let uid = cedar_policy::EntityUid::from_type_name_and_id(ty.clone(), cedar_policy::EntityId::new(id));
                Value::new(cedar_policy_core::ast::EntityUID::from(uid), None)
            }
            Json::Object(map) if map.len() == 1 && map.contains_key("__extn") => {
                let e = map.get("__extn")?.as_object()?;
                if e.len() != 2 {
                    return None;
                }
                let (name, arg) = (e.get("fn")?.as_str()?, e.get("arg")?.as_str()?);
                let f = constructor(name)?;
                // the constructor fixes the value's type: its name is the signature
                if let Some(s) = self.sig.as_deref_mut() {
                    let _ = write!(s, "x{}:{name}", name.len());
                }
                // the call Cedar's parse makes; a bad argument goes to Cedar for its error
                match f.call(&[Value::new(arg, None)]).ok()? {
                    cedar_policy_core::ast::PartialValue::Value(v) => v,
                    cedar_policy_core::ast::PartialValue::Residual(_) => return None,
                }
            }
            Json::Object(map) => {
                if map.contains_key("__entity") || map.contains_key("__extn") || map.contains_key("type") {
                    return None;
                }
                self.mark('{');
                let fields = self.fields(map)?;
                self.mark('}');
                Value::record(fields, None)
            }
            Json::Null => return None,
        })
    }

    /// A record's fields, keys in the signature with their lengths (so no two differ only in
    /// where one key ends).
    pub(crate) fn fields(&mut self, map: &serde_json::Map<String, Json>) -> Option<Vec<(String, Value)>> {
        map.iter()
            .map(|(k, v)| {
                if let Some(s) = self.sig.as_deref_mut() {
                    let _ = write!(s, "{}:{k}=", k.len());
                }
                Some((k.clone(), self.value(v)?))
            })
            .collect()
    }
}

/// Cedar's extension constructor named `name` when it takes one string (`ip`, `decimal`,
/// `datetime`, `duration`): looked up once, by the names Cedar's own JSON format uses.
fn constructor(name: &str) -> Option<&'static cedar_policy_core::ast::ExtensionFunction> {
    use cedar_policy_core::ast::{ExtensionFunction, Name};
    use std::str::FromStr as _;
    static CONSTRUCTORS: std::sync::OnceLock<Vec<(&'static str, &'static ExtensionFunction)>> =
        std::sync::OnceLock::new();
    CONSTRUCTORS
        .get_or_init(|| {
            let all = cedar_policy_core::extensions::Extensions::all_available();
            ["ip", "decimal", "datetime", "duration"]
                .into_iter()
                .filter_map(|n| Some((n, all.func(&Name::from_str(n).ok()?).ok()?)))
                .filter(|(_, f)| f.is_single_arg_constructor())
                .collect()
        })
        .iter()
        .find_map(|(n, f)| (*n == name).then_some(*f))
}
