/* check.h - `nnc --check`: symbolic gradients against central differences, in f64. */
#ifndef NNC_CHECK_H
#define NNC_CHECK_H

#include <stdio.h>

#include "ast.h"
#include "diag.h"
#include "ir.h"

/* Prints the max relative error per param to out; returns the exit status (0 all pass). */
int check_gradients(const IrProgram *p, const Model *m, Diag *d, FILE *out);

#endif
