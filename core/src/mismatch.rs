//! Why a JSON value does not fit a schema type, in words that name the attribute and the type
//! expected (`` `amount: "900"`: expected `Long` ``), for the errors of contexts that do not
//! fit their action. Only the wording comes from here; whether a value fits is always Cedar's
//! own validation.

use cedar_policy_core::validator::types::{OpenTag, Type};
use serde_json::Value;

/// The first place where `json` does not fit the context type of `action`, if ambit can say.
pub(crate) fn context(schema: &cedar_policy::Schema, action: &cedar_policy::EntityUid, json: &Value) -> Option<String> {
    let action: &cedar_policy_core::ast::EntityUID = action.as_ref();
    let ty = schema.as_ref().get_action_id(action)?.context_type()?;
    first(json, ty, "", 0)
}

/// The members of `args` the context type of `action` declares (all of them when the context
/// type is open; none without a schema entry): the default context of a guarded tool call.
pub(crate) fn declared(schema: &cedar_policy::Schema, action: &cedar_policy::EntityUid, args: &Value) -> Value {
    let action: &cedar_policy_core::ast::EntityUID = action.as_ref();
    let Some(Type::Record { attrs, open_attributes }) =
        schema.as_ref().get_action_id(action).and_then(|a| a.context_type())
    else {
        return Value::Object(serde_json::Map::new());
    };
    let Some(map) = args.as_object() else { return Value::Object(serde_json::Map::new()) };
    let keep = |k: &str| *open_attributes == OpenTag::OpenAttributes || attrs.get_attr(k).is_some();
    Value::Object(map.iter().filter(|(k, _)| keep(k)).map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn name(ty: &Type) -> String {
    match ty {
        Type::Never => "nothing".into(),
        Type::Bool(_) => "Bool".into(),
        Type::Long => "Long".into(),
        Type::String => "String".into(),
        Type::Entity(_) => "an entity".into(),
        Type::Set { element_type: Some(e) } => format!("Set<{}>", name(e)),
        Type::Set { element_type: None } => "Set".into(),
        Type::Record { .. } => "a record".into(),
        Type::ExtensionType { name } => name.to_string(),
    }
}

/// The value as compact JSON (JSON already escapes control characters), cut when long.
fn shown(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 120 {
        text.chars().take(120).chain("...".chars()).collect()
    } else {
        text
    }
}

fn at(path: &str, v: &Value, expected: &Type) -> String {
    if path.is_empty() {
        format!("`{}`: expected {}", shown(v), quoted(expected))
    } else {
        format!("`{path}: {}`: expected {}", shown(v), quoted(expected))
    }
}

fn quoted(ty: &Type) -> String {
    let n = name(ty);
    if n.starts_with("a ") || n.starts_with("an ") {
        n
    } else {
        format!("`{n}`")
    }
}

fn first(v: &Value, ty: &Type, path: &str, depth: usize) -> Option<String> {
    if depth > crate::limit::MAX_JSON_DEPTH {
        return None;
    }
    let join = |k: &str| if path.is_empty() { k.to_owned() } else { format!("{path}.{k}") };
    match (ty, v) {
        (Type::Long, Value::Number(n)) if n.is_i64() => None,
        (Type::String, Value::String(_)) | (Type::Bool(_), Value::Bool(_)) => None,
        (Type::Set { element_type }, Value::Array(items)) => {
            let e = element_type.as_deref()?;
            items.iter().enumerate().find_map(|(i, item)| first(item, e, &format!("{path}[{i}]"), depth + 1))
        }

        (Type::Record { attrs, open_attributes }, Value::Object(map)) => {
            if map.contains_key("__entity") || map.contains_key("__extn") {
                return Some(at(path, v, ty));
            }
            for (k, a) in attrs.iter() {
                match map.get(k.as_str()) {
                    None if a.is_required => {
                        return Some(format!("`{}` is required (of type {})", join(k), quoted(&a.attr_type)));
                    }
                    None => {}
                    Some(inner) => {
                        if let Some(m) = first(inner, &a.attr_type, &join(k), depth + 1) {
                            return Some(m);
                        }
                    }
                }
            }
            if *open_attributes != OpenTag::OpenAttributes {
                if let Some(extra) = map.keys().find(|k| attrs.get_attr(k).is_none()) {
                    return Some(format!("`{}` is not an attribute the schema declares here", join(extra)));
                }
            }
            None
        }
        (Type::Long | Type::String | Type::Bool(_) | Type::Set { .. } | Type::Record { .. }, _) => {
            Some(at(path, v, ty))
        }
        // entity references and extension values: their own checks word them well enough
        _ => None,
    }
}
