//! A request with every string parsed and checked against the snapshot: uids, the action, the
//! context (typed by the schema), and per-request entities. What the decision path reads.

use crate::config::{Config, Validation};
use crate::error::{cedar_text, user_text, Error, Result};
use crate::request::Request;
use crate::snapshot::{ActionInfo, Snapshot};
use cedar_policy::{Context, Entity, EntityTypeName, EntityUid};
use std::sync::Arc;

/// A request with every string parsed, ready for the decision path.
pub(crate) struct Prepared<'s> {
    /// The action's schema entry and policy slice, looked up once.
    pub(crate) info: Option<&'s ActionInfo>,
    pub(crate) principal: EntityUid,
    pub(crate) action: EntityUid,
    pub(crate) resource: EntityUid,
    pub(crate) delegators: Vec<EntityUid>,
    /// Canonical texts of the above, for the decision (formatting uids is not free).
    pub(crate) principal_text: String,
    pub(crate) action_text: String,
    pub(crate) resource_text: String,
    pub(crate) delegator_texts: Vec<String>,
    /// More delegators than the depth limit allows: they were not parsed, and the request is
    /// denied with `depth_exceeded`.
    pub(crate) too_deep: bool,
    pub(crate) context: Context,
    pub(crate) context_refs: Vec<EntityUid>,
    pub(crate) entities: Vec<(Entity, Vec<EntityUid>)>,
}

pub(crate) fn prepare<'s>(snap: &'s Snapshot, config: &Config, request: &Request) -> Result<Prepared<'s>> {
    prepare_with(snap, config, request, true)
}

/// [`prepare`]; without `with_context` the context is neither parsed nor checked
/// (empty): for checks that do not read it.
pub(crate) fn prepare_with<'s>(
    snap: &'s Snapshot,
    config: &Config,
    request: &Request,
    with_context: bool,
) -> Result<Prepared<'s>> {
    let limits = &config.limits;
    // bounded before anything is parsed: a chain longer than the depth limit is denied
    // (`depth_exceeded`) without looking at its delegators one by one
    let too_deep = request.delegators().len() > config.max_depth as usize;
    limits.check_uid("principal", request.principal())?;
    limits.check_uid("resource", request.resource())?;
    limits.check_uid("action", request.action())?;
    let delegators_given = if too_deep { &[][..] } else { request.delegators() };
    for d in delegators_given {
        limits.check_uid("delegator", d)?;
    }
    if request.entities().len() > limits.max_request_entities {
        return Err(Error::limit(format!(
            "{} request entities, more than the limit of {}",
            request.entities().len(),
            limits.max_request_entities
        )));
    }
    let mut budget = limits.max_request_bytes;
    limits.check_json("context", request.context(), &mut budget)?;
    for e in request.entities() {
        limits.check_json("a request entity", e, &mut budget)?;
    }
    let (principal, principal_text) = snap.parse_uid_text(request.principal(), "principal")?;
    let (resource, resource_text) = snap.parse_uid_text(request.resource(), "resource")?;
    let action = resolve_action(snap, request.action())?;
    let info = snap.actions.get(&action);
    let action_text = info.map_or_else(|| action.to_string(), |i| i.text.clone());
    let action = match info {
        Some(i) => crate::uid::thread_uid(&i.text, &action),
        None => action,
    };
    let (delegators, delegator_texts): (Vec<_>, Vec<_>) = delegators_given
        .iter()
        .map(|d| snap.parse_uid_text(d, "delegator"))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let empty;
    let context_json = match request.context() {
        serde_json::Value::Null => {
            empty = serde_json::Value::Object(serde_json::Map::new());
            &empty
        }
        v @ serde_json::Value::Object(_) => v,
        _ => return Err(Error::invalid_request("context must be a JSON object")),
    };
    let mut context_refs = Vec::new();
    crate::snapshot::collect_refs(context_json, &mut context_refs);
    let schema_action = snap.schema.as_ref().filter(|_| info.is_some()).map(|s| (s, &action));
    let context = if with_context {
        parse_context(snap, &action, &action_text, context_json, schema_action)?
    } else {
        Context::empty()
    };
    if snap.validation != Validation::Off {
        if let Some(info) = info {
            if let Some(allowed) = &info.resources {
                if !allowed.contains(resource.type_name()) {
                    return Err(Error::invalid_request(format!(
                        "resource type `{}` is not valid for action `{action}`",
                        resource.type_name()
                    )));
                }
            }
        }
        if snap.bad_enum_id(&resource) {
            return Err(enum_error(&resource));
        }
    }
    let entities = request_entities(snap, request, info, config.trust_request_entities || request.entities_trusted())?;
    Ok(Prepared {
        info,
        principal,
        action,
        resource,
        delegators,
        principal_text,
        action_text,
        resource_text,
        delegator_texts,
        too_deep,
        context,
        context_refs,
        entities,
    })
}

