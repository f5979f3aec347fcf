"""ambit: in-process authorization for AI agents.

Cedar policies over agent identities and delegation chains, decided in-process by the Rust
core. See the project README for the model and the decision semantics.
"""

from __future__ import annotations

from ambit._ambit import (
    DENY_CAUSES,
    ERROR_CODES,
    REQUEST_FIELDS,
    Agent,
    AmbitError,
    AuditError,
    Authorizer,
    Decision,
    EntitiesError,
    InternalError,
    ConfigError,
    FleetError,
    InvalidDelegationError,
    InvalidRequestError,
    LimitError,
    LinkError,
    ManualClock,
    IssuerKey,
    PolicyError,
    ReloadError,
    SchemaError,
    SourceError,
    Uid,
    format_uid,
    jwk_thumbprint,
    verify_audit_log,
)
from ambit._guard import AmbitDenied, Denied, guard

import atexit as _atexit

from ambit import _ambit

# flush and close every audit trail before the interpreter shuts down: records still queued
# are written, and the writer never calls back into a finalizing interpreter
_atexit.register(_ambit.close_all)

# a forked child draws its own decision-id seeds (the parent's are copied by the fork)
import os as _os

_os.register_at_fork(after_in_child=_ambit.after_fork)

__all__ = [
    "DENY_CAUSES",
    "ERROR_CODES",
    "REQUEST_FIELDS",
    "Agent",
    "AmbitDenied",
    "AmbitError",
    "AuditError",
    "Authorizer",
    "Decision",
    "Denied",
    "EntitiesError",
    "InternalError",
    "ConfigError",
    "FleetError",
    "InvalidDelegationError",
    "InvalidRequestError",
    "LimitError",
    "LinkError",
    "ManualClock",
    "IssuerKey",
    "PolicyError",
    "ReloadError",
    "SchemaError",
    "SourceError",
    "Uid",
    "format_uid",
    "guard",
    "jwk_thumbprint",
    "verify_audit_log",
]

