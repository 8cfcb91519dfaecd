"""After the simplifier, --emit=grad shows no duplicate computation and no dead value.

For every model of examples/*.nn, tests/grad/*.nn and tests/check/*.nn, the printed
forward and backward passes are parsed back into expression trees (names versioned, since
`dW += e` redefines dW; the aliases of `dy.2 = db2 [1] = e` name the same value) and two
properties are asserted:
  - no computation appears twice: no two lines, and no inline subexpression anywhere, have
    the same right-hand side (a + b and b + a count as the same);
  - every value a line defines is used by a later line, or is the loss, the output or a
    gradient (leaves excepted: unused params are kept on purpose).
The same checker must find both faults in the raw -O0 form of xor, so it cannot pass vacuously.
A third property is asserted of the raw and the simplified listings: a backward line's name is
the one its note describes, the adjoint dv of an operand v of the forward step the note cites
(`dy.2 = ...  # y = sigmoid(y.2): ...`); it must fail on a listing with the names swapped.

Run: /usr/bin/python3 tests/py/test_simplify_props.py --nnc BUILD/nnc --build BUILD
"""
import argparse
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TOKEN = re.compile(r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)"
                   r"|(?P<name>[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z0-9_]+)*)"
                   r"|(?P<op>[-+*/@^(),\[\]]))")
# "dy.2 = dy.1 = db2 [1] = e": a name, then the adjoints the simplifier merged into it.
LINE = re.compile(r"^  (?P<name>\S+)(?P<aliases>(?: = \S+)*)\s+(?P<shape>\[[^\]]*\])\s+(?P<acc>\+?=) (?P<rhs>.*?)(?:\s+# .*)?$")
GRAD = re.compile(r"^  d\(loss\)/d(?P<param>\S+) = (?P<label>\S+)")
OUTPUT = re.compile(r"^  output (?P<output>\S*), loss (?P<loss>\S+)$")
NOTE = re.compile(r"#\s+\S+:\d+\s+(?P<rule>.*)$")
STEP = re.compile(r"^(?P<result>\S+) = (?P<expr>.*?): ")
SEED = re.compile(r"^seed: d\((?P<loss>[^)]*)\)")
LEAF = re.compile(r"^(input|target|param\b)")
COMMUTATIVE = {"+", "*"}
SHAPELESS = {"broadcast", "expand_last"}  # the printed text does not fix their shape


class Parser:
    """Recursive descent over the printer's infix: + - ; * / @ ; unary - ; ^ ; calls."""

    def __init__(self, text, resolve):
        self.toks = []
        pos = 0
        # an image op's named option (conv2d(x, K, padding = 1)): one name, kept distinct
        text = re.sub(r"\b([a-z]+) = (\d+)", r"\1_is_\2", text.rstrip())
        while pos < len(text):
            m = TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ValueError("cannot read %r at %d" % (text, pos))
            kind = m.lastgroup
            self.toks.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0
        self.resolve = resolve

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def take(self, want=None):
        tok = self.peek()
        if want is not None and tok[1] != want:
            raise ValueError("expected %r, got %r in %r" % (want, tok, self.toks))
        self.i += 1
        return tok

    def parse(self):
        tree = self.expr()
        if self.i != len(self.toks):
            raise ValueError("trailing tokens in %r" % (self.toks,))
        return tree

    def binary(self, ops, sub):
        left = sub()
        while self.peek()[1] in ops:
            op = self.take()[1]
            left = ("op", op, left, sub())
        return left

    def expr(self):
        return self.binary(("+", "-"), self.term)

    def term(self):
        return self.binary(("*", "/", "@"), self.unary)

    def unary(self):
        if self.peek()[1] == "-":
            self.take()
            return ("neg", self.unary())
        return self.power()

    def power(self):
        base = self.atom()
        if self.peek()[1] == "^":
            self.take()
            return ("pow", base, self.unary())
        return base

    def atom(self):
        kind, text = self.take()
        if kind == "num":
            return ("num", text)
        if text == "(":
            tree = self.expr()
            self.take(")")
            return tree
        if text == "[":  # a shape argument, as in reshape(d, [6, 4])
            dims = []
            while self.peek()[1] != "]":
                dims.append(self.take()[1])
            self.take("]")
            return ("shape", "".join(dims))
        if kind != "name":
            raise ValueError("unexpected %r in %r" % (text, self.toks))
        if self.peek()[1] != "(":
            return ("name", self.resolve(text))
        self.take("(")
        args = [self.expr()]
        while self.peek()[1] == ",":
            self.take()
            args.append(self.expr())
        self.take(")")
        return ("call", text) + tuple(args)


