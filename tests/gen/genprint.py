"""genprint.py - a generated Program (genprog.py) as .nn text and the data files it reads.

The data are drawn here, from the program's data seed and its current sizes, so a program
the reducer shrank still gets data of the right shape.
"""
import gzip
import random
import struct

PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2}


# ---- expressions ----

def text(e, dims, style=None, rng=None):
    """e as source text; rng (with style['parens']) adds redundant parentheses."""
    return _text(e, dims, rng if style and style.get("parens") else None)[0]


def _paren(s, prec, need, rng):
    if prec < need or (rng and rng.random() < 0.15):
        return "(" + s + ")"
    return s


def _text(e, dims, rng):
    """(text, precedence): 1 + -, 2 * / @, 3 unary minus, 4 ^, 5 atoms."""
    op = e.op
    if op == "ref":
        return e.val, 5
    if op == "num":
        return e.val[1], 3 if e.val[1].startswith("-") else 5
    if op == "neg":
        a, pa = _text(e.args[0], dims, rng)
        return "-" + _paren(a, pa, 4 if a.startswith("-") else 3, rng), 3
    if op in PREC:
        p = PREC[op]
        a, pa = _text(e.args[0], dims, rng)
        b, pb = _text(e.args[1], dims, rng)
        return "%s %s %s" % (_paren(a, pa, p, rng), op, _paren(b, pb, p + 1, rng)), p
    if op == "^":
        a, pa = _text(e.args[0], dims, rng)
        return "%s ^ %s" % (_paren(a, pa, 5, rng), e.val[1]), 4
    if op == "dense":
        args = [_text(e.args[0], dims, rng)[0], str(dims[e.val])] + ([e.val2] if e.val2 else [])
        return "dense(%s)" % ", ".join(args), 5
    args = [_text(a, dims, rng)[0] for a in e.args]
    if e.val == "leaky_relu" and e.val2:
        args.append(("alpha = " if e.val2[2] else "") + e.val2[1])
    return "%s(%s)" % (e.val, ", ".join(args)), 5


# ---- models ----

def shape_text(shape, dims):
    return "[%s]" % ", ".join(str(dims[d]) for d in shape) if shape else ""


def model_text(p, m, rng):
    """The model block: input, target, params (some just before their first use), lets."""
    dims, style = p.dims, p.style
    lines = ["input %s%s" % (m.input[0], shape_text(m.input[1], dims))]
    if m.target:
        lines.append("target %s%s" % (m.target[0], shape_text(m.target[1], dims)))
    late = {}
    for prm in m.params:
        line = "param %s%s%s" % (prm.name, shape_text(prm.shape, dims),
                                 " = " + prm.init if prm.init else "")
        user = first_user(m, prm.name) if style.get("interleave") else None
        if user is not None and rng.random() < 0.5:
            late.setdefault(user, []).append(line)
        else:
            lines.append(line)
    for i, let in enumerate(m.lets):
        lines.extend(late.get(i, []))
        lines.append("%s = %s" % (let.name, text(let.expr, dims, style, rng)))
    lines.extend(late.get(len(m.lets), []))
    if m.output:
        lines.append("output " + m.output)
    lines.append("loss = " + text(m.loss, dims, style, rng))
    return block("model", m.name, lines, style, rng)


def first_user(m, name):
    for i, let in enumerate(m.lets):
        if name in let.expr.refs():
            return i
    return len(m.lets) if name in m.loss.refs() else None


def block(kind, name, lines, style, rng):
    """A block, one statement a line, or (style semi) some joined by ';'; (style comments)
    with comment lines and trailing // comments, after which nothing is joined."""
    out = ["%s %s {" % (kind, name)]
    joinable = False
    for line in lines:
        if style.get("comments") and rng.random() < 0.15:
            out.append("    # " + rng.choice(["a comment", "-> [1] @ x", "loss = 0"]))
            joinable = False
        if style.get("semi") and joinable and rng.random() < 0.3:
            out[-1] += "; " + line
        else:
            out.append("    " + line)
            joinable = True
        if style.get("comments") and rng.random() < 0.1:
            out[-1] += " // why"
            joinable = False
    out.append("}")
    return "\n".join(out) + "\n"


# ---- data ----

def numtext(v):
    return "%.4g" % v


def draw_input(rng, n):
    out = []
    for _ in range(n):
        r = rng.random()
        out.append(0.0 if r < 0.05 else rng.choice([-1.0, 1.0, 0.5]) if r < 0.1 else
                   round(rng.uniform(-1, 1), 4))
    return out


def draw_target(rng, n, style):
    if style == "onehot":
        v = [0.0] * n
        v[rng.randrange(n)] = 1.0
        return v
    if style == "binary":
        return [float(rng.randrange(2)) for _ in range(n)]
    if style == "prob":
        w = [rng.random() + 0.01 for _ in range(n)]
        return [round(x / sum(w), 4) for x in w]
    if style == "unit":
        return [round(rng.random(), 4) for _ in range(n)]
    return [round(rng.uniform(-1, 1), 4) for _ in range(n)]


