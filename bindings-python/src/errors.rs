//! One exception class per error family, all under `ambit.AmbitError`, each instance with
//! `.code` equal to the Rust code string.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(ambit, AmbitError, PyException, "Base of every ambit error; `.code` is the stable code.");
create_exception!(ambit, PolicyError, AmbitError, "Policy text: parse errors, duplicate ids, validation.");
create_exception!(ambit, LinkError, AmbitError, "A template link cannot be made.");
create_exception!(ambit, SchemaError, AmbitError, "The schema does not parse or is inconsistent.");
create_exception!(ambit, EntitiesError, AmbitError, "Entities are malformed or do not fit the schema.");
create_exception!(ambit, SourceError, AmbitError, "A file or directory cannot be read, or holds no policies.");
create_exception!(ambit, InvalidRequestError, AmbitError, "A request cannot be evaluated.");
create_exception!(ambit, InvalidDelegationError, AmbitError, "A mint or revocation breaks the delegation rules.");
create_exception!(ambit, ReloadError, AmbitError, "A reload failed; the last good policies keep serving.");
create_exception!(ambit, LimitError, AmbitError, "An input exceeds a configured limit.");
create_exception!(ambit, AuditError, AmbitError, "An audit sink or log failed.");
create_exception!(ambit, InternalError, AmbitError, "An internal surprise; the operation failed closed.");
create_exception!(ambit, ConfigError, AmbitError, "An option is unknown, of the wrong type or out of range.");
create_exception!(
    ambit,
    FleetError,
    AmbitError,
    "The fleet backend (Redis) failed or cannot be followed; nothing changed."
);

/// The one map from `ambit::Error` to a Python exception, `.code` set.
pub fn to_py(e: ambit::Error) -> PyErr {
    use ambit::Error as E;
    let message = e.to_string();
    let err = match &e {
        E::Io(_) | E::EmptySource(_) => SourceError::new_err(message),
        E::PolicyParse(_) | E::DuplicatePolicyId(_) | E::Validation(_) => PolicyError::new_err(message),
        E::Schema(_) => SchemaError::new_err(message),
        E::Link(_) => LinkError::new_err(message),
        E::Entities(_) => EntitiesError::new_err(message),
        E::InvalidRequest(_) => InvalidRequestError::new_err(message),
        E::InvalidDelegation(_) => InvalidDelegationError::new_err(message),
        E::Reload(_) => ReloadError::new_err(message),
        E::Limit(_) => LimitError::new_err(message),
        E::Audit(_) => AuditError::new_err(message),
        E::Config(_) => ConfigError::new_err(message),
        E::Fleet(_) => FleetError::new_err(message),
        // `ambit::Error` is non-exhaustive: a future variant still maps to the base class
        _ => InternalError::new_err(message),
    };
    Python::attach(|py| {
        let value = err.value(py);
        let _ = value.setattr("code", e.code());
        if let Some(loc) = e.location() {
            let _ = value.setattr("file", loc.file());
            let _ = value.setattr("line", loc.line());
            let _ = value.setattr("column", loc.column());
        }
    });
    err
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("AmbitError", py.get_type::<AmbitError>())?;
    m.add("PolicyError", py.get_type::<PolicyError>())?;
    m.add("SchemaError", py.get_type::<SchemaError>())?;
    m.add("LinkError", py.get_type::<LinkError>())?;
    m.add("EntitiesError", py.get_type::<EntitiesError>())?;
    m.add("SourceError", py.get_type::<SourceError>())?;
    m.add("InvalidRequestError", py.get_type::<InvalidRequestError>())?;
    m.add("InvalidDelegationError", py.get_type::<InvalidDelegationError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("FleetError", py.get_type::<FleetError>())?;
    m.add("ReloadError", py.get_type::<ReloadError>())?;
    m.add("LimitError", py.get_type::<LimitError>())?;
    m.add("AuditError", py.get_type::<AuditError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}
