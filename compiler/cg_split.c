/* cg_split.c - an executable's code made on two threads.
 *
 * -O2 and code generation are most of a compile (fashion_mlp: 0.26 s and 0.2 s of 0.6), so
 * the unoptimised module is cut in two by weight (instructions): the module as built keeps
 * about half and declares the rest, which a copy made through bitcode in a context of its
 * own defines (pruned of everything it does not use). Small helpers are copied into both,
 * so calls to them stay inlinable; a function one module defines and the other uses is
 * hidden and external. Each half is optimised and compiled to an object on its own thread
 * with its own target machine, and the linker joins the objects. A function's code does
 * not depend on the half it lands in: same instructions, same bits (the checked step, when
 * it is the second half alone, gets -O0's code generation: optnone, it was never optimised,
 * and its arithmetic is the same). */
#include "cg.h"

#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SPLIT_STACK = 64 << 20 }; /* as main.c's compile thread: LLVM recurses on deep code */

/* Which module defines a function: the first (the module as built), the second (the copy),
 * or both (a small helper, as an internal copy in each, so calls to it stay inlinable). */
typedef enum { IN_FIRST, IN_SECOND, IN_BOTH } Part;

enum { HELPER = 300 }; /* instructions: a function as small as this is copied, not split */

typedef struct Split {
    char **names;  /* the functions defined in the module, by name... */
    Part *part;    /* ...and where each goes */
    int count;
    bool unoptimised; /* the second holds the optnone functions alone: -O0 for it */
} Split;

static Part part_of(const Split *s, LLVMValueRef fn)
{
    size_t len;
    const char *name = LLVMGetValueName2(fn, &len);
    for (int i = 0; i < s->count; i++)
        if (strlen(s->names[i]) == len && memcmp(s->names[i], name, len) == 0)
            return s->part[i];
    return IN_BOTH; /* a declaration */
}

static bool optnone(LLVMValueRef fn)
{
    unsigned kind = LLVMGetEnumAttributeKindForName("optnone", 7);
    return LLVMGetEnumAttributeAtIndex(fn, LLVMAttributeFunctionIndex, kind) != NULL;
}

/* The work a function gives LLVM: its instructions, a quarter for an optnone one (no
 * -O2, the fast instruction selector). */
static long weight(LLVMValueRef fn)
{
    long n = 0;
    for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb))
        for (LLVMValueRef i = LLVMGetFirstInstruction(bb); i; i = LLVMGetNextInstruction(i))
            n++;
    return optnone(fn) ? n / 4 : n;
}

/* Functions by weight, heaviest first (ties in module order): the second module takes
 * each that keeps it within half the total; small ones go to both. False when the second
 * would get less than a sixth (a small module: one thread).
 * Unless the optnone functions (the checked step, run once after a non-finite batch) weigh
 * a sixth of the module or more: then the second module holds them alone, compiled at -O0.
 * At -O2 the code generator still ran IVUsers, SCEV and the greedy register allocator over
 * them: the 1000-statement chain's checked step took 7.7G instructions to compile there
 * against 3.3G at -O0, where the rest of the module takes 2.9G. */
static bool choose(LLVMModuleRef mod, Split *s, Arena *a)
{
    int n = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f))
        n += !LLVMIsDeclaration(f);
    s->names = arena_alloc(a, sizeof *s->names * (size_t)(n + 1));
    s->part = arena_alloc(a, sizeof *s->part * (size_t)(n + 1));
    s->unoptimised = false;
    long *w = arena_alloc(a, sizeof *w * (size_t)(n + 1)), total = 0, taken = 0, slow = 0;
    bool *unopt = arena_alloc(a, sizeof *unopt * (size_t)(n + 1));
    s->count = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f)) {
        if (LLVMIsDeclaration(f))
            continue;
        size_t len;
        const char *name = LLVMGetValueName2(f, &len);
        int i = s->count++;
        s->names[i] = arena_strndup(a, name, len);
        w[i] = weight(f);
        unopt[i] = optnone(f);
        s->part[i] = w[i] <= HELPER && LLVMGetLinkage(f) == LLVMInternalLinkage ? IN_BOTH : IN_FIRST;
        total += w[i];
        slow += s->part[i] == IN_FIRST && unopt[i] ? w[i] : 0;
    }
    if (slow * 6 >= total) {
        for (int i = 0; i < s->count; i++)
            if (s->part[i] == IN_FIRST && unopt[i])
                s->part[i] = IN_SECOND;
        s->unoptimised = true;
        return true;
    }
    for (;;) {
        int best = -1;
        for (int i = 0; i < s->count; i++)
            if (s->part[i] == IN_FIRST && taken + w[i] <= total / 2 && (best < 0 || w[i] > w[best]))
                best = i;
        if (best < 0)
            break;
        s->part[best] = IN_SECOND;
        taken += w[best];
    }
    return taken * 6 >= total;
}

