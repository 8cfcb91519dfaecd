/* irprint.h - the IR as people read it (--emit=ir, --emit=grad). */
#ifndef NNC_IRPRINT_H
#define NNC_IRPRINT_H

#include <stdbool.h>
#include <stdio.h>

#include "diag.h"
#include "ir.h"

/* Prints the forward pass, and the backward pass too when with_grad. Deterministic. */
void ir_print(FILE *out, const IrProgram *p, const Diag *d, bool with_grad);
/* "h = sigmoid(h.2)": node id's definition, operands by name (nameless ones inline).
 * Autodiff uses it to say which forward step a backward line comes from. */
const char *ir_print_expr(const IrProgram *p, int id, Arena *a);

#endif
