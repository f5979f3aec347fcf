"""Runs every quickstart of README.md and every example of docs/integrations.md as a user
would paste it: each code block becomes a whole program in a new directory outside the
repository (a new crate depending on `ambit` by path, a .py file run by the venv's Python, a
.js/.mjs file with `ambit` and the pinned framework packages installed next to it) and must
exit 0. Fails if it finds no block of a language it expects.

usage: python tests/quickstarts.py [rust|python|node ...]   (default: all three)
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = [REPO / "README.md", REPO / "docs" / "integrations.md"]
FENCE = re.compile(r"^```(rust|python|js|mjs)\n(.*?)^```$", re.S | re.M)
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")).resolve()


def blocks():
    found = []
    for source in SOURCES:
        full = text = source.read_text()
        if source.name == "README.md":
            # only the quickstart sections of the README are programs
            parts = re.split(r"^## ", text, flags=re.M)
            text = "".join("## " + p for p in parts if p.lower().split("\n", 1)[0].endswith("quickstart"))
        for m in FENCE.finditer(text):
            line = full[: full.index(m.group(0))].count("\n") + 1
            found.append((m.group(1), m.group(2), f"{source.relative_to(REPO)}:{line}"))
    return found


def run(cmd, cwd, **kw):
    print("  $", " ".join(str(c) for c in cmd), flush=True)
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900, **kw)
    if done.returncode != 0:
        sys.stdout.write(done.stdout[-4000:])
        sys.stdout.write(done.stderr[-4000:])
    return done.returncode == 0


def rust(code, where):
    crate = Path(where) / "quickstart"
    (crate / "src").mkdir(parents=True)
    (crate / "src" / "main.rs").write_text(code)
    (crate / "Cargo.toml").write_text(
        "[package]\nname = \"quickstart\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n"
        f"[dependencies]\nambit = {{ path = \"{REPO / 'core'}\" }}\nserde_json = \"1\"\n\n"
        "[workspace]\n\n[profile.dev.package.\"*\"]\nopt-level = 2\n"
    )
    # the repository's lock file, so the crate builds the same versions (and reuses their builds)
    shutil.copy(REPO / "Cargo.lock", crate / "Cargo.lock")
    env = dict(os.environ, CARGO_TARGET_DIR=str(TARGET))
    return run(["cargo", "run", "--quiet", "--offline"], crate, env=env) or run(
        ["cargo", "run", "--quiet"], crate, env=env
    )


def python(code, where):
    path = Path(where) / "quickstart.py"
    path.write_text(code)
    return run([sys.executable, str(path)], where)


def node(code, suffix, where):
    modules = Path(where) / "node_modules"
    modules.mkdir()
    # `npm install /path/to/ambit/bindings-node` links the package; the framework packages are
    # the pinned ones the Node tests use
    (modules / "ambit").symlink_to(REPO / "bindings-node")
    for entry in (REPO / "bindings-node" / "node_modules").iterdir():
        if not (modules / entry.name).exists():
            (modules / entry.name).symlink_to(entry)
    path = Path(where) / f"quickstart.{suffix}"
    path.write_text(code)
    return run(["node", str(path)], where)


def main():
    wanted = set(sys.argv[1:]) or {"rust", "python", "node"}
    found = blocks()
    failed, ran = [], {}
    for lang, code, at in found:
        kind = "node" if lang in ("js", "mjs") else lang
        if kind not in wanted:
            continue
        ran[kind] = ran.get(kind, 0) + 1
        print(f"{at}: {lang} block", flush=True)
        with tempfile.TemporaryDirectory(prefix="ambit-quickstart-") as where:
            ok = rust(code, where) if kind == "rust" else python(code, where) if kind == "python" else node(code, lang, where)
        if not ok:
            failed.append(at)
    for kind in sorted(wanted):
        if not ran.get(kind):
            failed.append(f"no {kind} block found in {', '.join(str(s.relative_to(REPO)) for s in SOURCES)}")
    print(f"quickstarts: {sum(ran.values())} run, {len(failed)} failed")
    for f in failed:
        print("  FAILED:", f)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
