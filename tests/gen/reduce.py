"""reduce.py - shrinking a failing program until nothing more can go, and the kept cases.

The reducer is a greedy delta debugger over the program's structure: passes drop whole
models, turn a statement into a param of its shape (its users stay valid), replace an
expression by one of its operands of the same shape or by a param, shrink every size
variable (to 1, then by halves), and simplify the data, the train block and the trainer
flags. A candidate is kept when it fails with the same signature (stage and kind; for a
rejected program also the same message) and weighs less (Program.weight); every pass is
repeated until a whole round keeps nothing, or the time budget is spent.

A kept case is tests/gen/cases/NAME.nn with its data files NAME_*; its header holds the
failure and the trainer flags as JSON (`# gen-config:`), so `gen.py cases` re-runs it
through every stage without the generator. A line `# XFAIL: why` marks a known bug that
is not fixed yet: the case must still fail, and says so when it passes (XPASS) so the
line is removed with the fix.
"""
import json
import os
import re
import time

import genprog
import oracle
from genprog import Expr, Param, ref

# What to run to see a failure of each stage again (the interpreter always runs).
STAGES_FOR = {"emit": ("emit",), "check": ("check",), "interp": (), "O0": ("O0",),
              "O2": ("O2",), "run": ("run",), "threads": ("O0", "O2", "threads")}
LOSS_CALLS = ("mse", "bce", "cross_entropy")


def same_failure(f, want):
    if f is None or f.signature() != want.signature():
        return False
    if want.kind == "rejected":
        return first_error(f.detail) == first_error(want.detail)
    return True


def first_error(text):
    m = re.search(r"error: (.*)", text)
    return re.sub(r"'[^']*'|\d+", "_", m.group(1)) if m else text[:80]


# ---- editing a program ----

def exprs(m):
    """(holder, key) of every expression root: lets (not dense ones) and the loss."""
    out = [(let, "expr") for let in m.lets if let.expr.op != "dense"]
    return out + [(m, "loss")]


def positions(m):
    """(root index, path) of every node below the expression roots."""
    out = []
    for k, (holder, key) in enumerate(exprs(m)):
        stack = [(getattr(holder, key), ())]
        while stack:
            e, path = stack.pop()
            out.append((k, path))
            stack.extend((a, path + (i,)) for i, a in enumerate(e.args))
    return sorted(out, key=lambda kp: (kp[0], len(kp[1]), kp[1]))


def node_at(m, k, path):
    holder, key = exprs(m)[k]
    e = getattr(holder, key)
    for i in path:
        e = e.args[i]
    return e


def replace_at(m, k, path, new):
    holder, key = exprs(m)[k]
    if not path:
        setattr(holder, key, new)
        return
    e = getattr(holder, key)
    for i in path[:-1]:
        e = e.args[i]
    e.args[path[-1]] = new


def fresh_name(m, base):
    names = {p.name for p in m.params} | {l.name for l in m.lets} | {m.input[0]}
    names |= {m.target[0]} if m.target else set()
    i = 1
    while "%s_%d" % (base, i) in names:
        i += 1
    return "%s_%d" % (base, i)


def rename_refs(m, old, new):
    for holder, key in exprs(m):
        for n in getattr(holder, key).nodes():
            if n.op == "ref" and n.val == old:
                n.val = new


def tidy(p):
    """Unused lets and params dropped; an output named when the loss needs one."""
    m = p.model
    if m.output and m.output not in {l.name for l in m.lets}:
        m.output = None
    if not m.output and not (m.loss.op == "call" and m.loss.val in LOSS_CALLS):
        if not m.lets:
            return None
        m.output = m.lets[-1].name
    genprog.prune(m)
    return p


# ---- the passes: pass(program, i) -> a smaller candidate, None (skip i) or END ----

END = object()


def pass_models(p, i):
    if i >= len(p.models):
        return END
    if i == p.chosen:
        return None
    q = p.copy()
    del q.models[i]
    q.chosen = q.chosen - (1 if i < q.chosen else 0)
    return q


def pass_lets(p, i):
    """Let i becomes a param of its name and shape (dense: also its W and b)."""
    m = p.model
    if i >= len(m.lets):
        return END
    q = p.copy()
    qm = q.model
    let = qm.lets.pop(i)
    if let.expr.op == "dense":
        w_shape = (let.expr.shape[0], let.expr.args[0].shape[0])
        for suffix, shape in ((".W", w_shape), (".b", let.expr.shape)):
            new = fresh_name(qm, let.name + "_" + suffix[1])
            rename_refs(qm, let.name + suffix, new)
            qm.params.append(Param(new, shape, None))
    qm.params.append(Param(let.name, let.expr.shape, None))
    if qm.output == let.name:
        qm.output = None
    return tidy(q)


def pass_child(p, i):
    """A node replaced by an operand of the same shape."""
    return node_pass(p, i, lambda e: [a for a in e.args if a.shape == e.shape])


def pass_param(p, i):
    """A node (not a leaf) replaced by a new param of its shape."""
    def to_param(e):
        return [None] if e.args else []
    return node_pass(p, i, to_param)


def node_pass(p, i, options):
    cands = [(k, path, j) for k, path in positions(p.model)
             for j, _ in enumerate(options(node_at(p.model, k, path)))]
    if i >= len(cands):
        return END
    k, path, j = cands[i]
    q = p.copy()
    e = node_at(q.model, k, path)
    new = options(e)[j]
    if new is None:
        name = fresh_name(q.model, "r")
        q.model.params.append(Param(name, e.shape, None))
        new = ref(name, e.shape)
    replace_at(q.model, k, path, new)
    return tidy(q)


