//! Plain JSON (strings, booleans, integers, sets, records, and `__entity` references where
//! the caller allows them) built directly as Cedar values: what Cedar's untyped JSON parse
//! gives, without its expression building and evaluation. Optionally writes the value's type
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

    /// The value, or `None` for anything not plain (floats, null, extension escapes,
    /// `{type, id}` objects, or references when they are not allowed).
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