def samples(p, m, spec, salt):
    """[(x values, t values or None)] of a data spec."""
    rng = random.Random("%d:%s:%s" % (p.data_seed, m.name, salt))
    nx = p.size(m.input[1])
    nt = p.size(m.target[1]) if m.target else 0
    style = spec.get("style") or "signed"
    out = []
    for _ in range(spec["n"]):
        if spec["kind"] == "idx":
            x = [rng.randrange(256) / 255 for _ in range(nx)]
        else:
            x = draw_input(rng, nx)
        out.append((x, draw_target(rng, nt, style) if m.target else None))
    return out


def nested(values, shape, dims, nest, bare):
    """Inline values: flat, or nested by shape; a scalar bare or in brackets."""
    if not shape:
        return numtext(values[0]) if bare else "[%s]" % numtext(values[0])
    if len(shape) == 1 or not nest:
        return "[%s]" % ", ".join(numtext(v) for v in values)
    step = len(values) // dims[shape[0]]
    return "[%s]" % ", ".join(nested(values[i * step:(i + 1) * step], shape[1:], dims, nest, bare)
                              for i in range(dims[shape[0]]))


def inline_text(p, m, rows, spec):
    nest, bare = spec.get("nest"), spec.get("bare")
    items = []
    for x, t in rows:
        if t is None:   # inputs only: a scalar sample keeps its brackets
            items.append(nested(x, m.input[1], p.dims, nest, False))
        else:
            items.append("%s -> %s" % (nested(x, m.input[1], p.dims, nest, bare),
                                       nested(t, m.target[1], p.dims, nest, bare)))
    return "[" + ", ".join(items) + "]"


def csv_text(rows, spec):
    lines = ["col_a,col_b"] if spec.get("header") else []
    for x, t in rows:
        vals = ["%.9g" % v for v in x]
        if t is not None:
            vals += [str(t.index(1.0))] if spec.get("label") else ["%.9g" % v for v in t]
        lines.append(",".join(vals))
    return "\n".join(lines) + "\n"


def idx_bytes(array, shape, gz):
    code = 0x08
    head = struct.pack(">HBB", 0, code, len(shape)) + b"".join(struct.pack(">I", d) for d in shape)
    data = head + bytes(array)
    return gzip.compress(data, mtime=0) if gz else data


def idx_files(rows, nx, nt, spec, base):
    """IMAGES, LABELS file names and contents: u8 pixels, labels the one-hot position."""
    pix = [int(round(v * 255)) for x, _ in rows for v in x]
    labels = [t.index(1.0) if t and 1.0 in t else 0 for _, t in rows]
    gz = spec.get("gz")
    ext = ".gz" if gz else ""
    img_shape = [len(rows), nx] if nx % 2 else [len(rows), 2, nx // 2]
    return {base + "-images" + ext: idx_bytes(pix, img_shape, gz),
            base + "-labels" + ext: idx_bytes(labels, [len(rows)], gz)}


def source(p, m, spec, salt, prefix, files):
    """The SOURCE text of a data spec; files gets the files it names."""
    rows = samples(p, m, spec, salt)
    kind = spec["kind"]
    if kind == "idx" and not (m.target and spec.get("style") == "onehot" and p.size(m.target[1]) <= 256):
        kind = "csv"
    base = "%s%s_%s" % (prefix, m.name, salt)
    if kind == "inline":
        return inline_text(p, m, rows, spec)
    if kind == "csv":
        if spec.get("label") and not (m.target and spec.get("style") == "onehot"):
            spec = dict(spec, label=False)
        files[base + ".csv"] = csv_text(rows, spec).encode()
        opts = "".join(", %s = true" % k for k in ("header", "label") if spec.get(k))
        return 'csv("%s.csv"%s)' % (base, opts)
    names = idx_files(rows, p.size(m.input[1]), p.size(m.target[1]), spec, base)
    files.update(names)
    return 'idx("%s", "%s")' % tuple(names)


def train_text(p, m, prefix, files, rng):
    lines = ["data = " + source(p, m, m.data, "train", prefix, files)]
    if m.test:
        lines.append("test = " + source(p, m, m.test, "test", prefix, files))
    lines += ["%s = %s" % kv for kv in m.train.items()]
    rng.shuffle(lines)
    return block("train", m.name, lines, p.style, rng)


def override_file(p, m, spec, salt, n, prefix, files):
    """A file for --data/--test: the block's csv options, or plain csv for inline data."""
    spec = dict(spec, n=n)
    if spec["kind"] == "inline":
        spec.update(kind="csv", header=False, label=False)
    src = source(p, m, spec, salt, prefix, files)
    return src.split('"')[1]


def program_text(p, prefix=""):
    """(.nn text, {file name: bytes}) of a program; data files are named PREFIX..."""
    rng = random.Random("%d:text" % p.seed)
    files = {}
    parts = []
    for m in p.models:
        parts.append(model_text(p, m, rng))
        parts.append(train_text(p, m, prefix, files, rng))
    return "\n".join(parts), files