def pass_dims(p, i):
    """Size variable i/2 to 1, then halved."""
    if i >= 2 * len(p.dims):
        return END
    d, half = divmod(i, 2)
    if p.dims[d] <= 1 or d not in p.used_dims():
        return None
    q = p.copy()
    q.dims[d] = max(1, q.dims[d] // 2) if half else 1
    return q


def pass_data(p, i):
    edits = [("data", "n", 1), ("data", "n", None), ("test", None, None), ("data", "kind", "inline"),
             ("data", "header", False), ("data", "label", False), ("data", "nest", False),
             ("test", "n", 1)]
    if i >= len(edits):
        return END
    which, key, value = edits[i]
    q = p.copy()
    m = q.model
    spec = m.data if which == "data" else m.test
    if spec is None:
        return None
    if key is None:
        m.test = None
        q.run.pop("test", None)
        return q
    if key == "n":
        value = value or max(1, spec["n"] // 2)
    if spec.get(key) == value:
        return None
    spec[key] = value
    return q


def pass_run(p, i):
    keys = sorted(p.run)
    if i >= len(keys):
        return END
    q = p.copy()
    if keys[i] == "epochs" and p.run["epochs"] > 1:
        q.run["epochs"] = 1
    else:
        del q.run[keys[i]]
    return q


def pass_train(p, i):
    keys = sorted(p.model.train)
    if i >= len(keys):
        return END
    q = p.copy()
    del q.model.train[keys[i]]
    return q


def pass_inits(p, i):
    m = p.model
    if i >= len(m.params):
        return END
    if m.params[i].init is None:
        return None
    q = p.copy()
    q.model.params[i].init = None
    return q


def pass_leaky(p, i):
    """leaky_relu's alpha left out."""
    def drop(e):
        return [Expr("call", e.args, e.shape, e.val)] if e.val2 and e.op == "call" else []
    return node_pass(p, i, drop)


def pass_style(p, i):
    """Comments, semicolons, extra parentheses and late params left out."""
    keys = sorted(p.style)
    if i >= len(keys):
        return END
    if not p.style[keys[i]]:
        return None
    q = p.copy()
    q.style[keys[i]] = False
    return q


PASSES = [pass_models, pass_lets, pass_child, pass_param, pass_dims, pass_data, pass_run,
          pass_train, pass_inits, pass_leaky, pass_style]


def reduce(nnc, prog, failure, budget=600, log=print):
    """The smallest program found that still fails as `failure` did."""
    stages = STAGES_FOR[failure.stage]
    deadline = time.time() + budget
    best, tries = prog, 0
    progress = True
    while progress and time.time() < deadline:
        progress = False
        for step in PASSES:
            i = 0
            while time.time() < deadline:
                cand = step(best, i)
                if cand is END:
                    break
                if cand is None or cand.weight() >= best.weight():
                    i += 1
                    continue
                tries += 1
                if same_failure(oracle.check_program(nnc, cand, stages), failure):
                    best, progress = cand, True
                else:
                    i += 1
    log("reduced from weight %d to %d in %d tries" % (prog.weight(), best.weight(), tries))
    return best


# ---- kept cases ----

def case_name(prog, failure):
    kind = re.sub(r"\W+", "_", failure.kind).strip("_")
    return "%s_%s_%d" % (failure.stage.lower(), kind, prog.seed)


def save_case(prog, failure, out_dir):
    """Writes the case and its data files; returns the .nn path."""
    os.makedirs(out_dir, exist_ok=True)
    name = case_name(prog, failure)
    job = oracle.Job.of(prog, prefix=name + "_")
    config = {"precision": job.precision, "run": job.run, "model": job.model,
              "nsamples": job.nsamples, "files": sorted(job.files),
              "failure": [failure.stage, failure.kind]}
    first = failure.detail.strip().splitlines()[:1] or [""]
    head = ["# Found by tests/gen/gen.py (program seed %d), reduced: %s: %s" % (
                prog.seed, failure.stage, failure.kind),
            "# " + first[0][:200],
            "# gen-config: " + json.dumps(config, sort_keys=True), ""]
    path = os.path.join(out_dir, name + ".nn")
    with open(path, "w") as f:
        f.write("\n".join(head) + job.text)
    for fname, data in job.files.items():
        with open(os.path.join(out_dir, fname), "wb") as f:
            f.write(data)
    return path


def load_case(path):
    """(Job, xfail reason or None) of a kept case."""
    with open(path) as f:
        text = f.read()
    m = re.search(r"^# gen-config: (.*)$", text, re.M)
    if not m:
        raise ValueError("%s: no '# gen-config:' line" % path)
    config = json.loads(m.group(1))
    folder = os.path.dirname(path)
    files = {}
    for name in config["files"]:
        with open(os.path.join(folder, name), "rb") as f:
            files[name] = f.read()
    xfail = re.search(r"^# XFAIL: (.*)$", text, re.M)
    job = oracle.Job(text, files, config["precision"], config["run"], config.get("model"),
                     config.get("nsamples", 1))
    return job, xfail.group(1) if xfail else None


def run_case(nnc, path):
    """(what is wrong or None, the XFAIL reason or None): a case must pass, or, marked
    XFAIL, still fail."""
    job, xfail = load_case(path)
    f = oracle.check_job(nnc, job)
    if xfail:
        return (None if f else "XPASS: it passes now; remove its XFAIL line (%s)" % xfail), xfail
    return (str(f)[:3000] if f else None), None