def canon(tree):
    """Sorted operands for + and *, so a + b and b + a compare equal."""
    if tree[0] in ("num", "name", "shape"):
        return tree
    if tree[0] == "op":
        a, b = canon(tree[2]), canon(tree[3])
        if tree[1] in COMMUTATIVE and repr(b) < repr(a):
            a, b = b, a
        return ("op", tree[1], a, b)
    return tree[:2] + tuple(canon(t) for t in tree[2:]) if tree[0] == "call" else \
        (tree[0],) + tuple(canon(t) for t in tree[1:])


def names_in(tree):
    if tree[0] == "name":
        yield tree[1]
    elif tree[0] != "num":
        for sub in tree[1:]:
            if isinstance(sub, tuple):
                yield from names_in(sub)


def subtrees(tree):
    """Every computation inside tree (itself excluded): the inline nameless nodes."""
    for sub in tree[1:]:
        if isinstance(sub, tuple) and sub[0] not in ("num", "name", "shape"):
            yield sub
            yield from subtrees(sub)


def shapeless(tree):
    if tree[0] == "call" and tree[1] in SHAPELESS:
        return True
    return any(isinstance(s, tuple) and shapeless(s) for s in tree[1:])


def top_key(tree, shape):
    """What a line computes, as compared: with its shape when the text alone does not fix
    it (a broadcast at the top); None when a shapeless call hides inside."""
    if not shapeless(tree):
        return tree
    if tree[0] == "call" and tree[1] in SHAPELESS and not any(shapeless(a) for a in tree[2:]):
        return (tree, shape)
    return None


def check_listing(text):
    """The problems in one --emit=grad listing: duplicate computations and dead values."""
    problems = []
    version = {}          # name -> current version
    defined = []          # (value, line) of every non-leaf line, in order
    used = set()
    seen = {}             # canonical computation -> the line that has it
    roots = set()

    same = {}             # versioned alias -> the versioned name of its line

    def resolve(name):
        key = "%s@%d" % (name, version.get(name, 0))
        return same.get(key, key)

    def define(name, aliases):
        for n in [name] + aliases:
            version[n] = version.get(n, 0) + 1
        for a in aliases:
            same["%s@%d" % (a, version[a])] = resolve(name)

    def computation(key, line):
        if key in seen:
            problems.append("duplicate: %r\n    in: %s\n    and: %s" % (key, seen[key], line))
        else:
            seen[key] = line

    for line in text.splitlines():
        m = OUTPUT.match(line)
        if m:
            roots.update(resolve(n) for n in (m.group("output"), m.group("loss")) if n)
            continue
        m = GRAD.match(line)
        if m:
            if not line.endswith("does not affect the loss)"):
                roots.add(resolve(m.group("label")))
            continue
        m = LINE.match(line)
        if not m:
            if line.startswith("  ") and not line.startswith("  ("):  # a line left unchecked
                problems.append("unreadable line: %s" % line)
            continue
        name, rhs = m.group("name"), m.group("rhs")
        aliases = m.group("aliases").split(" = ")[1:]
        if LEAF.match(rhs):
            define(name, aliases)
            continue
        tree = canon(Parser(rhs, resolve).parse())
        if m.group("acc") == "+=":  # name += e is name = name + e
            tree = canon(("op", "+", ("name", resolve(name)), tree))
        used.update(names_in(tree))
        key = top_key(tree, m.group("shape"))
        if key is not None:
            computation(key, line)
        for sub in subtrees(tree):
            if any(True for _ in names_in(sub)) and not shapeless(sub):
                computation(sub, line)
        define(name, aliases)
        defined.append((resolve(name), line))
    for value, line in defined:
        if value not in used and value not in roots:
            problems.append("dead: %s\n    %s" % (value, line))
    return problems