pub(crate) fn enum_error(uid: &EntityUid) -> Error {
    Error::invalid_request(format!(
        "entity `{uid}` is of an enumerated entity type, but `{}` is not one of its declared ids",
        user_text(uid.id().unescaped())
    ))
}

/// A context of plain JSON (strings, integers, booleans, arrays, objects; no `__entity`,
/// `__extn` or `{type, id}` escapes) built directly, as Cedar's untyped JSON parse would build
/// it; `None` for anything else.
#[cfg(test)]
fn plain_context(json: &serde_json::Value) -> Option<Context> {
    plain_context_shape(json, None)
}

/// Cedar's untyped parse of a plain context (no entity or extension escapes: their ids and
/// typing matter to validation), built directly (`crate::plain`). With `shape`, also writes the
/// value's type signature there: Cedar's check of such a context depends only on it.
fn plain_context_shape(json: &serde_json::Value, shape: Option<&mut String>) -> Option<Context> {
    use cedar_policy_core::ast::{Context as CoreContext, Value, ValueKind};
    let fields = crate::plain::Plain { types: None, sig: shape }.fields(json.as_object()?)?;
    let record = Value::record(fields, None);
    let ValueKind::Record(attrs) = record.value_kind() else { return None };
    Some(Context::from(CoreContext::Value(Arc::clone(attrs))))
}

/// Context shapes remembered per snapshot as valid for their action.
const MAX_REMEMBERED_SHAPES: usize = 4096;
/// Longer signatures (large contexts) are checked by Cedar every time.
const MAX_SHAPE_BYTES: usize = 512;

/// The request context, typed by the schema. With validation on, a context that parses
/// untyped and then validates against the action's context type is the same value the typed
/// parse gives (typing only changes strings into extension values or entity references, which
/// the untyped value would fail validation for), and the untyped parse is much cheaper; any
/// other context takes the typed parse. Cedar's validation of an untyped plain context
/// depends only on its type signature (entity references carry their id in it, since an
/// enumerated type checks ids; an extension value's constructor fixes its type), so a
/// signature that validated once for an action is remembered for the snapshot.
fn parse_context(
    snap: &Snapshot,
    action: &EntityUid,
    action_text: &str,
    json: &serde_json::Value,
    schema_action: Option<(&cedar_policy::Schema, &EntityUid)>,
) -> Result<Context> {
    let invalid = |e: &dyn std::fmt::Display| {
        // name the attribute and the type expected where ambit can; Cedar's words otherwise
        let why = schema_action
            .and_then(|(schema, a)| crate::mismatch::context(schema, a, json))
            .unwrap_or_else(|| cedar_text(e));
        Error::invalid_request(format!("context does not fit action `{action}`: {why}"))
    };
    let validating = snap.validation != Validation::Off;
    if let (true, Some((schema, a))) = (validating, schema_action) {
        let mut shape = String::with_capacity(action_text.len() + 32);
        shape.push_str(action_text);
        shape.push('|');
        if let Some(untyped) = plain_context_shape(json, Some(&mut shape)) {
            let shapes = snap.context_shapes.pin();
            if shapes.contains(&shape) {
                return Ok(untyped);
            }
            if untyped.validate(schema, a).is_ok() {
                if shapes.len() < MAX_REMEMBERED_SHAPES && shape.len() <= MAX_SHAPE_BYTES {
                    shapes.insert(shape);
                }
                return Ok(untyped);
            }
        }
    }
    let typed = Context::from_json_value(json.clone(), schema_action).map_err(|e| invalid(&e))?;
    if let (true, Some((schema, a))) = (validating, schema_action) {
        typed.validate(schema, a).map_err(|e| invalid(&e))?;
    }
    Ok(typed)
}

pub(crate) fn resolve_action(snap: &Snapshot, text: &str) -> Result<EntityUid> {
    if text.as_bytes().windows(2).any(|w| w == b"::") {
        let uid = snap.parse_uid(text, "action")?;
        if snap.validation != Validation::Off && !snap.actions.contains_key(&uid) {
            return Err(Error::invalid_request(format!("unknown action `{}`", user_text(text))));
        }
        return Ok(uid);
    }
    match snap.action_names.get(text) {
        Some(Some(uid)) => Ok(uid.clone()),
        Some(None) => Err(Error::invalid_request(format!(
            "action name `{}` is ambiguous across namespaces: give the full uid",
            user_text(text)
        ))),
        None if snap.actions.is_empty() => {
            let ty: EntityTypeName = "Action".parse().map_err(|_| Error::internal("cannot name `Action`"))?;
            Ok(EntityUid::from_type_name_and_id(ty, cedar_policy::EntityId::new(text)))
        }
        None => Err(Error::invalid_request(format!("unknown action `{}`", user_text(text)))),
    }
}

