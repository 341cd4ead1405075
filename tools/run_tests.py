#!/usr/bin/env python3
"""Runs `cargo test --workspace`'s tests, the emulator ones side by side.

`cargo test` runs test binaries one after another. Those that start a local stack (moto, the
Lambda gateway, cargo lambda watch) spend most of their time waiting on the state machines'
Waits and retry backoffs, not on the CPU, and each starts a stack of its own on free loopback
ports, so they can run at the same time. This builds every test binary with cargo, runs the
quick in-process ones first, one after another, then the emulator ones and the fuzzing
(CPU-bound, so it fills the emulator ones' waits) `--jobs` at a time, longest first, and
prints each run's output as a block when it ends, then a summary with the number of tests
passed. A crate's single integration-test binary (`tests/it/main.rs`) is run once per
module, each in a process of its own, as the separate binaries were. Exits 1 if any run
failed (all of them run, as with --no-fail-fast); the doc tests run last.

Usage: run_tests.py [--jobs N]   (from the workspace root; make test runs it)
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Test binaries that start a local stack or a moto server, the fuzzing, and the overlap
# windows (in-process, but mostly waiting out windows of seconds), longest first (as a fresh
# clone's make test measured them on 2 cores: 153, 85, 70, 57, 49, 43, 42, 37, 26 and 20 s;
# delivery, new, about 60 s),
# so that no long one starts last.
PARALLEL = ["adversaries", "end_to_end", "window", "delivery", "deploy", "commands", "fuzz", "faults", "organization", "retire", "functions"]


def test_binaries() -> list[dict]:
    out = subprocess.run(
        ["cargo", "test", "--workspace", "--no-run", "--message-format=json"],
        cwd=ROOT, stdout=subprocess.PIPE, check=True, text=True,
    ).stdout
    binaries = []
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
            continue
        if not msg.get("profile", {}).get("test"):
            continue
        target = msg["target"]
        binaries.append({
            "name": target["name"],
            "kind": target["kind"][0],
            "package_dir": str(Path(msg["manifest_path"]).parent),
            "executable": msg["executable"],
        })
    return binaries


def modules(binary: dict) -> list[dict]:
    """A crate's one integration-test binary (`tests/it/main.rs`) as one run per module:
    its tests listed, grouped by their first path segment, each group run by exact name
    (a filter `policies::` would also match `member_policies::…`)."""
    listed = subprocess.run(
        [binary["executable"], "--list", "--format", "terse"], cwd=binary["package_dir"],
        stdout=subprocess.PIPE, check=True, text=True,
    ).stdout
    groups: dict[str, list[str]] = {}
    for line in listed.splitlines():
        name, _, kind = line.rpartition(": ")
        if kind == "test" and "::" in name:
            groups.setdefault(name.split("::", 1)[0], []).append(name)
    return [dict(binary, name=module, module=True, args=["--exact", *names])
            for module, names in sorted(groups.items())]


def run(binary: dict) -> tuple[dict, int, str, float]:
    started = time.monotonic()
    env = dict(os.environ, CARGO_MANIFEST_DIR=binary["package_dir"])
    proc = subprocess.run(
        [binary["executable"], *binary.get("args", [])], cwd=binary["package_dir"], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    return binary, proc.returncode, proc.stdout, time.monotonic() - started


def label(binary: dict) -> str:
    package = Path(binary["package_dir"]).name
    name = f"it::{binary['name']}" if binary.get("module") else binary["name"]
    return f"{package}/{binary['kind']}:{name}"


def passed(output: str) -> int:
    """The tests a run's libtest summaries count as passed."""
    return sum(int(m) for m in re.findall(r"^test result: \w+\. (\d+) passed", output, re.M))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=3, help="emulator binaries (and fuzz) at once")
    args = parser.parse_args()

    binaries = []
    for binary in test_binaries():
        binaries += modules(binary) if binary["kind"] == "test" and binary["name"] == "it" else [binary]
    parallel = sorted(
        (b for b in binaries if b["kind"] == "test" and b["name"] in PARALLEL),
        key=lambda b: PARALLEL.index(b["name"]),
    )
    in_process = [b for b in binaries if b not in parallel]
    results = []

    def report(result):
        binary, code, output, seconds = result
        results.append(result)
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"\n===== {label(binary)}: {status} in {seconds:.1f} s", flush=True)
        print(output.rstrip(), flush=True)

    t0 = time.monotonic()
    for binary in in_process:
        report(run(binary))
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for result in pool.map(run, parallel):
            report(result)
    doc = subprocess.run(["cargo", "test", "--workspace", "--doc", "--quiet"], cwd=ROOT)

    print(f"\n===== summary ({time.monotonic() - t0:.0f} s in all; {', '.join(PARALLEL)} {args.jobs} at a time)")
    failed = 0
    for binary, code, _, seconds in sorted(results, key=lambda r: -r[3]):
        if seconds >= 1 or code != 0:
            print(f"  {'ok    ' if code == 0 else 'FAILED'} {seconds:7.1f} s  {label(binary)}")
        failed += code != 0
    failed += doc.returncode != 0
    print(f"  doc tests: {'ok' if doc.returncode == 0 else 'FAILED'}")
    print(f"test runs: {len(results) - (failed - (doc.returncode != 0))} passed, "
          f"{failed - (doc.returncode != 0)} failed; tests passed: {sum(passed(r[2]) for r in results)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
