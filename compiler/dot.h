/* dot.h - the forward and backward graphs as Graphviz (--emit=dot). */
#ifndef NNC_DOT_H
#define NNC_DOT_H

#include <stdio.h>

#include "diag.h"
#include "ir.h"

/* Writes p as one digraph: a cluster for the forward pass, one for the backward pass,
 * each node its op, shape and source line; params, inputs and gradients marked by shape
 * and colour; edges into backward nodes dashed. Deterministic. */
void dot_print(FILE *out, const IrProgram *p, const Diag *d);

#endif
