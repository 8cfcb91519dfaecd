#!/usr/bin/python3
"""Golden test runner, in the style of LLVM's lit.

A case is tests/<group>/<case>.nn holding a line

    # RUN: nnc --emit=ast %s

and optionally `# EXIT: N` (expected exit status, default 0). The command runs in the
case's folder through sh; `nnc` at the start of a command is the compiler under test,
%s is the case file's name, %t a fresh temporary folder. Its stdout must equal
<case>.out and its stderr <case>.err (an absent file means: nothing).

    golden.py --nnc build/nnc tests/errors/*.nn           check
    golden.py --nnc build/nnc --update tests/errors/x.nn  rewrite the expectations;
                                                           read the diff it prints
"""
import argparse
import difflib
import os
import re
import shlex
import subprocess
import sys
import tempfile


def directives(text):
    run = re.search(r"^(?:#|//) RUN: (.*)$", text, re.M)
    exit_ = re.search(r"^(?:#|//) EXIT: (\d+)\s*$", text, re.M)
    return (run.group(1) if run else None), (int(exit_.group(1)) if exit_ else 0)


def expand(cmd, nnc, case, tmp):
    cmd = re.sub(r"(^|[;&|]\s*)nnc(?=\s)", lambda m: m.group(1) + shlex.quote(nnc), cmd)
    return (cmd.replace("%s", shlex.quote(os.path.basename(case)))
               .replace("%t", shlex.quote(tmp)))


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def show_diff(label, expected, actual):
    sys.stdout.writelines(difflib.unified_diff(
        expected.splitlines(True), actual.splitlines(True),
        "expected " + label, "actual " + label))
    if not actual.endswith("\n"):
        print()


def write_expectation(path, text):
    if text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    elif os.path.exists(path):
        os.remove(path)


def run_case(case, nnc, update):
    with open(case, "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    cmd, want_exit = directives(text)
    if cmd is None:
        print(f"{case}: no RUN line")
        return False
    base = os.path.splitext(case)[0]
    with tempfile.TemporaryDirectory(prefix="nnc-golden-") as tmp:
        proc = subprocess.run(["sh", "-c", expand(cmd, nnc, case, tmp)],
                              cwd=os.path.dirname(os.path.abspath(case)),
                              capture_output=True, timeout=300)
    out = proc.stdout.decode("utf-8", errors="replace")
    err = proc.stderr.decode("utf-8", errors="replace")
    ok = True
    for suffix, actual in ((".out", out), (".err", err)):
        expected = read(base + suffix)
        if expected != actual:
            show_diff(os.path.basename(base) + suffix, expected, actual)
            if update:
                write_expectation(base + suffix, actual)
                print(f"updated {base + suffix}")
            else:
                ok = False
    if proc.returncode != want_exit:
        print(f"{case}: exit status {proc.returncode}, expected {want_exit}"
              + (" (fix the EXIT line by hand)" if update else ""))
        ok = False
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nnc", required=True)
    ap.add_argument("--update", action="store_true")
    ap.add_argument("cases", nargs="+")
    args = ap.parse_args()
    nnc = os.path.abspath(args.nnc)
    failed = [c for c in args.cases if not run_case(c, nnc, args.update)]
    for c in failed:
        print(f"FAIL {c}")
    print(f"{len(args.cases) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
