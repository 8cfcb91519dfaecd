#!/usr/bin/python3
"""Every command the README shows is run here, so the README never goes stale.

Code blocks of README.md, in order:
  ```sh       each line is run (bash, in a scratch folder holding a link to examples/),
              with the build folder first on PATH; `make ...` and `export PATH=...` lines
              are skipped: they are what runs this suite and what this script does itself
  ```python   run with /usr/bin/python3 in the same folder; must exit 0
  ```text     when preceded by `<!-- readme-test: output of CMD -->`, must equal CMD's
              stdout exactly; by `<!-- readme-test: lines of CMD -->`, each of its lines
              must be a line of CMD's stdout (CMD must have been run by an sh block)
  any block   preceded by `<!-- readme-test: same as FILE -->` must equal that file
Set README_TEST_SKIP to a regular expression to skip long commands by hand.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLOCK = re.compile(r"(?:<!-- readme-test: (output of|lines of|same as) (.+?) -->\n)?```(\w*)\n(.*?)```", re.S)


def blocks(text):
    for m in BLOCK.finditer(text):
        yield m.group(3), m.group(4), m.group(1), m.group(2)


def run_sh(line, cwd, env, outputs):
    proc = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)
    if proc.returncode != 0:
        print(f"FAIL: `{line}` exited {proc.returncode}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        return False
    outputs[line] = proc.stdout
    print(f"ok: {line}")
    return True


def check_output(kind, cmd, body, outputs):
    if cmd not in outputs:
        print(f"FAIL: the README shows output of `{cmd}`, which no sh block ran before it")
        return False
    got = outputs[cmd]
    if kind == "output of":
        ok = got.rstrip("\n") == body.rstrip("\n")
    else:
        lines = set(got.splitlines())
        ok = all(line in lines for line in body.rstrip("\n").splitlines())
    if not ok:
        print(f"FAIL: output of `{cmd}` differs from the README's:\n--- README\n{body}--- actual\n{got}")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnc", required=True)
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(os.path.abspath(args.nnc)) + os.pathsep + env["PATH"]
    skip = os.environ.get("README_TEST_SKIP")
    outputs, failed, ran = {}, 0, 0
    with tempfile.TemporaryDirectory(prefix="nnc-readme-") as tmp:
        os.symlink(os.path.join(ROOT, "examples"), os.path.join(tmp, "examples"))
        for lang, body, kind, cmd in blocks(text):
            if kind == "same as":
                ran += 1
                with open(os.path.join(ROOT, cmd), encoding="utf-8") as f:
                    same = f.read() == body
                print(("ok: " if same else "FAIL: the README's copy differs from ") + cmd)
                failed += not same
            elif lang == "sh":
                for line in body.splitlines():
                    line = line.split(" #")[0].strip()
                    if not line or line.startswith(("make ", "export PATH=")):
                        continue
                    if skip and re.search(skip, line):
                        print(f"skipped by README_TEST_SKIP: {line}")
                        continue
                    ran += 1
                    failed += not run_sh(line, tmp, env, outputs)
            elif lang == "python":
                ran += 1
                proc = subprocess.run(["/usr/bin/python3", "-c", body], cwd=tmp,
                                      capture_output=True, text=True, timeout=300)
                if proc.returncode != 0:
                    print(f"FAIL: python block exited {proc.returncode}\n{proc.stderr}")
                    failed += 1
                else:
                    outputs["python"] = proc.stdout
                    print("ok: python block")
            elif kind and skip and re.search(skip, cmd):
                print(f"skipped by README_TEST_SKIP: output of {cmd}")
            elif kind:
                ran += 1
                failed += not check_output(kind, cmd, body, outputs)
    print(f"{ran - failed} passed, {failed} failed")
    return 1 if failed or not ran else 0


if __name__ == "__main__":
    sys.exit(main())