/* The part of the code that uses v: the function of an instruction, through constants;
 * a global's initializer counts as both (the constants are in both modules). Adds the
 * parts to *first and *second. */
static void users(const Split *s, LLVMValueRef v, bool *first, bool *second)
{
    for (LLVMUseRef u = LLVMGetFirstUse(v); u; u = LLVMGetNextUse(u)) {
        LLVMValueRef user = LLVMGetUser(u);
        if (LLVMIsAInstruction(user)) {
            Part p = part_of(s, LLVMGetBasicBlockParent(LLVMGetInstructionParent(user)));
            *first |= p != IN_SECOND;
            *second |= p != IN_FIRST;
        } else if (LLVMIsAGlobalValue(user)) {
            *first = *second = true;
        } else {
            users(s, user, first, second);
        }
    }
}

/* A function one module defines and the other uses: hidden and external, so the linker
 * joins the two. Done before the copy, so both modules agree. */
static void export_crossing(LLVMModuleRef mod, const Split *s)
{
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f)) {
        Part p = part_of(s, f);
        bool first = false, second = false;
        users(s, f, &first, &second);
        if (LLVMIsDeclaration(f) || p == IN_BOTH || !(p == IN_FIRST ? second : first))
            continue;
        LLVMSetLinkage(f, LLVMExternalLinkage);
        LLVMSetVisibility(f, LLVMHiddenVisibility);
    }
}

/* fn, defined in the other module: a declaration of the same name and type. */
static void declare_instead(LLVMModuleRef mod, LLVMValueRef fn)
{
    size_t len;
    const char *name = LLVMGetValueName2(fn, &len);
    char *keep = malloc(len + 1);
    if (!keep)
        arena_out_of_memory();
    memcpy(keep, name, len);
    keep[len] = 0;
    LLVMValueRef decl = LLVMAddFunction(mod, "", LLVMGlobalGetValueType(fn));
    LLVMSetFunctionCallConv(decl, LLVMGetFunctionCallConv(fn));
    LLVMReplaceAllUsesWith(fn, decl);
    LLVMDeleteFunction(fn);
    LLVMSetValueName2(decl, keep, len);
    LLVMSetVisibility(decl, LLVMHiddenVisibility);
    free(keep);
}

/* Whether v is used by an instruction or a global's initializer, directly or through
 * constants (dead constant expressions linger after their users are deleted). */
static bool used(LLVMValueRef v)
{
    for (LLVMUseRef u = LLVMGetFirstUse(v); u; u = LLVMGetNextUse(u)) {
        LLVMValueRef user = LLVMGetUser(u);
        if (LLVMIsAInstruction(user) || LLVMIsAGlobalValue(user) || used(user))
            return true;
    }
    return false;
}

/* Deletes a global no one uses any more; its dead constant users first point at null. */
static void drop(LLVMValueRef g, bool fn)
{
    LLVMReplaceAllUsesWith(g, LLVMConstNull(LLVMTypeOf(g)));
    if (fn)
        LLVMDeleteFunction(g);
    else
        LLVMDeleteGlobal(g);
}

/* Keeps the functions of one module (other: the part it does not define): the others
 * declared; in the second, whatever is left unused deleted (the descriptor first, then
 * what only it reached), until nothing changes. */
