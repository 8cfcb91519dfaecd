"""gendraw.py - random valid .nn programs (genprog.Program), deterministic from a seed.

What is drawn is LANGUAGE.md sections 1-8: every operator and function of section 4
(elementwise arithmetic with rank-0 broadcasting, `@` of every shape, `^` with folded
constant exponents, the elementwise functions, leaky_relu with and without alpha, softmax
and log_softmax on any rank, sum, mean, dot, outer, transpose, the three losses fused and
unfused, dense with every activation but log and sqrt, whose argument W @ a + b has no
sign), every initialiser, input and target of rank 0-4 (or no target), output given or
implied, every train option (inline, csv with header and label, and idx data; a test set;
epochs, batch, sgd, momentum, adam, seed, shuffle), several models in one file, the
executable's flags, and the compiler's --cpu and --cpu-features (genprog.Program.run); of
section 10, in f64 programs, nesterov, adamw, rmsprop, adagrad, weight decay, schedules,
warm-up and clip (train_options). Sections 9 and the rest of 10 (convolution, pooling,
validation, npz data) are not implemented yet: a new op is a method `_op_NAME` listed in Gen.OPS
(or one name in SMOOTH_FNS) with its interval rule; a new optimizer is one entry in
Gen.OPTIMIZERS and a branch of train_options.

Values are kept finite and the finite-difference check meaningful by tracking an
interval for every expression (inputs are drawn in [-1, 1], params within their
initialiser's range widened for training's drift): a function with a restricted domain
gets an argument that is positive by construction (log, sqrt, a fractional or negative
power, a denominator), exp gets a bounded argument, and a value whose interval grows past
BOUND is squashed (tanh, or scaled down). Kinks (relu, abs, leaky_relu) are only drawn in
programs compared in f64 (Program.precision): in f32 a kink input near 0 may fall on the
other side under another summation order.

A seed gives the same program for one version of this file; a change here changes what
a seed draws (kept failures are therefore kept as text, in tests/gen/cases).
"""
import math
import random

from genprog import KINK_FNS, Expr, Let, Model, Param, Program, fmt_num, num, prune, ref

BOUND = 30.0          # values beyond this are squashed
PRED_MAX = 5.0        # predictions beyond this are squashed
SATURATE = 4.0        # f32: the largest argument of tanh and sigmoid
EXP_MAX = 8.0         # largest argument exp gets
POS_MIN = 0.05        # smallest value log, sqrt, 1/x and x^-c get
SMOOTH_FNS = ("sigmoid", "tanh", "exp", "log", "sqrt", "softplus")
INITS = ("zeros", "ones", "const", "uniform", "normal", "xavier", "he", None)
DENSE_ACTS = (None, "sigmoid", "tanh", "softplus", "exp", "relu", "abs", "leaky_relu",
              "softmax", "log_softmax")
MAX_ELEMS = 4096      # largest tensor, except in a program drawn big
BIG_ELEMS = 131072    # (a matrix of 300 x 300 and a batch of 3 or more: threads start)


def pick(rng, weighted):
    """One value of [(weight, value), ...]."""
    total = sum(w for w, _ in weighted)
    r = rng.random() * total
    for w, v in weighted:
        r -= w
        if r < 0:
            return v
    return weighted[-1][1]


# ---- intervals ----

class Iv:
    """A closed interval holding every value an expression takes (training included)."""
    __slots__ = ("lo", "hi")

    def __init__(self, lo, hi):
        self.lo, self.hi = float(lo), float(hi)

    def mag(self):
        return max(abs(self.lo), abs(self.hi))

    def __add__(self, o):
        return Iv(self.lo + o.lo, self.hi + o.hi)

    def __neg__(self):
        return Iv(-self.hi, -self.lo)

    def __sub__(self, o):
        return self + (-o)

    def __mul__(self, o):
        p = [self.lo * o.lo, self.lo * o.hi, self.hi * o.lo, self.hi * o.hi]
        return Iv(min(p), max(p))

    def scale(self, n):
        """The sum of n values of this interval."""
        return Iv(min(self.lo * n, self.lo), max(self.hi * n, self.hi)) if n >= 1 else self

    def join(self, o):
        return Iv(min(self.lo, o.lo), max(self.hi, o.hi))


def sigmoid(v):
    return 1 / (1 + math.exp(-v)) if v > -700 else 0.0


def softplus(v):
    return v + math.log1p(math.exp(-v)) if v > 0 else math.log1p(math.exp(v))


def unary_iv(fn, a, alpha=0.01):
    """The interval of fn over a (monotone functions map the ends)."""
    mono = {"sigmoid": sigmoid, "tanh": math.tanh, "softplus": softplus,
            "exp": math.exp, "log": math.log, "sqrt": math.sqrt,
            "relu": lambda v: max(v, 0.0),
            "leaky_relu": lambda v: v if v > 0 else alpha * v}
    if fn in mono:
        lo, hi = mono[fn](a.lo), mono[fn](a.hi)
        return Iv(min(lo, hi), max(lo, hi))
    if fn == "abs":
        return Iv(0 if a.lo <= 0 <= a.hi else min(abs(a.lo), abs(a.hi)), a.mag())
    raise ValueError(fn)


