#!/usr/bin/env python3
"""snap/snapcraft.yaml + Cargo.toml -> meta/snap.yaml, and checks of both.

scripts/build-snap.sh packs a snap without snapcraft; this writes the meta/snap.yaml that
snapcraft would, from the same snapcraft.yaml, so the two never disagree. The version comes from
Cargo.toml, as snapcraft's `craftctl set version` does in the part's override-pull.

    snap-meta.py generate snap/snapcraft.yaml Cargo.toml ARCH > prime/meta/snap.yaml
    snap-meta.py check-project snap/snapcraft.yaml Cargo.toml
    snap-meta.py check-meta unpacked/meta/snap.yaml snap/snapcraft.yaml Cargo.toml

Needs PyYAML (python3-yaml, or the venv scripts/test.sh creates); tomllib is in Python >= 3.11.
"""
import sys

try:
    import yaml
except ImportError:
    sys.exit("error: PyYAML is missing: apt-get install python3-yaml (or run scripts/test.sh, whose venv has it)")
try:
    import tomllib
except ImportError:
    sys.exit("error: Python >= 3.11 is needed (tomllib)")

# snap.yaml app keys snapcraft copies from snapcraft.yaml apps (https://snapcraft.io/docs/snapcraft-yaml-schema).
APP_KEYS = (
    "command", "command-chain", "environment", "plugs", "slots", "daemon", "completer",
    "aliases", "autostart", "desktop", "install-mode", "refresh-mode", "stop-mode",
    "restart-condition", "timer", "sockets", "common-id", "before", "after",
)
CONFINEMENTS = ("strict", "classic", "devmode")


def _block_strings(dumper, data):
    """Multi-line strings (the description) as YAML block literals, as snapcraft writes them."""
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


yaml.SafeDumper.add_representer(str, _block_strings)


def cargo_version(cargo_toml):
    with open(cargo_toml, "rb") as f:
        return tomllib.load(f)["package"]["version"]


def load(path):
    with open(path) as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict):
        sys.exit(f"error: {path} is not a YAML mapping")
    return doc


def check_project(project, cargo_toml):
    """The fields snapcraft requires, and our own invariants. Returns a list of problems."""
    problems = []
    for key in ("name", "base", "summary", "description", "confinement", "grade", "parts", "apps"):
        if not project.get(key):
            problems.append(f"snapcraft.yaml: `{key}` is missing or empty")
    if "version" not in project and "adopt-info" not in project:
        problems.append("snapcraft.yaml: neither `version` nor `adopt-info` is set")
    if len(str(project.get("summary", ""))) > 78:
        problems.append("snapcraft.yaml: `summary` is longer than 78 characters")
    if project.get("confinement") not in CONFINEMENTS:
        problems.append(f"snapcraft.yaml: `confinement` must be one of {', '.join(CONFINEMENTS)}")
    if project.get("grade") not in ("stable", "devel"):
        problems.append("snapcraft.yaml: `grade` must be stable or devel")
    parts = project.get("parts") or {}
    for name, part in parts.items():
        if not isinstance(part, dict) or "plugin" not in part:
            problems.append(f"snapcraft.yaml: part `{name}` has no `plugin`")
    adopt = project.get("adopt-info")
    if adopt is not None:
        part = parts.get(adopt)
        if part is None:
            problems.append(f"snapcraft.yaml: `adopt-info` names part `{adopt}`, which does not exist")
        elif "craftctl set version" not in "".join(str(part.get(k, "")) for k in ("override-pull", "override-build")):
            problems.append(f"snapcraft.yaml: part `{adopt}` does not `craftctl set version`")
    elif str(project.get("version")) != cargo_version(cargo_toml):
        problems.append("snapcraft.yaml: `version` differs from Cargo.toml's")
    for name, app in (project.get("apps") or {}).items():
        if not isinstance(app, dict) or not app.get("command"):
            problems.append(f"snapcraft.yaml: app `{name}` has no `command`")
            continue
        env = app.get("environment") or {}
        if env.get("CADVISOR_SETUP_SNAP_CONFINEMENT") != project.get("confinement"):
            problems.append(
                f"snapcraft.yaml: app `{name}` must set CADVISOR_SETUP_SNAP_CONFINEMENT to the confinement"
            )
    return problems


def generate(project, cargo_toml, arch):
    meta = {
        "name": project["name"],
        "version": cargo_version(cargo_toml),
        "summary": project["summary"],
        "description": project["description"],
        "base": project["base"],
        "confinement": project["confinement"],
        "grade": project["grade"],
        "architectures": [arch],
        "apps": {
            name: {k: app[k] for k in APP_KEYS if k in app}
            for name, app in project["apps"].items()
        },
    }
    if "license" in project:
        meta["license"] = project["license"]
    return meta


def check_meta(meta, project, cargo_toml):
    problems = []
    want = {
        "name": project.get("name"),
        "version": cargo_version(cargo_toml),
        "confinement": project.get("confinement"),
        "base": project.get("base"),
        "grade": project.get("grade"),
    }
    for key, value in want.items():
        if meta.get(key) != value:
            problems.append(f"meta/snap.yaml: `{key}` is {meta.get(key)!r}, expected {value!r}")
    apps = meta.get("apps") or {}
    for name, app in (project.get("apps") or {}).items():
        if name not in apps:
            problems.append(f"meta/snap.yaml: app `{name}` is missing")
        elif apps[name].get("command") != app.get("command"):
            problems.append(f"meta/snap.yaml: app `{name}` command is {apps[name].get('command')!r}")
        elif apps[name].get("environment") != app.get("environment"):
            problems.append(f"meta/snap.yaml: app `{name}` environment differs from snapcraft.yaml")
    return problems


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    mode = argv[1]
    if mode == "generate" and len(argv) == 5:
        project = load(argv[2])
        problems = check_project(project, argv[3])
        if problems:
            sys.exit("\n".join(f"error: {p}" for p in problems))
        yaml.safe_dump(generate(project, argv[3], argv[4]), sys.stdout, sort_keys=False, width=100)
    elif mode == "check-project" and len(argv) == 4:
        problems = check_project(load(argv[2]), argv[3])
        if problems:
            sys.exit("\n".join(f"error: {p}" for p in problems))
        print(f"ok: {argv[2]} has the fields snapcraft requires")
    elif mode == "check-meta" and len(argv) == 5:
        meta, project = load(argv[2]), load(argv[3])
        problems = check_meta(meta, project, argv[4])
        if problems:
            sys.exit("\n".join(f"error: {p}" for p in problems))
        print(f"ok: {argv[2]}: {meta['name']} {meta['version']}, {meta['confinement']}, apps {', '.join(meta['apps'])}")
    elif mode == "version" and len(argv) == 3:
        print(cargo_version(argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
