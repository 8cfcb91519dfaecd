/* sema.h - names, shapes and the train block checked; dense expanded. */
#ifndef NNC_SEMA_H
#define NNC_SEMA_H

#include <stdio.h>

#include "arena.h"
#include "ast.h"
#include "diag.h"

/* Checks the whole program, filling the sema fields of ast.h. Returns true when no error
 * was reported. After an error the tree may be only partly annotated. */
bool sema_check(Program *p, Arena *a, Diag *d);
/* The model to compile: the only one, or the one named (NULL name: there must be one). */
Model *sema_pick_model(Program *p, const char *name, Diag *d);
/* Every param's initialiser gives finite values at real_size (4: f32, 8: f64): a located
 * error for each that can overflow (const(1e39) at f32, uniform(-1e308, 1e308), ...). */
bool sema_check_inits(const Model *m, int real_size, Diag *d);
/* --emit=ast: the checked tree, with shapes, deterministic. */
void sema_print_ast(FILE *out, const Program *p);

#endif