static void keep_part(LLVMModuleRef mod, const Split *s, Part other)
{
    LLVMValueRef next;
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = next) {
        next = LLVMGetNextFunction(f);
        if (!LLVMIsDeclaration(f) && part_of(s, f) == other)
            declare_instead(mod, f);
    }
    if (other == IN_SECOND)
        return; /* the first: GlobalDCE removes what it no longer uses */
    for (bool changed = true; changed;) {
        changed = false;
        for (LLVMValueRef g = LLVMGetFirstGlobal(mod); g; g = next) {
            next = LLVMGetNextGlobal(g);
            if (!used(g)) {
                drop(g, false);
                changed = true;
            } else if (!LLVMIsDeclaration(g) && LLVMGetLinkage(g) == LLVMExternalLinkage) {
                LLVMSetLinkage(g, LLVMAvailableExternallyLinkage); /* the first defines it */
            }
        }
        for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = next) {
            next = LLVMGetNextFunction(f);
            if (!used(f) && (LLVMIsDeclaration(f) || LLVMGetLinkage(f) != LLVMExternalLinkage)) {
                drop(f, true);
                changed = true;
            }
        }
    }
}

static bool emit_object(LLVMModuleRef mod, LLVMTargetMachineRef tm, const char *path)
{
    char *err = NULL;
    if (LLVMTargetMachineEmitToFile(tm, mod, (char *)path, LLVMObjectFile, &err)) {
        fprintf(stderr, "nnc: error: LLVM code generation failed: %s\n", err ? err : "?");
        LLVMDisposeMessage(err);
        return false;
    }
    return true;
}

/* The second part's thread: its module from the bitcode, pruned, optimised, compiled. */
typedef struct Second {
    LLVMMemoryBufferRef bitcode;
    const Split *split;
    const CgTarget *target;
    int opt_level;
    const char *obj;
    bool ok;
} Second;

static void *second_main(void *arg)
{
    Second *p = arg;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = NULL;
    CgTarget target = *p->target;
    target.opt_level = p->opt_level;
    LLVMTargetMachineRef tm = cg_target_machine(&target);
    p->ok = tm && !LLVMParseBitcodeInContext2(ctx, p->bitcode, &mod);
    if (p->ok) {
        keep_part(mod, p->split, IN_FIRST);
        p->ok = cg_optimise(mod, tm, p->opt_level) && emit_object(mod, tm, p->obj);
    } else {
        fprintf(stderr, "nnc: error: internal error: cannot split the module\n");
    }
    if (mod)
        LLVMDisposeModule(mod);
    if (tm)
        LLVMDisposeTargetMachine(tm);
    LLVMContextDispose(ctx);
    return NULL;
}

static bool start_second(pthread_t *t, Second *p)
{
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0)
        return false;
    bool ok = pthread_attr_setstacksize(&attr, SPLIT_STACK) == 0 &&
              pthread_create(t, &attr, second_main, p) == 0;
    pthread_attr_destroy(&attr);
    return ok;
}

bool cg_split_compile(LLVMModuleRef mod, const CgTarget *t, int opt_level, const char *obj1,
                      const char *obj2, bool *two, Arena *a)
{
    Split split;
    *two = false;
    const char *threads = getenv("NNC_COMPILE_THREADS"); /* "1": one thread (nnc(1)) */
    if (opt_level > 0 && !(threads && strcmp(threads, "1") == 0) && choose(mod, &split, a)) {
        export_crossing(mod, &split);
        Second p = {LLVMWriteBitcodeToMemoryBuffer(mod), &split, t, split.unoptimised ? 0 : opt_level,
                    obj2, false};
        pthread_t thread;
        if (start_second(&thread, &p)) {
            keep_part(mod, &split, IN_SECOND);
            bool ok = cg_optimise(mod, t->tm, opt_level) && emit_object(mod, t->tm, obj1);
            pthread_join(thread, NULL);
            LLVMDisposeMemoryBuffer(p.bitcode);
            *two = true;
            return ok && p.ok;
        }
        LLVMDisposeMemoryBuffer(p.bitcode); /* no thread: all on this one */
    }
    return cg_optimise(mod, t->tm, opt_level) && emit_object(mod, t->tm, obj1);
}
