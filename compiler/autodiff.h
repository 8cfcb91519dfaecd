/* autodiff.h - reverse-mode differentiation of the IR, source to source. */
#ifndef NNC_AUTODIFF_H
#define NNC_AUTODIFF_H

#include "diag.h"
#include "ir.h"

/* Appends the backward pass to p (after nforward) and sets params[i].grad.
 * Warns for params the loss does not depend on. Returns false after an error. */
bool ad_differentiate(IrProgram *p, Diag *d);

#endif
