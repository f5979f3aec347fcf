"""ambit: in-process authorization for AI agents.

Cedar policies over agent identities and delegation chains, decided in-process by the Rust
core. See the project README for the model and the decision semantics.
"""

from __future__ import annotations

from dataclasses import dataclass

from ambit._ambit import (
    DENY_CAUSES,
    ERROR_CODES,
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
    format_uid,
    jwk_thumbprint,
    verify_audit_log,
)
from ambit._guard import Denied, guard

import atexit as _atexit

from ambit import _ambit

# flush and close every audit trail before the interpreter shuts down: records still queued
# are written, and the writer never calls back into a finalizing interpreter
_atexit.register(_ambit.close_all)

__all__ = [
    "DENY_CAUSES",
    "ERROR_CODES",
    "Agent",
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


@dataclass(frozen=True)
class Uid:
    """An entity uid; ``str(Uid("User", "alice"))`` is ``'User::"alice"'`` (id escaped by the core)."""

    type: str
    id: str

    def __str__(self) -> str:
        return format_uid(self.type, self.id)
