#!/usr/bin/env python3
"""Fails when Cargo.toml's rust-version is not what the locked dependencies
need: the highest rust-version among them (or higher). Keeps the declared
minimum Rust honest as dependencies move."""
import json
import subprocess
import sys


def version(text):
    return tuple(int(x) for x in (text.split(".") + ["0", "0"])[:3])


def main():
    meta = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"],
        check=True, capture_output=True, text=True).stdout)
    root = next(p for p in meta["packages"] if p["id"] in meta["workspace_members"])
    declared = root.get("rust_version")
    needed = max(
        ((version(p["rust_version"]), f'{p["name"]} {p["version"]}')
         for p in meta["packages"] if p.get("rust_version") and p["id"] != root["id"]),
        default=((0, 0, 0), "none"))
    if not declared or version(declared) < needed[0]:
        print(f"Cargo.toml declares rust-version {declared}, but {needed[1]} needs "
              f"{'.'.join(map(str, needed[0]))}", file=sys.stderr)
        return 1
    print(f"rust-version {declared} covers every locked dependency (highest: {needed[1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
