/* fuzz_idx.c - libFuzzer target: the IDX reader on an images file and a labels file. Byte 0
 * picks the model (bits 0-1 the input: 1, 4, 9 or 784 values; bits 2-5 the target: 0 to 15
 * elements; bit 6 f64), bytes 1-2 the images file's length (little-endian, cut to what is
 * left); the images follow, then the labels. Either file may be gzipped. */
#include "fuzz_rt.h"
#include "nnc_rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FuzzFile images, labels;
    static const int inputs[4] = {1, 4, 9, 784};
    if (size < 3)
        return 0;
    unsigned o = data[0];
    size_t n = (size_t)(data[1] | data[2] << 8), rest = size - 3;
    if (n > rest)
        n = rest;
    fuzz_file(&images, data + 3, n);
    fuzz_file(&labels, data + 3 + n, rest - n);
    NncSourceDesc src = {.kind = NNC_SRC_IDX, .path = images.path, .path2 = labels.path};
    NncData d;
    if (nnc_load_data(&src, NULL, inputs[o & 3], o >> 2 & 15, o & 64 ? 8 : 4, &d) == 0)
        nnc_free_data(&d);
    return 0;
}
