#!/usr/bin/env python3
"""Writes deploy/k8s/configmap-jobs.yaml from jobs/*.toml (run from anywhere).

    deploy/gen-configmap.py            # rewrite deploy/k8s/configmap-jobs.yaml
    deploy/gen-configmap.py OUT        # write elsewhere (- for stdout)

Each pipeline file becomes one key of the ConfigMap `patron-jobs`, as a YAML literal block
that reads back byte for byte (deploy/validate.sh checks that it still does). Needs only the
Python standard library.
"""
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "deploy" / "k8s" / "configmap-jobs.yaml"


def literal_block(text: str, indent: str) -> str:
    """`|` block for `text`; chomping and indentation indicators chosen so it reads back exactly."""
    if "\r" in text or any(ord(c) < 0x20 and c not in "\n\t" for c in text):
        sys.exit("pipeline files with CR or control characters cannot be a literal block")
    body = text.rstrip("\n")
    trailing = len(text) - len(body)
    chomp = {0: "-", 1: ""}.get(trailing, "+")
    lines = body.split("\n")
    # An indentation indicator is needed when the first line starts with a space.
    first = next((line for line in lines if line.strip()), "")
    header = "|" + (str(len(indent)) if first[:1] == " " else "") + chomp
    # Keep-chomping keeps the trailing empty lines; they are written as empty lines.
    out = [header]
    out += [(indent + line) if line else "" for line in lines]
    out += [""] * (trailing - 1 if trailing > 1 else 0)
    return "\n".join(out)


def main() -> None:
    files = sorted((ROOT / "jobs").glob("*.toml"))
    if not files:
        sys.exit("no jobs/*.toml found")
    parts = [
        "# GENERATED from jobs/*.toml by deploy/gen-configmap.py; do not edit by hand.",
        "# deploy/validate.sh fails when this drifts from jobs/. Mounted at /app/jobs by",
        "# deployment.yaml (PATRON__PIPELINES__DIR), where `patron pipelines apply` reads it.",
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata:",
        "  name: patron-jobs",
        "  labels:",
        "    app.kubernetes.io/name: patron",
        "    app.kubernetes.io/component: pipelines",
        "data:",
    ]
    for f in files:
        text = f.read_bytes().decode("utf-8")
        parts.append(f"  {f.name}: " + literal_block(text, "    "))
    text = "\n".join(parts) + "\n"
    out = sys.argv[1] if len(sys.argv) > 1 else str(OUT)
    if out == "-":
        sys.stdout.write(text)
        return
    pathlib.Path(out).write_text(text, encoding="utf-8")
    print(f"wrote {out} ({len(files)} files)", file=sys.stderr)


if __name__ == "__main__":
    main()
