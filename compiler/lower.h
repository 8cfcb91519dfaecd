/* lower.h - a checked model becomes the forward IR. */
#ifndef NNC_LOWER_H
#define NNC_LOWER_H

#include "diag.h"
#include "ir.h"

/* Returns NULL after reporting an error. Recognises the fused losses
 * cross_entropy(softmax(z), t) and bce(sigmoid(z), t). */
IrProgram *lower_model(const Model *m, Arena *a, Diag *d);

#endif
