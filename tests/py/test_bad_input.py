#!/usr/bin/python3
"""Malformed and hostile inputs: nnc must answer each with a located error and exit
status 1 -- never a crash, a hang or a stack overflow. Also checks that large but valid
inputs still compile (the limits do not bite ordinary programs).

    test_bad_input.py --nnc build/nnc [--build build]
"""
import argparse
import os
import random
import re
import subprocess
import sys
import tempfile

N = 100000
MODEL = "model m {\n    input x[2]\n    target t[1]\n    param W[1, 2]\n"
END = "    loss = mse(W @ x, t)\n}\n"


def model_with(line):
    return (MODEL + line + "\n" + END).encode()


def bad_inputs():
    rng = random.Random(7)
    yield "empty", b""
    yield "blank", b"   \n\n\t\n"
    yield "junk", bytes(rng.randrange(256) for _ in range(20000))
    yield "nul_bytes", b"model m {\x00\x00 input x[2]\x00 }\n"
    yield "only_nuls", b"\x00" * 1000
    yield "bad_utf8", "model m { input x[2] }\n".encode() + b"\xff\xfe\xc3\x28 loss = x\n"
    yield "utf8_name", "model m { input x[2]\n y = é\n loss = sum(x) }\n".encode()
    yield "long_name_line", b"model " + b"a" * (2 << 20) + b" {\n"
    yield "long_digits_line", model_with("    y = " + "9" * (2 << 20))
    yield "long_sum_line", model_with("    y = " + "x + " * (N * 5) + "x")
    yield "long_comment_then_junk", b"#" + b"c" * (2 << 20) + b"\n$$$\n"
    yield "nested_parens", model_with("    y = " + "(" * N + "x" + ")" * N)
    yield "unclosed_parens", model_with("    y = " + "(" * N)
    yield "unary_minus", model_with("    y = " + "-" * N + "x")
    yield "power_chain", model_with("    y = x" + " ^ 2" * N)
    yield "nested_calls", model_with("    y = " + "sum(" * N + "x" + ")" * N)
    yield "nested_data", (MODEL + END + "train m { data = " + "[" * N + "0" + "]" * N + " }\n").encode()
    yield "deep_data_shallow_stack", (MODEL + END + "train m { data = [" +
                                      ", ".join(["[0, 0] -> [1]"] * 3) + ", [0] -> [1] ] }\n").encode()
    yield "huge_number", model_with("    y = x * 1e999")
    yield "huge_integer", model_with("    y = x * " + "1" * 400)
    yield "huge_dim", (b"model m { input x[1e10]\n loss = sum(x) }\n")
    yield "huge_tensor", (b"model m { input x[2]\n param W[100000000, 100000000]\n loss = sum(W) }\n")
    yield "dims_overflow", (b"model m { input x[65536, 65536, 65536, 65536]\n loss = sum(x) }\n")
    yield "huge_exponent", model_with("    y = x ^ (10 ^ 400)")
    yield "division_by_zero", model_with("    y = x ^ (1 / 0)")
    yield "many_errors", b"model m {\n" + b"    y = = ;\n" * 10000 + b"}\n"
    yield "many_unknown_names", (MODEL + "".join(f"    y{i} = z{i}\n" for i in range(5000)) + END).encode()
    yield "lone_quote", b"\""
    yield "only_keyword", b"model"
    yield "stray_close", b"}}}}))]]"
    yield "train_only", b"train m { data = [1 -> 2] }\n"
    yield "arrow_junk", b"model m { input x[2] loss = x -> x }\n"


def good_inputs():
    lets = "".join(f"    h{i} = h{i - 1} + x\n" for i in range(1, 20000))
    yield "many_statements", (MODEL + "    h0 = x\n" + lets + "    y = W @ h19999\n    loss = mse(y, t)\n}\n").encode()
    yield "crlf", (MODEL + END).replace("\n", "\r\n").encode()
    yield "deep_but_allowed", model_with("    y = " + "(" * 5000 + "x" + ")" * 5000 + " + " + "-" * 500 + "x")
    samples = ", ".join(f"[{i % 2}, {i % 3}] -> [{i % 5}]" for i in range(20000))
    yield "big_inline_data", (MODEL + END + "train m { data = [" + samples + "] }\n").encode()


def run(nnc, path, emit):
    try:
        return subprocess.run([nnc, "--emit=" + emit, path], capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        return None


def check_bad(nnc, path, name, emit):
    proc = run(nnc, path, emit)
    if proc is None:
        return f"{name} ({emit}): timed out"
    if proc.returncode < 0:
        return f"{name} ({emit}): killed by signal {-proc.returncode}"
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 1:
        return f"{name} ({emit}): exit status {proc.returncode}, expected 1\n{err[:2000]}"
    if not re.search(r"^" + re.escape(path) + r":\d+:\d+: error: ", err, re.M):
        return f"{name} ({emit}): no 'file:line:col: error:' message\n{err[:2000]}"
    if "Sanitizer" in err or "runtime error" in err:
        return f"{name} ({emit}): sanitizer report\n{err[:4000]}"
    return None


def check_good(nnc, path, name):
    proc = run(nnc, path, "ast")
    if proc is None:
        return f"{name}: timed out"
    if proc.returncode != 0:
        return f"{name}: exit status {proc.returncode}\n{proc.stderr.decode('utf-8', 'replace')[:2000]}"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnc", required=True)
    ap.add_argument("--build")
    args = ap.parse_args()
    failures = []
    count = 0
    with tempfile.TemporaryDirectory(prefix="nnc-bad-") as tmp:
        for name, data in bad_inputs():
            path = os.path.join(tmp, name + ".nn")
            with open(path, "wb") as f:
                f.write(data)
            failures.append(check_bad(args.nnc, path, name, "ast"))
            count += 1
        for name, data in good_inputs():
            path = os.path.join(tmp, name + ".nn")
            with open(path, "wb") as f:
                f.write(data)
            failures.append(check_good(args.nnc, path, name))
            count += 1
        # The token dump needs only the scanner: lexical errors must still be located.
        for name in ("junk", "bad_utf8", "lone_quote", "huge_number"):
            failures.append(check_bad(args.nnc, os.path.join(tmp, name + ".nn"), name, "tokens"))
            count += 1
    failures = [f for f in failures if f]
    for f in failures:
        print("FAIL", f)
    print(f"{count - len(failures)} of {count} inputs handled")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