def power_iv(a, c):
    if c == int(c) and c >= 0:
        m = a.mag() ** c
        lo = 0.0 if (c % 2 == 0 and a.lo <= 0 <= a.hi) else min(a.lo ** c, a.hi ** c)
        return Iv(lo if c % 2 == 0 or a.lo >= 0 else -m, m)
    vals = [a.lo ** c, a.hi ** c]   # a > 0 here
    return Iv(min(vals), max(vals))


# ---- the generator ----

class Gen:
    """Draws one program; self.p is the program, self.m the model being drawn."""

    def __init__(self, seed, tiny=False):
        self.rng = random.Random(seed)
        self.p = Program(seed)
        self.tiny = tiny
        # f32 programs are not big: a sum of 10^5 f32 terms is off by far more than the
        # tolerance allows for (oracle.py), in sums the f64 interpreter does exactly
        self.f32 = self.rng.random() < 0.4
        self.p.precision = "f32" if self.f32 else "f64"
        self.big = self.rng.random() < (0.02 if tiny else 0.05) and not self.f32
        self.cap = BIG_ELEMS if self.big else MAX_ELEMS
        self.bridging = False

    # -- sizes --

    def new_dim(self):
        r = self.rng
        if self.big and r.random() < 0.5:
            v = r.choice([63, 64, 65, 97, 127, 128, 129, 255, 257, 300, 511])
        elif self.tiny:
            v = pick(r, [(80, r.randint(1, 4)), (17, r.randint(5, 9)), (3, r.choice([16, 17, 33]))])
        else:
            v = pick(r, [(60, r.randint(1, 4)), (25, r.randint(5, 12)), (12, r.randint(13, 40)),
                         (3, r.choice([47, 61, 64, 67, 100]))])
        self.p.dims.append(v)
        return len(self.p.dims) - 1

    def dim(self, fresh=0.4):
        if self.p.dims and self.rng.random() > fresh:
            return self.rng.randrange(len(self.p.dims))
        return self.new_dim()

    def shape(self, rank, cap=None):
        cap = cap or self.cap
        for _ in range(20):
            s = tuple(self.dim() for _ in range(rank))
            if self.p.size(s) <= cap:
                return s
        small = [i for i, v in enumerate(self.p.dims) if v <= 3] or [self.new_small()]
        return tuple(self.rng.choice(small) for _ in range(rank))

    def new_small(self):
        self.p.dims.append(self.rng.randint(1, 3))
        return len(self.p.dims) - 1

    def rank(self):
        return pick(self.rng, [(15, 0), (45, 1), (25, 2), (9, 3), (6, 4)])

    def fits(self, shape):
        return self.p.size(shape) <= self.cap

    # -- names and params --

    def fresh(self, prefix):
        self.count = getattr(self, "count", 0) + 1
        return "%s%d" % (prefix, self.count)

    def init_of(self, shape):
        r = self.rng
        kind = r.choice(INITS)
        if kind == "const":
            v = r.choice([0.5, -0.25, 1, 0.1, 2])
            return "const(%s)" % fmt_num(v), Iv(v, v)
        if kind == "uniform":
            a = r.choice([-1, -0.5, -0.1, 0])
            b = r.choice([0.1, 0.5, 1])
            return "uniform(%s, %s)" % (fmt_num(a), fmt_num(b)), Iv(a, b)
        if kind == "normal":
            m, s = r.choice([0, 0, 0.5, -0.1]), r.choice([0.1, 0.5, 1])
            return "normal(%s, %s)" % (fmt_num(m), fmt_num(s)), Iv(m - 5 * s, m + 5 * s)
        fan_in = self.p.dims[shape[-1]] if shape else 1
        fan_out = self.p.dims[shape[-2]] if len(shape) >= 2 else fan_in
        if kind == "xavier":
            a = math.sqrt(6 / (fan_in + fan_out))
            return "xavier", Iv(-a, a)
        if kind == "he":
            s = math.sqrt(2 / fan_in)
            return "he", Iv(-5 * s, 5 * s)
        if kind == "ones":
            return "ones", Iv(1, 1)
        return kind, Iv(0, 0)   # zeros, spelled out or left out (None)

    def new_param(self, shape):
        name = self.fresh(self.rng.choice(["W", "b", "p", "w", "k"]))
        init, iv = self.init_of(shape)
        self.m.params.append(Param(name, shape, init))
        iv = Iv(iv.lo - self.drift, iv.hi + self.drift)
        self.vals[name] = (shape, iv, False)
        return ref(name, shape), iv

    # -- leaves --

    def values_of(self, shape, x_only=False):
        return [n for n, (s, _, fromx) in self.vals.items()
                if s == shape and (fromx or not x_only)]

    def leaf(self, shape):
        r = self.rng
        if shape == () and r.random() < 0.3:
            v, texts = r.choice(self.NUMBERS)
            return num(v, r.choice(texts)), Iv(v, v)
        names = self.values_of(shape)
        fromx = self.values_of(shape, x_only=True)
        if fromx and r.random() < 0.7:
            name = fromx[-1] if r.random() < 0.6 else r.choice(fromx)
        elif not fromx and not self.bridging and r.random() < 0.5:
            return self.bridge(shape)
        elif names and r.random() < 0.5:
            name = r.choice(names)
        else:
            return self.new_param(shape)
        return ref(name, shape), self.vals[name][1]

    NUMBERS = [(0.5, ["0.5", "5e-1"]), (2, ["2", "2.0"]), (3, ["3"]), (-1, ["-1"]),
               (0.1, ["0.1"]), (1e-3, ["1e-3", "0.001"]), (1.5, ["1.5"]),
               (-0.25, ["-0.25", "-2.5e-1"])]

    def other(self, shape):
        """An operand next to an input-derived value: a leaf, or a small expression."""
        e, iv = self.leaf(shape) if self.rng.random() < 0.7 else self.gen(shape, 1)
        return self.squash_to(e, iv, 5)

    def bridge(self, shape):
        """An expression of shape made from an input-derived value of another shape, so
        values of any shape can depend on the input."""
        self.bridging = True
        try:
            src = [n for n, v in self.vals.items() if v[2]]
            self.rng.shuffle(src)
            for n in src:
                s, iv, _ = self.vals[n]
                v, iv = self.squash_to(ref(n, s), iv, 5)
                got = self.bridge_from(v, iv, s, shape)
                if got:
                    return got
            return self.new_param(shape)
        finally:
            self.bridging = False

    def bridge_from(self, v, iv, s, shape):
        r = self.rng
        k = len(s)
        if shape == ():
            fn = r.choice(["sum", "mean"])
            return Expr("call", [v], (), fn), iv.scale(self.p.size(s)) if fn == "sum" else iv
        if k == 0:
            o, io = self.other(shape)
            return Expr("*", [o, v] if r.random() < 0.5 else [v, o], shape), io * iv
        if len(shape) == 2 and k == 2 and s == (shape[1], shape[0]):
            return Expr("call", [v], shape, "transpose"), iv
        mm = self.bridge_matmul(v, iv, s, shape)
        if mm:
            return mm
        if len(shape) > k and shape[:k] == s:
            o, io = self.other(shape[k:])
            return Expr("call", [v, o], shape, "outer"), iv * io
        if len(shape) > k and shape[-k:] == s:
            o, io = self.other(shape[:-k])
            return Expr("call", [o, v], shape, "outer"), io * iv
        return None

    def bridge_matmul(self, v, iv, s, shape):
        """v @ W or W @ v of the wanted shape, when the dims allow one."""
        k = len(s)
        if len(shape) > 2 or k > 2:
            return None
        forms = []
        if k == 1 and len(shape) == 1:
            forms = [((shape[0], s[0]), False), ((s[0], shape[0]), True)]
        elif k == 2 and len(shape) == 1:
            forms = ([((s[1],), True)] if s[0] == shape[0] else []) + \
                    ([((s[0],), False)] if s[1] == shape[0] else [])
        elif k == 2 and len(shape) == 2:
            forms = ([((s[1], shape[1]), True)] if s[0] == shape[0] else []) + \
                    ([((shape[0], s[0]), False)] if s[1] == shape[1] else [])
        forms = [f for f in forms if self.fits(f[0])]
        if not forms:
            return None
        os, v_left = self.rng.choice(forms)
        o, io = self.other(os)
        args = [v, o] if v_left else [o, v]
        return Expr("@", args, shape), (iv * io).scale(self.p.dims[s[-1] if v_left else s[0]])

    # -- keeping values in range --

    # In f32 a value is brought into range by scaling, never by tanh of a large argument:
    # the derivative of a saturated tanh or sigmoid (1 - y^2, y (1 - y)) keeps only a few
    # of f32's digits, and an f32 program is compared with the interpreter's f64 maths.

    def squash(self, e, iv, bound=BOUND):
        if iv.mag() <= bound:
            return e, iv
        if self.rng.random() < 0.6 and not self.f32:
            return Expr("call", [e], e.shape, "tanh"), unary_iv("tanh", iv)
        return self.scale_to(e, iv, bound)

    def scale_to(self, e, iv, bound):
        if iv.mag() <= bound:
            return e, iv
        c = 10 ** -math.ceil(math.log10(iv.mag() / bound))
        return Expr("*", [e, num(c)], e.shape), iv * Iv(c, c)

    def bounded_exp_arg(self, e, iv):
        if iv.hi <= EXP_MAX and iv.lo >= -40:
            return e, iv
        if self.f32:
            return self.scale_to(e, iv, EXP_MAX)
        e = Expr("call", [e], e.shape, "tanh")
        c = self.rng.choice([1, 2, 4])
        return (Expr("*", [num(c), e], e.shape), Iv(-c, c)) if c != 1 else (e, Iv(-1, 1))

    def positive(self, e, iv):
        """e made positive (>= POS_MIN) by construction."""
        if iv.lo >= POS_MIN:
            return e, iv
        r = self.rng
        shape = e.shape
        kinds = ["sigmoid", "softplus", "square", "exp"] + (["softmax"] if shape else [])
        if self.kinks_ok:
            kinds.append("abs")
        kind = r.choice(kinds)
        c = r.choice([0.1, 0.5, 1])
        if kind in ("sigmoid", "exp", "softmax"):
            e, iv = self.saturation(kind, *self.squash_to(e, iv, 10))
            v = Expr("call", [e], shape, kind)
            if kind == "softmax":
                piv = Iv(math.exp(iv.lo - iv.hi) / self.p.dims[shape[-1]], 1)
            else:
                piv = unary_iv(kind, iv)
            if piv.lo >= POS_MIN:
                return v, piv
            return Expr("+", [v, num(c)], shape), piv + Iv(c, c)
        if kind == "square":
            v = Expr("^", [e], shape, (2, "2"))
            piv = power_iv(iv, 2)
        else:
            v = Expr("call", [e], shape, kind)
            piv = unary_iv(kind, iv)
        return Expr("+", [v, num(c)], shape), piv + Iv(c, c)

    def squash_to(self, e, iv, m):
        if iv.mag() <= m:
            return e, iv
        if self.f32:
            return self.scale_to(e, iv, m)
        return Expr("call", [e], e.shape, "tanh"), unary_iv("tanh", iv)

    def saturation(self, fn, e, iv):
        """The argument of tanh or sigmoid in f32, scaled to where it does not saturate."""
        if self.f32 and fn in ("tanh", "sigmoid"):
            return self.scale_to(e, iv, SATURATE)
        return e, iv

    # -- expressions: gen(shape, depth) draws an expression of that shape --

    def gen(self, shape, depth):
        if depth <= 0 or self.rng.random() < 0.25:
            return self.leaf(shape)
        ops = [(w, name) for w, name, ok in self.OPS if ok(self, shape)]
        for _ in range(6):
            got = getattr(self, "_op_" + pick(self.rng, ops))(shape, depth - 1)
            if got:
                return self.squash(*got)
        return self.leaf(shape)

    def _op_unary(self, shape, depth):
        fns = SMOOTH_FNS + (KINK_FNS if self.kinks_ok else ())
        fn = self.rng.choice(fns)
        a, iv = self.saturation(fn, *self.gen(shape, depth))
        if fn == "exp":
            a, iv = self.bounded_exp_arg(a, iv)
        elif fn in ("log", "sqrt"):
            a, iv = self.positive(a, iv)
        alpha = None
        if fn == "leaky_relu":
            # (alpha, its text, named as alpha = ...), or the default 0.01
            alpha = self.rng.choice([None, (0.2, "0.2", False), (0.1, "0.1", True),
                                     (0.125, "1/8", False), (0.5, "0.5", True)])
            return Expr("call", [a], shape, fn, alpha), unary_iv(fn, iv, alpha[0] if alpha else 0.01)
        return Expr("call", [a], shape, fn), unary_iv(fn, iv)

    def _op_softmax(self, shape, depth):
        fn = self.rng.choice(["softmax", "log_softmax"])
        a, iv = self.squash_to(*self.gen(shape, depth), 20)
        n = self.p.dims[shape[-1]]
        if fn == "softmax":
            return Expr("call", [a], shape, fn), Iv(0, 1)
        return Expr("call", [a], shape, fn), Iv(iv.lo - iv.hi - math.log(n) - 1e-9, 0)

    def _op_neg(self, shape, depth):
        a, iv = self.gen(shape, depth)
        return Expr("neg", [a], shape), -iv

    EXPONENTS = [(2, "2"), (3, "3"), (1, "1"), (0, "0"), (-1, "-1"), (-2, "-2"), (0.5, "0.5"),
                 (0.5, "(1/2)"), (1.5, "1.5"), (-0.5, "-(1/2)"), (4, "2 ^ 2"), (2, "(4 - 2)")]

    def _op_power(self, shape, depth):
        c, text = self.rng.choice(self.EXPONENTS)
        a, iv = self.gen(shape, depth)
        if c != int(c) or c < 0:
            a, iv = self.positive(a, iv)
        else:
            a, iv = self.squash_to(a, iv, BOUND ** (1 / max(c, 1)))
        return Expr("^", [a], shape, (c, text)), power_iv(iv, c)

    def _op_arith(self, shape, depth):
        r = self.rng
        op = r.choice("+-*/")
        ls = rs = shape
        if shape and r.random() < 0.35:
            if r.random() < 0.5:
                ls = ()
            else:
                rs = ()
        a, ia = self.gen(ls, depth)
        b, ib = self.gen(rs, depth)
        if op == "/":
            b, ib = self.positive(b, ib)
            if r.random() < 0.3:
                b, ib = Expr("neg", [b], rs), -ib
            return Expr("/", [a, b], shape), ia * Iv(1 / ib.hi, 1 / ib.lo)
        iv = ia + ib if op == "+" else ia - ib if op == "-" else ia * ib
        return Expr(op, [a, b], shape), iv

    def _op_chain(self, shape, depth):
        """A long sum of same-shape terms (the fusion of many operands)."""
        r = self.rng
        n = pick(r, [(50, r.randint(3, 6)), (35, r.randint(7, 14)), (15, r.randint(15, 30))])
        e, iv = self.gen(shape, max(depth - 1, 0))
        for _ in range(n - 1):
            b, ib = self.leaf(shape) if r.random() < 0.7 else self.gen(shape, 1)
            op = r.choice("+-*") if ib.mag() <= 2 and iv.mag() <= BOUND else r.choice("+-")
            iv = iv + ib if op == "+" else iv - ib if op == "-" else iv * ib
            e = Expr(op, [e, b], shape)
            e, iv = self.squash(e, iv)
        return e, iv

    def _op_unary_chain(self, shape, depth):
        e, iv = self.gen(shape, depth)
        for _ in range(self.rng.randint(3, 12)):
            fn = self.rng.choice(["sigmoid", "tanh", "softplus"] + (["relu"] if self.kinks_ok else []))
            e, iv = self.saturation(fn, e, iv)
            e, iv = Expr("call", [e], shape, fn), unary_iv(fn, iv)
        return e, iv

    def _op_matmul(self, shape, depth):
        r = self.rng
        n = self.dim()
        if len(shape) == 0:
            ls, rs = (n,), (n,)
        elif len(shape) == 1:
            ls, rs = ((shape[0], n), (n,)) if r.random() < 0.6 else ((n,), (n, shape[0]))
        else:
            ls, rs = (shape[0], n), (n, shape[1])
        if not (self.fits(ls) and self.fits(rs)):
            return None
        a, ia = self.squash_to(*self.gen(ls, depth), 5)
        b, ib = self.squash_to(*self.gen(rs, depth), 5)
        return Expr("@", [a, b], shape), (ia * ib).scale(self.p.dims[n])

    def _op_transpose(self, shape, depth):
        a, iv = self.gen((shape[1], shape[0]), depth)
        return Expr("call", [a], shape, "transpose"), iv

    def _op_outer(self, shape, depth):
        k = self.rng.randint(1, len(shape) - 1)
        a, ia = self.squash_to(*self.gen(shape[:k], depth), 5)
        b, ib = self.squash_to(*self.gen(shape[k:], depth), 5)
        return Expr("call", [a, b], shape, "outer"), ia * ib

    def _op_reduce(self, shape, depth):
        s = self.shape(self.rank())
        a, iv = self.gen(s, depth)
        fn = self.rng.choice(["sum", "mean"])
        return Expr("call", [a], (), fn), iv.scale(self.p.size(s)) if fn == "sum" else iv

    def _op_dot(self, shape, depth):
        s = self.shape(self.rng.randint(1, 3))
        a, ia = self.squash_to(*self.gen(s, depth), 5)
        b, ib = self.squash_to(*self.gen(s, depth), 5)
        return Expr("call", [a, b], (), "dot"), (ia * ib).scale(self.p.size(s))

    def _op_loss_call(self, shape, depth):
        """mse, bce or cross_entropy inside an expression."""
        r = self.rng
        s = self.shape(r.randint(1, 2))
        fn = r.choice(["mse", "bce", "cross_entropy"])
        a, ia = self.squash_to(*self.gen(s, depth), 5)
        b, ib = self.squash_to(*self.gen(s, depth), 5)
        if fn == "mse":
            d = (ia - ib).mag()
            return Expr("call", [a, b], (), fn), Iv(0, d * d)
        a, ia = self.squash_to(a, ia, 10)
        p = Expr("call", [a], s, "sigmoid" if fn == "bce" else "softmax")
        if fn == "bce":
            worst = max(-math.log(sigmoid(ia.lo)), -math.log(1 - sigmoid(ia.hi)) if ia.hi < 30 else 40)
        else:
            worst = ia.hi - ia.lo + math.log(self.p.dims[s[-1]])
        m = (2 * ib.mag() + 1) * worst
        iv = Iv(-m, m) if fn == "bce" else Iv(-m, m).scale(self.p.size(s))
        return Expr("call", [p, b], (), fn), iv

    OPS = [
        (30, "unary", lambda g, s: True),
        (6, "softmax", lambda g, s: len(s) >= 1),
        (4, "neg", lambda g, s: True),
        (8, "power", lambda g, s: True),
        (30, "arith", lambda g, s: True),
        (3, "chain", lambda g, s: True),
        (2, "unary_chain", lambda g, s: True),
        (20, "matmul", lambda g, s: len(s) <= 2),
        (4, "transpose", lambda g, s: len(s) == 2),
        (5, "outer", lambda g, s: len(s) >= 2),
        (10, "reduce", lambda g, s: len(s) == 0),
        (4, "dot", lambda g, s: len(s) == 0),
        (3, "loss_call", lambda g, s: len(s) == 0),
    ]

    # -- statements --

    def let(self, name, e, iv):
        fromx = bool(e.refs() & {n for n, v in self.vals.items() if v[2]})
        self.m.lets.append(Let(name, e))
        self.vals[name] = (e.shape, iv, fromx)
        return ref(name, e.shape), iv

    def dense(self, name, src):
        """name = dense(src, units[, act]); its params name.W and name.b are values too."""
        r = self.rng
        n_in = self.vals[src][0][0]
        units = self.dim()
        if not self.fits((units, n_in)):
            units = self.new_small()
        acts = [a for a in DENSE_ACTS if a not in KINK_FNS or self.kinks_ok]
        act = r.choice(acts)
        fan_in, fan_out = self.p.dims[n_in], self.p.dims[units]
        wa = math.sqrt(6 / (fan_in + fan_out)) if act not in ("relu", "leaky_relu") \
            else 5 * math.sqrt(2 / fan_in)
        w_iv, b_iv = Iv(-wa - self.drift, wa + self.drift), Iv(-self.drift, self.drift)
        z = (w_iv * self.vals[src][1]).scale(fan_in) + b_iv
        if act == "exp" and z.hi > EXP_MAX:
            act = "tanh"
        e = Expr("dense", [ref(src, (n_in,))], (units,), units, act)
        iv = z if act is None else Iv(0, 1) if act == "softmax" else \
            Iv(z.lo - z.hi - math.log(fan_out) - 1e-9, 0) if act == "log_softmax" else unary_iv(act, z)
        self.vals[name + ".W"] = ((units, n_in), w_iv, False)
        self.vals[name + ".b"] = ((units,), b_iv, False)
        return self.let(name, e, iv)

    def statement(self):
        r = self.rng
        name = self.fresh(r.choice(["h", "a", "z", "u", "v"]))
        vecs = self.values_of_rank(1)
        if vecs and r.random() < 0.2:
            return self.dense(name, r.choice(vecs))
        fromx = [n for n, v in self.vals.items() if v[2]]
        if fromx and r.random() < 0.6:
            shape = self.vals[r.choice(fromx)][0]
        else:
            shape = self.shape(self.rank())
        return self.let(name, *self.gen(shape, r.randint(1, 3)))

    def values_of_rank(self, rank):
        return [n for n, v in self.vals.items() if len(v[0]) == rank and v[2] and "." not in n]

    def prediction(self, shape, name):
        """A let of the given shape that depends on the input, if one can be drawn, within
        [-PRED_MAX, PRED_MAX]: the loss stays small enough for the finite differences of
        --check (their rounding error grows with the loss: ~1e-10 * |loss|)."""
        for _ in range(8):
            e, iv = self.gen(shape, self.rng.randint(1, 3))
            if e.refs() & {n for n, v in self.vals.items() if v[2]}:
                return self.let(name, *self.squash(e, iv, PRED_MAX))
        x = self.m.input[0]
        e, iv = self.squash(*self.gen(shape, 1), PRED_MAX - 1)
        s = Expr("call", [ref(x, self.vals[x][0])], (), "mean")
        return self.let(name, Expr("+", [e, s], shape), iv + self.vals[x][1])

    def reduction(self, shape):
        """sum for a few elements, else mean: a loss term stays small."""
        return "sum" if self.p.size(shape) <= 16 and self.rng.random() < 0.5 else "mean"

    # -- the loss --

    LOSSES = ["mse", "mse", "bce_fused", "bce", "ce_fused", "ce", "custom", "scalar"]

    def loss(self):
        """(loss expression, target style), setting the output when one is needed."""
        r = self.rng
        m = self.m
        if not m.target:
            return self.loss_targetless()
        t, ts = m.target
        kind = r.choice([k for k in self.LOSSES if ts or not k.startswith("ce")])
        tref = ref(t, ts)
        if kind == "mse":
            y, _ = self.prediction(ts, "y")
            return Expr("call", [y, tref], (), "mse"), r.choice(["signed", "unit", "onehot", "binary"])
        if kind in ("bce_fused", "ce_fused"):
            z, _ = self.prediction(ts, "z")
            fn, act = ("bce", "sigmoid") if kind == "bce_fused" else ("cross_entropy", "softmax")
            p = Expr("call", [z], ts, act)
            style = r.choice(["unit", "onehot", "binary"]) if fn == "bce" else r.choice(["onehot", "onehot", "prob"])
            return Expr("call", [p, tref], (), fn), style
        if kind in ("bce", "ce"):
            fn, act = ("bce", "sigmoid") if kind == "bce" else ("cross_entropy", "softmax")
            vecs = self.values_of_rank(1)
            if len(ts) == 1 and vecs and r.random() < 0.5:
                p = self.dense_to(ts, act, r.choice(vecs))
            else:
                z, iv = self.prediction(ts, "z")
                z, iv = self.squash_to(z, iv, 12)
                p, _ = self.let("p", Expr("call", [z], ts, act), Iv(0, 1))
            style = r.choice(["unit", "binary"]) if fn == "bce" else "onehot"
            return Expr("call", [p, tref], (), fn), style
        if kind == "custom":
            y, _ = self.prediction(ts, "y")
            m.output = "y"
            d = Expr("-", [y, tref], ts)
            if r.random() < 0.3:    # the target in a statement of its own, not only in the loss
                d = self.let("d", Expr("call", [d], ts, "tanh"), Iv(-1, 1))[0]
            if self.kinks_ok and r.random() < 0.3:
                return Expr("call", [Expr("call", [d], ts, "abs")], (), "mean"), "signed"
            return Expr("call", [Expr("^", [d], ts, (2, "2"))], (), self.reduction(ts)), "signed"
        y, iv = self.prediction(ts, "y")
        m.output = "y"
        s, _ = self.squash(*self.gen((), 2), PRED_MAX)
        return Expr("+", [Expr("call", [Expr("*", [y, tref], ts)], (), self.reduction(ts)),
                          Expr("^", [s], (), (2, "2"))], ()), "signed"

    def dense_to(self, ts, act, src):
        """p = dense(src, units, act) with units the target's dim."""
        n_in = self.vals[src][0][0]
        e = Expr("dense", [ref(src, (n_in,))], ts, ts[0], act)
        self.vals["p.W"] = ((ts[0], n_in), Iv(-2, 2), False)
        self.vals["p.b"] = (ts, Iv(-1, 1), False)
        return self.let("p", e, Iv(0, 1))[0]

    def loss_targetless(self):
        m = self.m
        x, xs = m.input
        y, _ = self.prediction(xs, "y")
        if self.rng.random() < 0.5:
            return Expr("call", [y, ref(x, xs)], (), "mse"), None
        m.output = "y"
        return Expr("call", [Expr("^", [Expr("-", [y, ref(x, xs)], xs)], xs, (2, "2"))], (), "mean"), None

    def regularise(self, loss):
        """loss + c * sum(P ^ 2) (+ ...) over some params: the output must then be named."""
        r = self.rng
        params = [n for n, v in self.vals.items() if not v[2] and n in self.param_names()]
        if not params or r.random() < 0.6:
            return loss
        for name in r.sample(params, min(len(params), r.randint(1, 3))):
            s = self.vals[name][0]
            fn, inner = self.reduction(s), r.choice(["sq", "sq", "abs"] if self.kinks_ok else ["sq"])
            v = ref(name, s)
            v = Expr("^", [v], s, (2, "2")) if inner == "sq" else Expr("call", [v], s, "abs")
            c = r.choice([1e-4, 0.001, 0.01])
            loss = Expr("+", [loss, Expr("*", [num(c), Expr("call", [v], (), fn)], ())], ())
        return loss

    def param_names(self):
        names = {p.name for p in self.m.params}
        for l in self.m.lets:
            if l.expr.op == "dense":
                names |= {l.name + ".W", l.name + ".b"}
        return names

    # -- a model and its train block --

    def model(self, name, nstmts):
        r = self.rng
        self.m = m = Model(name)
        self.vals = {}
        self.count = 0
        m.input = (r.choice(["x", "x", "X", "inp"]), self.shape(self.rank()))
        self.vals[m.input[0]] = (m.input[1], Iv(-1, 1), True)
        if r.random() < 0.85:
            m.target = (r.choice(["t", "t", "T", "tgt"]), self.shape(self.rank()))
        m.data = self.data_spec(True)
        m.test = self.data_spec(False) if r.random() < 0.3 else None
        self.train_options()
        for _ in range(nstmts):
            self.statement()
        loss, style = self.loss()
        m.data["style"] = style
        if m.test:
            m.test["style"] = style
        reg = self.regularise(loss)
        if reg is not loss or r.random() < 0.2:
            m.output = m.output or self.implied_output(loss)
        m.loss = reg
        if r.random() < 0.8:
            prune(m)
        if m.data.get("label") and style != "onehot":
            m.data["label"] = False
        return m

    def implied_output(self, loss):
        a = loss.args[0]
        return a.val if a.op == "ref" else a.args[0].val

    def data_spec(self, train):
        r = self.rng
        kind = pick(r, [(55, "inline"), (35, "csv"), (10, "idx")])
        n = pick(r, [(50, r.randint(1, 6)), (40, r.randint(7, 12)), (10, r.randint(13, 40))])
        if self.big:
            n = r.randint(4, 6 if self.tiny else 12)
        elif self.tiny:
            n = min(n, 6)
        return {"kind": kind, "n": n, "header": r.random() < 0.4, "label": r.random() < 0.4,
                "gz": r.random() < 0.5, "nest": r.random() < 0.3, "bare": r.random() < 0.3}

    OPTIMIZERS = ["sgd", "momentum", "adam", None]

    def train_options(self):
        r = self.rng
        t = self.m.train
        opt = r.choice(self.OPTIMIZERS)
        lr = r.choice([0.001, 0.01, 0.02, 0.05])
        # In f32 a gradient carries the rounding of its computation, which the optimizer
        # multiplies (momentum mu by up to 1 / (1 - mu), adam by up to lr / eps) and every
        # step adds to: f32 programs keep those factors small and their steps few
        # (run_options), so the weights stay within oracle.py's tolerance.
        f32 = self.p.precision == "f32"
        if opt == "sgd":
            t["optimizer"] = r.choice(["sgd(lr = %g)" % lr, "sgd(lr = %g, momentum = 0)" % lr])
        elif opt == "momentum":
            mu = r.choice([0.5, 0.9] if f32 else [0.5, 0.9, 0.99])
            t["optimizer"] = "sgd(lr = %g, momentum = %g)" % (lr, mu)
        elif opt == "adam":
            # eps well above rounding: adam divides by sqrt(v) + eps, so a gradient that is
            # rounding noise (a structural zero, as the gradient of sum(softmax(z))) would
            # otherwise become a full step that differs between two summation orders.
            args = ["lr = %g" % lr] + [a for a in ("beta1 = %g" % r.choice([0, 0.5, 0.9]),
                                                   "beta2 = %g" % r.choice([0.9, 0.99, 0.999]))
                                       if r.random() < 0.5]
            args.append("eps = %g" % (0.1 if f32 else r.choice([1e-4, 1e-3, 0.01])))
            r.shuffle(args)
            t["optimizer"] = "adam(%s)" % ", ".join(args)
        self.lr = lr if opt else 0.01
        if r.random() < 0.7:
            t["epochs"] = str(r.randint(0, 3) if r.random() < 0.9 else 10)
        if not f32 and opt:
            self.training_options(t, opt, lr)
        if r.random() < 0.7:
            # the thread pool takes a product of 2^18 multiply-adds or more: in a big
            # program, one of a batch of 3 or more
            t["batch"] = str(r.randint(3 if self.big else 1, 8))
        if r.random() < 0.6:
            t["seed"] = str(r.randint(0, 10 ** 6))
        if r.random() < 0.4:
            t["shuffle"] = r.choice(["true", "false"])
        keys = list(t)
        r.shuffle(keys)
        self.m.train = {k: t[k] for k in keys}
        steps = 10 * 40
        self.drift = min(1.0, steps * self.lr * 0.05) + 0.1


    def training_options(self, t, opt, lr):
        """Spec section 10's optimizers and options, in f64 programs, from a stream of
        their own (so the programs drawn before them stayed what they were): the
        interpreter's optimizers are written from PyTorch's definitions, the generated
        ones in cg_optim.c; lr, warm-up, schedules and clipping are the runtime's for both.
        rmsprop and adagrad divide by sqrt(s) + eps, as adam: eps stays well above
        rounding."""
        r = random.Random(repr(self.rng.getstate()[1][:8]) + ":options")
        wd = ", weight_decay = %g" % r.choice([0.001, 0.01]) if r.random() < 0.4 else ""
        if r.random() < 0.5:
            eps = r.choice([1e-3, 0.01])
            t["optimizer"] = r.choice([
                "sgd(lr = %g, momentum = %g, nesterov = true%s)" % (lr, r.choice([0.5, 0.9]), wd),
                "adamw(lr = %g, eps = %g%s)" % (lr, eps, wd),
                "rmsprop(lr = %g, eps = %g, momentum = %g%s)" % (lr, eps, r.choice([0, 0.5]), wd),
                "adagrad(lr = %g, eps = %g%s)" % (lr, eps, wd)])
        elif wd and opt != "sgd":
            t["optimizer"] = t["optimizer"][:-1] + wd + ")"
        epochs = int(t.get("epochs", "10"))
        if r.random() < 0.3:
            t["schedule"] = r.choice(["step(every = %d, gamma = 0.5)" % r.randint(1, 2),
                                      "exponential(gamma = 0.9)", "cosine(min_lr = 0.0001)"])
        if r.random() < 0.2 and epochs >= 1:
            t["warmup"] = "1"
        if r.random() < 0.2:
            t["clip"] = str(r.choice([0.5, 2]))


