/* train_xor.c - the xor model of examples/xor.nn used from C through its library:
 * trained with xor_train_step, asked for predictions, saved as xor.npz.
 *
 *   nnc --emit=lib ../xor.nn              # libxor.a and xor.h
 *   cc train_xor.c libxor.a -lm -lz -lpthread -o train_xor
 *   ./train_xor                           # then: python3 predict.py */
#include <stdio.h>

#include "xor.h"

int main(void)
{
    const float x[4 * xor_INPUT_SIZE] = {0, 0, 0, 1, 1, 0, 1, 1};
    const float t[4 * xor_TARGET_SIZE] = {0, 1, 1, 0};
    xor_model *m = xor_new(1); /* the train block's seed: the executable's initial weights */
    if (!m) {
        fprintf(stderr, "train_xor: %s\n", xor_error());
        return 1;
    }
    float loss = 0;
    for (int epoch = 0; epoch < 3000; epoch++) /* the train block's 3000 epochs of one batch */
        loss = xor_train_step(m, 4, x, t);
    printf("loss %.6f\n", loss);

    float y[4 * xor_OUTPUT_SIZE];
    xor_predict(m, 4, x, y);
    for (int i = 0; i < 4; i++)
        printf("%g xor %g = %.4f\n", x[2 * i], x[2 * i + 1], y[i]);

    int count;
    const float *w1 = xor_param(m, "W1", &count);
    printf("W1 has %d values, the first %.4f\n", count, w1[0]);
    if (xor_save(m, "xor.npz") != 0) {
        fprintf(stderr, "train_xor: %s\n", xor_error());
        xor_free(m);
        return 1;
    }
    printf("saved xor.npz\n");
    xor_free(m);
    return 0;
}
