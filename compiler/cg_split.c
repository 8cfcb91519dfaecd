/* cg_split.c - an executable's code made on two threads.
 *
 * -O2 and code generation are most of a compile (fashion_mlp: 0.26 s and 0.2 s of 0.6),
 * and the task kernels (functions only ever passed by address to nnc_rt_parallel) hold
 * most of the code. So the unoptimised module is cut in two: the module as built keeps
 * everything but a share of the kernels, which it declares; a copy made through bitcode
 * in a context of its own keeps only that share (and the helpers they call), defined with
 * hidden external linkage. Each part is optimised and compiled to an object on its own
 * thread with its own target machine, and the linker joins the two objects. A kernel's
 * code does not depend on the part it lands in: same instructions, same bits. */
#include "cg.h"

#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SPLIT_STACK = 64 << 20 }; /* as main.c's compile thread: LLVM recurses on deep code */

/* Whether v's every use is as an argument of a call (through constant casts): a task
 * kernel's address going to nnc_rt_parallel; not a function that is called, nor one a
 * global refers to (nnc_train in the descriptor). */
static bool passed_only(LLVMValueRef v)
{
    for (LLVMUseRef u = LLVMGetFirstUse(v); u; u = LLVMGetNextUse(u)) {
        LLVMValueRef user = LLVMGetUser(u);
        if (LLVMIsACallInst(user)) {
            if (LLVMGetCalledValue(user) == v)
                return false;
        } else if (!LLVMIsAConstantExpr(user) || !passed_only(user)) {
            return false;
        }
    }
    return true;
}

static bool is_kernel(LLVMValueRef fn)
{
    return !LLVMIsDeclaration(fn) && LLVMGetLinkage(fn) == LLVMInternalLinkage &&
           LLVMGetFirstUse(fn) && passed_only(fn);
}

/* The work a function gives LLVM: its instructions, a quarter for an optnone one (no
 * -O2, the fast instruction selector). */
static long weight(LLVMValueRef fn)
{
    long n = 0;
    for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb))
        for (LLVMValueRef i = LLVMGetFirstInstruction(bb); i; i = LLVMGetNextInstruction(i))
            n++;
    unsigned optnone = LLVMGetEnumAttributeKindForName("optnone", 7);
    return LLVMGetEnumAttributeAtIndex(fn, LLVMAttributeFunctionIndex, optnone) ? n / 4 : n;
}

/* The names of the kernels the second part takes. */
typedef struct Share {
    char **names;
    int count;
} Share;

static bool in_share(const Share *s, LLVMValueRef fn)
{
    size_t len;
    const char *name = LLVMGetValueName2(fn, &len);
    for (int i = 0; i < s->count; i++)
        if (strlen(s->names[i]) == len && memcmp(s->names[i], name, len) == 0)
            return true;
    return false;
}

/* Kernels in module order go to the second part while it stays within half the module's
 * weight; false when it would get less than a sixth (a small module: one thread). */
static bool choose_share(LLVMModuleRef mod, Share *s, Arena *a)
{
    long total = 0, taken = 0;
    int kernels = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f)) {
        total += weight(f);
        kernels += is_kernel(f);
    }
    s->names = arena_alloc(a, sizeof *s->names * (size_t)(kernels + 1));
    s->count = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f)) {
        long w = weight(f);
        if (!is_kernel(f) || taken + w > total / 2)
            continue;
        size_t len;
        const char *name = LLVMGetValueName2(f, &len);
        s->names[s->count++] = arena_strndup(a, name, len);
        taken += w;
    }
    return taken * 6 >= total;
}

/* fn, defined in the other part: a declaration of the same name and type. */
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

/* The first part: the shared kernels only declared. */
static void keep_first(LLVMModuleRef mod, const Share *s)
{
    LLVMValueRef next;
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = next) {
        next = LLVMGetNextFunction(f);
        if (!LLVMIsDeclaration(f) && in_share(s, f))
            declare_instead(mod, f);
    }
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

/* The second part: the shared kernels, hidden and external; everything they do not use
 * deleted (the descriptor first, then what only it reached), until nothing changes. */
static void keep_second(LLVMModuleRef mod, const Share *s)
{
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f))
        if (!LLVMIsDeclaration(f) && in_share(s, f)) {
            LLVMSetLinkage(f, LLVMExternalLinkage);
            LLVMSetVisibility(f, LLVMHiddenVisibility);
        }
    bool changed = true;
    while (changed) {
        changed = false;
        LLVMValueRef next;
        for (LLVMValueRef g = LLVMGetFirstGlobal(mod); g; g = next) {
            next = LLVMGetNextGlobal(g);
            if (LLVMGetLinkage(g) == LLVMExternalLinkage && !LLVMIsDeclaration(g))
                LLVMSetLinkage(g, LLVMInternalLinkage); /* the first part defines it */
            if (!used(g)) {
                drop(g, false);
                changed = true;
            }
        }
        for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = next) {
            next = LLVMGetNextFunction(f);
            if (!in_share(s, f) && !used(f)) {
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
    const Share *share;
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
    LLVMTargetMachineRef tm = cg_target_machine(p->target);
    p->ok = tm && !LLVMParseBitcodeInContext2(ctx, p->bitcode, &mod);
    if (p->ok) {
        keep_second(mod, p->share);
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
    Share share;
    *two = false;
    if (opt_level > 0 && choose_share(mod, &share, a)) {
        Second p = {LLVMWriteBitcodeToMemoryBuffer(mod), &share, t, opt_level, obj2, false};
        pthread_t thread;
        if (start_second(&thread, &p)) {
            keep_first(mod, &share);
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