def described(rule):
    """The adjoint names a backward note can describe: dv for each operand v of its step."""
    m = SEED.match(rule)
    if m:
        return {"d" + m.group("loss")}
    m = STEP.match(rule)
    if not m:
        return None
    toks = Parser(m.group("expr"), lambda n: n).toks
    return {"d" + text for i, (kind, text) in enumerate(toks)
            if kind == "name" and (i + 1 == len(toks) or toks[i + 1][1] != "(")}


def check_notes(text):
    """Backward lines whose name is not the one their note describes."""
    problems = []
    backward = False
    for line in text.splitlines():
        backward = backward or line.startswith("backward pass")
        m, note = LINE.match(line), NOTE.search(line)
        if not backward or not m or not note or m.group("name").startswith("$"):
            continue
        want = described(note.group("rule"))
        if want is None:
            problems.append("note names no step: %s" % line)
        elif m.group("name") not in want:
            problems.append("name %s, note about %s: %s" % (m.group("name"), "/".join(sorted(want)), line))
    return problems


def models_of(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        names = re.findall(r"^\s*model\s+([A-Za-z_][A-Za-z0-9_]*)", f.read(), re.M)
    # No model: a golden case that runs another file (examples/); one: no --model needed.
    return names if len(names) > 1 else [None] * len(names)


def emit_grad(nnc, path, model, extra=()):
    cmd = [nnc, "--emit=grad", *extra, os.path.basename(path)]
    if model:
        cmd.append("--model=" + model)
    return subprocess.run(cmd, cwd=os.path.dirname(path), capture_output=True, text=True, timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnc", required=True)
    ap.add_argument("--build")
    args = ap.parse_args()
    nnc = os.path.abspath(args.nnc)

    failures = 0
    # The checker itself: the raw chain-rule form has both kinds of fault.
    raw = emit_grad(nnc, os.path.join(ROOT, "examples", "xor.nn"), None, ["-O0"])
    raw_problems = check_listing(raw.stdout) if raw.returncode == 0 else []
    if not any(p.startswith("duplicate") for p in raw_problems):
        print("FAIL: the checker finds no duplicate in xor's -O0 listing")
        failures += 1
    for p in check_notes(raw.stdout):
        print("FAIL: xor -O0: %s" % p)
        failures += 1
    swapped = re.sub(r"^  d(\S)", r"  dd\1", raw.stdout, flags=re.M)
    if len(check_notes(swapped)) < 10:
        print("FAIL: the checker misses names that do not match their notes")
        failures += 1

    required = sorted(glob.glob(os.path.join(ROOT, "examples", "*.nn")) +
                      glob.glob(os.path.join(ROOT, "tests", "grad", "*.nn")))
    optional = sorted(glob.glob(os.path.join(ROOT, "tests", "check", "*.nn")))
    checked = 0
    for path in required + optional:
        for model in models_of(path):
            r = emit_grad(nnc, path, model)
            label = os.path.relpath(path, ROOT) + (" --model=" + model if model else "")
            if r.returncode != 0:
                if path in required:
                    print("FAIL: %s: nnc --emit=grad exits %d\n%s" % (label, r.returncode, r.stderr))
                    failures += 1
                continue
            if "backward pass" not in r.stdout:
                print("FAIL: %s: no backward pass in the listing" % label)
                failures += 1
                continue
            try:
                problems = check_listing(r.stdout) + check_notes(r.stdout)
            except ValueError as e:
                problems = ["cannot parse the listing: %s" % e]
            for p in problems:
                print("FAIL: %s: %s" % (label, p))
            failures += len(problems)
            checked += 1
    if checked < len(glob.glob(os.path.join(ROOT, "examples", "*.nn"))):
        print("FAIL: only %d listings checked" % checked)
        failures += 1
    print("%d listings checked, %d problem(s)" % (checked, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