/// Per-request entities, checked: no agents, nothing that redefines a static entity, and
/// (unless trusted) no entity that joins the static hierarchy or could act as a principal.
fn request_entities(
    snap: &Snapshot,
    request: &Request,
    info: Option<&ActionInfo>,
    trusted: bool,
) -> Result<Vec<(Entity, Vec<EntityUid>)>> {
    if request.entities().is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(request.entities().len());
    for json in request.entities() {
        let entity = Entity::from_json_value(json.clone(), snap.schema.as_ref())
            .map_err(|e| Error::entities(format!("request entity: {}", crate::error::error_chain(&e)), None))?;
        let uid = entity.uid();
        if uid.type_name() == &snap.agent_type {
            // static agents are static entities (refused below as redefinitions)
            return Err(Error::entities(
                format!("request entity `{uid}` is an agent: agents come from the registry only"),
                None,
            ));
        }
        if snap.entities.get(&uid).is_some() {
            return Err(Error::entities(format!("request entity `{uid}` redefines a static entity"), None));
        }
        let parents: Vec<EntityUid> = entity.as_ref().parents().map(|p| EntityUid::from(p.clone())).collect();
        if !trusted {
            if let Some(parent) =
                parents.iter().find(|p| p.type_name() == &snap.agent_type || snap.entities.get(p).is_some())
            {
                return Err(Error::entities(
                    format!(
                        "request entity `{uid}` names `{parent}` as a parent: request entities may not join static \
                         entities or agents unless the authorizer trusts request entities"
                    ),
                    None,
                ));
            }
            if info.and_then(|i| i.principals.as_ref()).is_some_and(|types| types.contains(uid.type_name())) {
                return Err(Error::entities(
                    format!(
                        "request entity `{uid}` is of a principal type of the action: principals come from the \
                         static entities or the registry unless the authorizer trusts request entities"
                    ),
                    None,
                ));
            }
        }
        let mut refs = parents;
        if let Some(attrs) = json.get("attrs") {
            crate::snapshot::collect_refs(attrs, &mut refs);
        }
        out.push((entity, refs));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{parse_context, plain_context};
    use crate::snapshot::Snapshot;
    use cedar_policy::{Context, EntityUid};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    const SCHEMA: &str = r#"
        entity User; entity Color enum ["red", "blue"];
        type Limits = { cap: Long, note?: String };
        action pay appliesTo { principal: User, resource: User, context: { amount: Long, purpose?: String, urgent: Bool, rate?: decimal } };
        action tag appliesTo { principal: User, resource: User, context: { tags: Set<String>, limits?: Limits, color?: Color } };
        action route appliesTo { principal: User, resource: User, context: { ip: ipaddr, owner?: User } };
        action none appliesTo { principal: User, resource: User };
    "#;

    fn snapshot() -> &'static Snapshot {
        static SNAP: OnceLock<Snapshot> = OnceLock::new();
        SNAP.get_or_init(|| crate::snapshot::test_snapshot(SCHEMA, None, crate::config::Validation::Strict))
    }

    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(serde_json::Value::from),
            any::<bool>().prop_map(serde_json::Value::from),
            "\\PC{0,8}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
            any::<f64>().prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-z_]{1,6}|type|__entity|__extn|id", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Contexts near each action's declared type: every attribute from a small pool of
    /// right and wrong values (or absent), so valid and invalid shapes both come up often.
    fn context(action: &str) -> impl Strategy<Value = serde_json::Value> {
        use serde_json::json;
        let keys: &[&str] = match action {
            "pay" => &["amount", "purpose", "urgent", "rate", "other"],
            "tag" => &["tags", "limits", "color", "other"],
            "route" => &["ip", "owner", "other"],
            _ => &["other", "amount"],
        };
        let pools: Vec<(&str, Vec<serde_json::Value>)> = vec![
            ("amount", vec![json!(1), json!(-2), json!("1"), json!(true)]),
            ("purpose", vec![json!("x"), json!(3)]),
            ("urgent", vec![json!(true), json!(false), json!("yes")]),
            ("tags", vec![json!([]), json!(["a"]), json!(["a", 1]), json!("a")]),
            ("limits", vec![json!({"cap": 1}), json!({"cap": 1, "note": "n"}), json!({"cap": "1"}), json!({"x": 1})]),
            (
                "color",
                vec![
                    json!({"__entity": {"type": "Color", "id": "red"}}),
                    json!({"__entity": {"type": "Color", "id": "green"}}),
                    json!("red"),
                ],
            ),
            (
                "ip",
                vec![
                    json!("10.0.0.1"),
                    json!({"__extn": {"fn": "ip", "arg": "10.0.0.1"}}),
                    json!({"__extn": {"fn": "ip", "arg": "10.0.0.0/8"}}),
                    json!({"__extn": {"fn": "ip", "arg": "not an ip"}}),
                    json!({"__extn": {"fn": "decimal", "arg": "1.5"}}),
                    json!({"__extn": {"fn": "isInRange", "arg": "10.0.0.1"}}),
                    json!(5),
                ],
            ),
            (
                "rate",
                vec![
                    json!({"__extn": {"fn": "decimal", "arg": "1.25"}}),
                    json!({"__extn": {"fn": "decimal", "arg": "1.2.5"}}),
                    json!({"__extn": {"fn": "ip", "arg": "10.0.0.1"}}),
                    json!({"__extn": {"fn": "decimal", "arg": "1.25", "x": 1}}),
                    json!("1.25"),
                ],
            ),
            ("owner", vec![json!({"__entity": {"type": "User", "id": "u"}}), json!("User::\"u\"")]),
            ("other", vec![json!(1)]),
        ];
        let pools: Vec<_> = pools.into_iter().filter(|(k, _)| keys.contains(k)).collect();
        prop::collection::vec(0usize..8, pools.len()).prop_map(move |picks| {
            let mut m = serde_json::Map::new();
            for ((key, pool), pick) in pools.iter().zip(picks) {
                // more often absent than not for the extra key; otherwise about half present
                let present = if *key == "other" { pick == 0 } else { pick < pool.len() };
                if present {
                    m.insert((*key).to_owned(), pool[pick % pool.len()].clone());
                }
            }
            serde_json::Value::Object(m)
        })
    }

    proptest! {
        /// With the shape memo warm or cold, a context is accepted exactly when Cedar's typed
        /// parse and validation accept it, and it is the same value.
        #[test]
        fn remembered_context_shapes_decide_as_cedar_validates(
            (action, ctx) in prop::sample::select(vec!["pay", "tag", "route", "none"]).prop_flat_map(|a| (Just(a), context(a))),
        ) {
            let snap = snapshot();
            let schema = snap.schema.as_ref().unwrap();
            let uid: EntityUid = format!("Action::\"{action}\"").parse().unwrap();
            let text = uid.to_string();
            let reference = Context::from_json_value(ctx.clone(), Some((schema, &uid)))
                .ok()
                .filter(|c| c.validate(schema, &uid).is_ok());
            for _ in 0..2 {
                let ours = parse_context(snap, &uid, &text, &ctx, Some((schema, &uid))).ok();
                prop_assert_eq!(&ours, &reference, "{}: {}", action, ctx);
            }
        }

        /// Extension escapes of one-string constructors build directly, as Cedar's untyped
        /// parse does; a bad argument or another function declines (Cedar words the error).
        #[test]
        fn plain_extension_values_are_cedars_untyped_parse(
            f in prop::sample::select(vec!["ip", "decimal", "datetime", "duration", "isInRange", "lessThan", "nope"]),
            arg in prop::sample::select(vec!["10.0.0.1", "::1", "10.0.0.0/8", "1.25", "-3.0001", "2024-01-01", "1h30m", "x", ""]),
        ) {
            let v = serde_json::json!({"a": {"__extn": {"fn": f, "arg": arg}}, "b": [{"__extn": {"fn": f, "arg": arg}}]});
            let cedar = Context::from_json_value(v.clone(), None).ok();
            let ours = plain_context(&v);
            if let Some(ours) = &ours {
                prop_assert_eq!(Some(ours), cedar.as_ref(), "{}", v);
            }
            // a constructor with an argument it accepts always takes the direct build
            if ["ip", "decimal", "datetime", "duration"].contains(&f) && cedar.is_some() {
                prop_assert!(ours.is_some(), "{}", v);
            }
        }

        /// The direct build is exactly Cedar's untyped JSON parse, or declines.
        #[test]
        fn plain_context_is_cedars_untyped_parse(fields in prop::collection::btree_map("[a-z]{1,4}", json(), 0..4)) {
            let v = serde_json::Value::Object(fields.into_iter().collect());
            if let Some(ours) = plain_context(&v) {
                let cedar = Context::from_json_value(v.clone(), None);
                prop_assert_eq!(Some(ours), cedar.ok(), "{}", v);
            }
        }
    }
}
