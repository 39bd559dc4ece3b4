"""Fail an image build whose virtualenv holds a distribution the lock does not pin exactly.

`pip install -c requirements.lock -r LIST` pins what the lock names but silently takes the newest
release of anything the lock does not name: this makes that a build error.
Usage (inside the venv): python check-pins.py requirements.lock [--unpinned-ok NAME ...]
--unpinned-ok names a known gap in the lock (warned about, not fatal) until the lock pins it.
"""

import argparse
import importlib.metadata as md
import re
import sys
from pathlib import Path


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("lock")
    parser.add_argument("--unpinned-ok", nargs="*", default=[], type=norm)
    args = parser.parse_args()
    pins = {}
    for line in Path(args.lock).read_text(encoding="utf-8").splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[norm(name)] = version.strip()
    bad, gaps, count = [], [], 0
    for dist in md.distributions():
        name = norm(dist.metadata["Name"])
        if name in ("pip", "setuptools", "wheel"):
            continue
        count += 1
        if pins.get(name) == dist.version:
            continue
        found = f"{name}=={dist.version} (lock: {pins.get(name, 'absent')})"
        (gaps if name in args.unpinned_ok and name not in pins else bad).append(found)
    for gap in gaps:
        sys.stderr.write(f"warning: {gap} is not in {args.lock}; add it there\n")
    if bad:
        sys.stderr.write(f"installed but not pinned by {args.lock}: {', '.join(sorted(bad))}\n")
        return 1
    sys.stdout.write(f"{count} distributions, pinned by {args.lock}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