def generate(seed, tiny=False):
    """The program of a seed; tiny: few statements, small sizes, few samples (the fixed
    batch of the test suite, which must be quick)."""
    g = Gen(seed, tiny)
    r = g.rng
    p = g.p
    g.kinks_ok = not g.f32 and r.random() < 0.7
    nstmts = pick(r, [(55, r.randint(0, 3)), (35, r.randint(4, 8)), (10, r.randint(9, 25))])
    if tiny:
        nstmts = pick(r, [(70, r.randint(0, 2)), (27, r.randint(3, 5)), (3, r.randint(6, 12))])
    names = ["m", "net", "model_%d" % r.randint(0, 99)]
    p.models.append(g.model(names[0], nstmts))
    if r.random() < 0.1:
        p.models.append(g.model(names[1], r.randint(0, 2)))
        p.chosen = r.randrange(2)
    p.run = run_options(r, p, g.big, tiny)
    p.style = {"semi": r.random() < 0.1, "comments": r.random() < 0.2,
               "parens": r.random() < 0.1, "interleave": r.random() < 0.3}
    return p


def run_options(r, p, big, tiny):
    """Flags the runner gives every trainer (interpreter and compiled alike), and the -O
    of `nnc --run` (run_opt; none: the default -O2). The executable is built at -O0 and
    -O2 for every program; in the suite's quick batch (tiny) most --run are -O0, since
    each -O2 compilation costs ~0.5 s of CPU and the -O2 pipeline is the executable's."""
    m = p.model
    run = {}
    opt = pick(r, [(25, None), (75, 0)] if tiny else [(70, None), (15, 0), (10, 1), (5, 3)])
    if opt is not None:
        run["run_opt"] = opt
    # the code generator's target (another vector width, no FMA); the oracle keeps to
    # what the host runs
    cpu = pick(r, [(70, None), (8, "x86-64"), (7, "x86-64-v2"), (8, "x86-64-v3"), (7, "x86-64-v4")])
    if cpu:
        run["cpu"] = cpu
    if r.random() < 0.05:
        run["cpu_features"] = r.choice(["-fma", "-avx512f", "+avx2,-fma"])
    if r.random() < 0.8 or p.precision == "f32":   # f32: few steps (train_options)
        run["epochs"] = pick(r, [(20, 1), (50, 2), (25, 3), (5, 0)] if p.precision == "f64"
                             else [(45, 1), (50, 2), (5, 0)])
    if r.random() < 0.2:
        run["batch"] = r.randint(3 if big else 1, 5)
    if r.random() < 0.15:
        run["lr"] = r.choice([0.003, 0.03])
    if r.random() < 0.15:
        run["seed"] = r.randint(0, 99)
    if r.random() < 0.3:
        run["quiet"] = True
    if r.random() < 0.3:
        run["log"] = True
    if r.random() < 0.15:
        run["load"] = True
    if m.data["kind"] != "idx" and r.random() < 0.1:
        run["data"] = r.randint(1, 9)
    if m.test and m.test["kind"] == "csv" and r.random() < 0.2:
        run["test"] = r.randint(1, 9)
    return run
