/* check.h - `nnc --check`: symbolic gradients against central differences, in f64. */
#ifndef NNC_CHECK_H
#define NNC_CHECK_H

#include <stdio.h>

#include "ast.h"
#include "diag.h"
#include "ir.h"

/* Prints the max relative error per param to out; returns the exit status (0 all pass). */
int check_gradients(const IrProgram *p, const Model *m, Diag *d, FILE *out);

/* The check itself, on given params (params[i]: param i's values, f64) and n samples
 * (x: n inputs, t: n targets or NULL, row-major): prints one line per param and a
 * verdict to out; returns 0 when every param passes, 1 otherwise. */
int check_program(const IrProgram *p, const double *const *params, int n, const double *x,
                  const double *t, FILE *out);

#endif
