#!/usr/bin/env python3
"""Checks the claims register (docs/claims.md): every promise the documents
make, with the tests that would fail if it broke.

Each register row is a Markdown table row

    | ID | promise | promised in | tests | status |

where `tests` lists `path::function` entries separated by `<br>` or `;`
(a path relative to the repository root, a Rust `fn` or Python `def`
defined in it), and
`status` is one of:

    tested    a named test fails if the promise breaks
    partly    a test exists but does not check the whole promise
    untested  no test yet
    false     the promise is not true today

The check fails if a row names a file or function that does not exist, if
a `tested` row names no test, or if any row is `partly`, `untested` or
`false` (pass --allow-open to only report those). With --listed FILE (the
output of `cargo test --workspace -- --list`; repeat it for test runs with
other features), it also checks that every named Rust function is a test
the harness registered.

Prints the counts per document and per status.
"""
import argparse
import re
import sys
from collections import Counter
from pathlib import Path

STATUSES = ("tested", "partly", "untested", "false")
ROW = re.compile(r"^\|\s*([A-Z]+-\d+)\s*\|(.*)\|\s*$")


def rows(register: Path):
    for n, line in enumerate(register.read_text().splitlines(), 1):
        m = ROW.match(line)
        if not m:
            continue
        cells = [c.strip() for c in m.group(2).split("|")]
        if len(cells) != 4:
            yield n, m.group(1), None, f"expected 5 columns, found {len(cells) + 1}"
            continue
        yield n, m.group(1), cells, None


def tests_of(cell: str):
    return [t.strip().strip("`") for t in re.split(r"<br>|;", cell) if t.strip()]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--register", default="docs/claims.md")
    ap.add_argument(
        "--listed",
        action="append",
        help="output of `cargo test -- --list` (repeat for other feature sets)",
    )
    ap.add_argument("--allow-open", action="store_true")
    args = ap.parse_args()
    root = Path(__file__).resolve().parent.parent
    register = root / args.register
    listed = None
    if args.listed:
        listed = set()
        for listing in args.listed:
            for line in Path(listing).read_text().splitlines():
                if line.endswith(": test"):
                    name = line[: -len(": test")]
                    listed.add(name.rsplit("::", 1)[-1])
    errors, open_rows = [], []
    status_count, doc_count = Counter(), Counter()
    ids = set()
    fn_cache = {}
    for n, rid, cells, problem in rows(register):
        where = f"{args.register}:{n} {rid}"
        if problem:
            errors.append(f"{where}: {problem}")
            continue
        if rid in ids:
            errors.append(f"{where}: duplicate id")
        ids.add(rid)
        promise, source, tests, status = cells
        status = status.strip("* ").lower()
        if status not in STATUSES:
            errors.append(f"{where}: unknown status {status!r}")
            continue
        status_count[status] += 1
        doc_count[source.split()[0] if source else "?"] += 1
        named = tests_of(tests) if tests not in ("", "—", "-") else []
        if status == "tested" and not named:
            errors.append(f"{where}: status tested but no test named")
        for t in named:
            if "::" not in t:
                errors.append(f"{where}: {t!r} is not path::function")
                continue
            path, func = t.split("::", 1)
            file = root / path
            if not file.is_file():
                errors.append(f"{where}: no file {path}")
                continue
            if path not in fn_cache:
                # Rust `fn name`, Python `def name`.
                fn_cache[path] = set(
                    re.findall(r"\b(?:fn|def)\s+([A-Za-z_][A-Za-z0-9_]*)", file.read_text())
                )
            if func not in fn_cache[path]:
                errors.append(f"{where}: no fn {func} in {path}")
            elif listed is not None and path.endswith(".rs") and func not in listed:
                errors.append(f"{where}: {func} is not a test the harness runs")
        if status != "tested":
            open_rows.append(f"{where}: {status}: {promise[:90]}")
    total = sum(status_count.values())
    print(f"claims register: {total} promises; " + ", ".join(
        f"{status_count[s]} {s}" for s in STATUSES))
    for doc, n in sorted(doc_count.items()):
        print(f"  {doc}: {n}")
    for e in errors:
        print("ERROR", e)
    for o in open_rows:
        print("OPEN ", o)
    if errors or (open_rows and not args.allow_open):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
