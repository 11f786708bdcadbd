"""What can be checked of the deployment without a cluster or a Docker engine:

- deploy/Dockerfile: multi-stage, a locked release build of the binary with a Rust that can
  compile the lock file, a slim runtime with the libraries it links, a numeric non-root user,
  `coffer` as the entrypoint; and hadolint's rules;
- every coffer.toml the Kustomize base and overlays ship is accepted by the real binary
  (`coffer migrate --config …` loads and validates the whole file, unknown keys refused);
- the backup scripts pass shellcheck.

The manifests themselves are parsed and checked by crates/k8s/tests/manifests.rs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy/Dockerfile"
CONFIGS = sorted((ROOT / "deploy/kustomize").rglob("coffer.toml"))


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


def stages(text: str) -> list[dict]:
    """Each stage: its base image, its name, its instructions."""
    args = {}
    result: list[dict] = []
    for word, rest in instructions(text):
        if word == "ARG" and not result:
            name, _, default = rest.partition("=")
            args[name] = default
            continue
        if word == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), rest.split()[0])
            name = rest.split()[2] if len(rest.split()) >= 3 and rest.split()[1].upper() == "AS" else None
            result.append({"image": image, "name": name, "steps": []})
        else:
            result[-1]["steps"].append((word, rest))
    return result


def version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:2])


def required_rust() -> list[tuple[tuple[int, ...], str]]:
    """(rust-version, who) of the workspace and of every package the binary is built from
    on Linux, as Cargo.lock resolves them."""
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["rust-version"]
    out = [(version(workspace), f"the workspace (rust-version {workspace})")]
    if shutil.which("cargo") is None:
        return out
    tree = subprocess.run(
        ["cargo", "tree", "--locked", "--offline", "-p", "coffer", "-e", "normal,build",
         "--target", "x86_64-unknown-linux-gnu", "--prefix", "none"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--offline",
         "--filter-platform", "x86_64-unknown-linux-gnu"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert tree.returncode == 0 and meta.returncode == 0, tree.stderr + meta.stderr
    built = {tuple(line.split()[:2]) for line in tree.stdout.splitlines() if line.strip()}
    for pkg in json.loads(meta.stdout)["packages"]:
        if pkg.get("rust_version") and (pkg["name"], "v" + pkg["version"]) in built:
            out.append((version(pkg["rust_version"]), f"{pkg['name']} {pkg['version']} (rust-version {pkg['rust_version']})"))
    return out


def test_the_dockerfile_builds_a_locked_release_and_runs_it_as_non_root():
    text = DOCKERFILE.read_text()
    all_stages = stages(text)
    assert len(all_stages) >= 2, "a multi-stage build"
    names = [s["name"] for s in all_stages]
    builder = next(s for s in all_stages if s["name"] == "builder")
    runtime = all_stages[-1]
    assert runtime["name"] == "runtime", names

    # The builder: a Rust image that can compile the lock file (no older than the workspace's
    # rust-version, nor than any dependency's), and a locked build.
    m = re.fullmatch(r"rust:(\d+\.\d+)(?:\.\d+)?-bookworm", builder["image"])
    assert m, f"the builder is a rust:<version>-bookworm image, not {builder['image']}"
    builder_rust = version(m.group(1))
    for needed, who in required_rust():
        assert builder_rust >= needed, f"the builder's Rust {m.group(1)} is older than {who} needs"
    runs = [rest for word, rest in builder["steps"] if word == "RUN"]
    builds = [r for r in runs if "cargo build" in r]
    assert len(builds) == 2, "a dependency layer, then the real build"
    for b in builds:
        assert re.search(r"cargo build --release --locked -p coffer\b", b), b
    # The dependency layer comes before the sources are copied in.
    copies = [rest for word, rest in builder["steps"] if word == "COPY"]
    steps = builder["steps"]
    first_build = next(i for i, (w, r) in enumerate(steps) if w == "RUN" and "cargo build" in r)
    sources = next(i for i, (w, r) in enumerate(steps) if w == "COPY" and r.split()[0] == "crates")
    assert first_build < sources, "dependencies are built before the sources are copied"
    assert any("--from=manifests" in c for c in copies), "the dependency layer sees only the manifests"
    # The stub loop assumes every workspace member lives directly under crates/.
    members = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
    assert all(re.fullmatch(r"crates/[^/]+", m) for m in members), members

    # The runtime: the shared libraries the binary links, a numeric non-root user.
    assert runtime["image"] == "debian:bookworm-slim", runtime["image"]
    installs = " ".join(rest for word, rest in runtime["steps"] if word == "RUN")
    for pkg in ("libpq5", "libsqlite3-0", "ca-certificates"):
        assert pkg in installs, f"the runtime installs {pkg}"
    assert "--no-install-recommends" in installs and "rm -rf /var/lib/apt/lists" in installs
    binary = [rest for word, rest in runtime["steps"] if word == "COPY" and "--from=builder" in rest]
    assert binary and binary[0].split()[-1] == "/usr/local/bin/coffer", binary
    users = [rest for word, rest in runtime["steps"] if word == "USER"]
    assert users and re.fullmatch(r"(\d+)(:\d+)?", users[-1]), f"a numeric USER (runAsNonRoot checks it): {users}"
    assert int(users[-1].split(":")[0]) == 65532
    entry = [rest for word, rest in runtime["steps"] if word == "ENTRYPOINT"]
    assert entry == ['["coffer"]'], f"ENTRYPOINT in exec form: {entry}"
    exposed = {p for word, rest in runtime["steps"] if word == "EXPOSE" for p in rest.split()}
    assert {"9000", "9001", "8080", "8443"} <= exposed, exposed
    labels = " ".join(rest for word, rest in runtime["steps"] if word == "LABEL")
    for label in ("title", "source", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{label}=" in labels, f"OCI label {label}"


def test_the_dockerfile_passes_hadolint():
    exe = shutil.which("hadolint")
    if exe is None:
        msg = "hadolint is not installed (pip install -r tests/python/requirements.txt)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    r = subprocess.run([exe, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_dockerignore_keeps_the_context_to_the_sources():
    lines = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert lines[0] == "*", "everything is excluded first"
    for needed in ("!Cargo.toml", "!Cargo.lock", "!crates"):
        assert needed in lines, f".dockerignore lets {needed[1:]} in"


@pytest.mark.parametrize("config", CONFIGS, ids=[str(p.parent.relative_to(ROOT / "deploy/kustomize")) for p in CONFIGS])
def test_each_shipped_configuration_is_accepted_by_the_binary(coffer_bin, config, tmp_path):
    """`coffer migrate` loads and validates the whole file (unknown keys, tiers, [kubernetes])
    before it touches a database: here a throwaway SQLite one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COFFER_")}
    r = subprocess.run(
        [str(coffer_bin), "migrate", "--config", str(config), "--data-dir", str(tmp_path),
         "--database-url", f"sqlite://{tmp_path / 'check.db'}"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert r.returncode == 0, f"coffer refuses {config.relative_to(ROOT)}:\n{r.stderr}"


def test_the_backup_scripts_pass_shellcheck():
    scripts = sorted((ROOT / "deploy/backup").glob("*.sh"))
    assert scripts
    if shutil.which("shellcheck") is None:
        msg = "shellcheck is not installed (apt-get install shellcheck; scripts/test installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    r = subprocess.run(["shellcheck", "--severity=style", *map(str, scripts)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    for s in scripts:
        assert s.read_text().splitlines()[0] == "#!/usr/bin/env bash"
        assert "set -euo pipefail" in s.read_text(), f"{s.name} stops at the first error"
        assert "set -x" not in s.read_text(), f"{s.name} would print secrets"
