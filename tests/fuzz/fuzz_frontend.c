/* fuzz_frontend.c - libFuzzer target: any bytes through the scanner, parser and checks,
 * and, when they pass, through lowering, differentiation and the simplifier. Crashes,
 * sanitizer reports and hangs are what it looks for; diagnostics go to /dev/null. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "autodiff.h"
#include "lower.h"
#include "parse.h"
#include "sema.h"
#include "simplify.h"

static FILE *sink;

static void compile(Diag *d, Arena *a)
{
    Program *prog = parse_program(a, d);
    if (!prog || d->nerrors || !sema_check(prog, a, d))
        return;
    for (Model *m = prog->models; m; m = m->next) {
        IrProgram *ir = lower_model(m, a, d);
        if (ir && ad_differentiate(ir, d))
            simp_program(ir);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!sink)
        sink = fopen("/dev/null", "w");
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    Diag d;
    diag_init(&d, "fuzz.nn", text, size);
    d.out = sink;
    Arena *a = arena_new();
    compile(&d, a);
    arena_free(a);
    free(text);
    return 0;
}
