"""The Python column of docs/api.md is exactly what the package exports: every name in the
table resolves, and every public name of the module and its classes is in the table."""

import re

import ambit

from conftest import ROOT

CLASSES = ["Authorizer", "Decision", "Agent", "ManualClock", "IssuerKey", "Uid"]


def python_names():
    names = []
    for line in (ROOT / "docs" / "api.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0] not in ("Rust", "---"):
            m = re.fullmatch(r"`([A-Za-z_][A-Za-z_0-9.]*)`", cells[1])
            if m:
                names.append(m.group(1))
    return names


def test_the_table_has_a_python_column():
    assert len(python_names()) > 50


def test_every_name_in_the_table_is_exported():
    for name in python_names():
        obj = ambit
        for part in name.split("."):
            assert hasattr(obj, part), f"docs/api.md names ambit.{name}, which does not exist"
            obj = getattr(obj, part)


def test_every_exported_name_is_in_the_table():
    listed = set(python_names())
    missing = [n for n in ambit.__all__ if n not in listed]
    for cls in CLASSES:
        missing += [f"{cls}.{a}" for a in dir(getattr(ambit, cls)) if not a.startswith("_") and f"{cls}.{a}" not in listed]
    assert missing == [], f"exported but not in docs/api.md: {missing}"


def test_the_guard_deny_has_nodes_name_and_the_old_name_is_the_same_class():
    import ambit

    assert ambit.AmbitDenied.__name__ == "AmbitDenied"
    assert ambit.Denied is ambit.AmbitDenied
    assert issubclass(ambit.AmbitDenied, ambit.AmbitError) and issubclass(ambit.AmbitDenied, PermissionError)
    assert ambit.AmbitDenied().code == "AMBIT_DENIED"
