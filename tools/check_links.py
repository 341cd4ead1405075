#!/usr/bin/env python3
"""Every relative link in the repository's Markdown resolves (run by `make test`).

For each Markdown file git tracks, each inline link or image `[text](target)` and each
reference definition `[name]: target` that is not a URL (`http:`, `https:`, `mailto:`) must
name a file or directory that exists, relative to the linking file; a `#anchor` must be a
heading of the target Markdown file (or of the linking file, for `#anchor` alone), as
GitHub makes anchors of headings: lower case, punctuation other than `-` and `_` dropped,
spaces as `-`, and a repeated heading suffixed `-1`, `-2`. Links inside code spans and
fenced code blocks are not links. Anchors into other files (`#L10` of source) are not
checked.

Usage: check_links.py   (from anywhere). Prints each broken link with its file and line,
then "check_links: N links, N broken"; exits 1 if any is broken.
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def lines_outside_code(text: str):
    """(line number, line) of the lines outside fenced code blocks, code spans blanked."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip()
        marker = re.match(r"(`{3,}|~{3,})", stripped)
        if marker:
            if fence is None:
                fence = marker.group(1)[0] * len(marker.group(1))
                continue
            if stripped.startswith(fence):
                fence = None
                continue
        if fence is not None:
            continue
        yield number, re.sub(r"`[^`]*`", "``", line)


def anchors(path: Path, cache: dict) -> set:
    if path not in cache:
        found, seen = set(), {}
        text = path.read_text(encoding="utf-8")
        for _, line in lines_outside_code(text):
            m = HEADING.match(line)
            if m:
                base = slug(m.group(2))
                count = seen.get(base, 0)
                seen[base] = count + 1
                found.add(base if count == 0 else f"{base}-{count}")
        found |= set(HTML_ANCHOR.findall(text))
        cache[path] = found
    return cache[path]


def main() -> int:
    files = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    cache: dict = {}
    total, broken = 0, []
    for name in files:
        path = ROOT / name
        if not path.is_file():
            continue
        for number, line in lines_outside_code(path.read_text(encoding="utf-8")):
            targets = INLINE.findall(line)
            m = REFERENCE.match(line)
            if m:
                targets.append(m.group(1))
            for target in targets:
                if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                    continue
                total += 1
                file_part, _, anchor = target.partition("#")
                resolved = (path.parent / file_part).resolve() if file_part else path
                if not resolved.exists():
                    broken.append(f"{name}:{number}: {target}: no such file")
                    continue
                if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved, cache):
                    broken.append(f"{name}:{number}: {target}: no heading #{anchor} in "
                                  f"{resolved.relative_to(ROOT)}")
    for line in broken:
        print(line)
    print(f"check_links: {total} links, {len(broken)} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
