"""genprog.py - a generated program as a structure: what gendraw.py draws, genprint.py
prints and reduce.py takes apart.

A program is kept as a structure, not as text, so the reducer can take it apart: every
size is a *dim variable* (Program.dims), so shrinking one size keeps every shape that
shares it consistent (the inner dimension of a product, a dense layer's units);
expressions are trees of Expr; the data are drawn from Program.data_seed when the program
is printed, so they follow the sizes.
"""

KINK_FNS = ("relu", "abs", "leaky_relu")


# ---- expressions ----

class Expr:
    """op: 'ref' (val: name), 'num' (val: (value, text)), 'neg', '+', '-', '*', '/', '@',
    '^' (val: (exponent, text)), 'call' (val: function name; leaky_relu's alpha is
    val2 = (alpha, text, named) or None), 'dense' (val: units dim, val2: activation).
    shape: a tuple of dim variable indices."""
    __slots__ = ("op", "args", "val", "val2", "shape")

    def __init__(self, op, args, shape, val=None, val2=None):
        self.op, self.args, self.shape, self.val, self.val2 = op, list(args), tuple(shape), val, val2

    def copy(self):
        return Expr(self.op, [a.copy() for a in self.args], self.shape, self.val, self.val2)

    def nodes(self):
        """Every node, parents first."""
        out = [self]
        for a in self.args:
            out.extend(a.nodes())
        return out

    def refs(self):
        return {n.val for n in self.nodes() if n.op == "ref"}

    def calls(self):
        return {n.val for n in self.nodes() if n.op == "call"} | \
               {n.val2 for n in self.nodes() if n.op == "dense" and n.val2}


def ref(name, shape):
    return Expr("ref", [], shape, name)


def num(value, text=None):
    return Expr("num", [], (), (value, text if text else fmt_num(value)))


def fmt_num(v):
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    return "%.6g" % v


# ---- the program ----

class Param:
    __slots__ = ("name", "shape", "init")

    def __init__(self, name, shape, init):
        self.name, self.shape, self.init = name, tuple(shape), init


class Let:
    __slots__ = ("name", "expr")

    def __init__(self, name, expr):
        self.name, self.expr = name, expr


class Model:
    """One model and its train block. data and test: dicts, see Gen._data."""

    def __init__(self, name):
        self.name = name
        self.input = None          # (name, shape)
        self.target = None         # (name, shape) or None
        self.params = []
        self.lets = []
        self.output = None
        self.loss = None
        self.train = {}            # key -> text, in print order
        self.data = None
        self.test = None

    def copy(self):
        m = Model(self.name)
        m.input, m.target, m.output = self.input, self.target, self.output
        m.params = [Param(p.name, p.shape, p.init) for p in self.params]
        m.lets = [Let(l.name, l.expr.copy()) for l in self.lets]
        m.loss = self.loss.copy()
        m.train = dict(self.train)
        m.data = dict(self.data)
        m.test = dict(self.test) if self.test else None
        return m

    def exprs(self):
        return [l.expr for l in self.lets] + [self.loss]

    def kinks(self):
        fns = set()
        for e in self.exprs():
            fns |= e.calls()
        return bool(fns & set(KINK_FNS))


class Program:
    """Models, dim variables, how the runner trains it (run: see Gen._run)."""

    def __init__(self, seed):
        self.seed = seed
        self.dims = []
        self.models = []
        self.chosen = 0
        self.precision = "f64"
        self.data_seed = seed
        self.run = {}
        self.style = {}

    def copy(self):
        p = Program(self.seed)
        p.dims = list(self.dims)
        p.models = [m.copy() for m in self.models]
        p.chosen, p.precision, p.data_seed = self.chosen, self.precision, self.data_seed
        p.run = dict(self.run)
        p.style = dict(self.style)
        return p

    @property
    def model(self):
        return self.models[self.chosen]

    def size(self, shape):
        n = 1
        for d in shape:
            n *= self.dims[d]
        return n

    def used_dims(self):
        used = set()
        for m in self.models:
            shapes = [m.input[1]] + ([m.target[1]] if m.target else []) + [p.shape for p in m.params]
            for e in m.exprs():
                shapes += [n.shape for n in e.nodes()]
            used |= {d for s in shapes for d in s}
        return used

    def weight(self):
        """How big the program is, for the reducer: nodes, statements, sizes, samples, options."""
        n = sum(self.dims[d] for d in self.used_dims()) + 3 * len(self.run)
        for m in self.models:
            n += 2 * (len(m.lets) + len(m.params)) + 3 * len(m.train)
            n += sum(len(e.nodes()) for e in m.exprs())
            n += m.data["n"] + (m.test["n"] + 1 if m.test else 0)
            n += sum(1 for k in ("header", "label", "nest") if m.data.get(k))
            n += sum(1 for prm in m.params if prm.init)
            n += 0 if m.data["kind"] == "inline" else 1
        return n + sum(1 for v in self.style.values() if v)


def live_names(m):
    """Names the loss or the output depends on."""
    live = set(m.loss.refs()) | ({m.output} if m.output else set())
    for let in reversed(m.lets):
        if let.name in live or (let.expr.op == "dense" and
                                {let.name + ".W", let.name + ".b"} & live):
            live.add(let.name)
            live |= let.expr.refs()
            if let.expr.op == "dense":
                live |= {let.name + ".W", let.name + ".b"}
    return live


def prune(m):
    """Drops the lets and params nothing uses (their params stay when a later use needs them)."""
    live = live_names(m)
    m.lets = [l for l in m.lets if l.name in live]
    m.params = [p for p in m.params if p.name in live]
