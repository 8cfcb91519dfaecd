/* fuzz_idx.c - libFuzzer target: the IDX reader on an images file and a labels file. Byte 0
 * picks the model (bits 0-1 the input: 1, 4, 9 or 784 values; bits 2-5 the target: 0 to 15
 * elements; bit 6 f64) and, with bit 7, --predict's reader of pieces (rt_idx_in_*: pieces
 * of 1 to 8 images, bits 2-4 again) instead of the whole-file one; bytes 1-2 the images
 * file's length (little-endian, cut to what is left); the images follow, then the labels.
 * Either file may be gzipped. */
#include "fuzz_rt.h"
#include "nnc_rt.h"
#include "rt_internal.h"

/* Every piece in turn, as --predict reads them, then the checks at the end. */
static void read_pieces(const char *images, const char *labels, int in_size, int tgt_size,
                        int real_size, int piece)
{
    RtIdxIn *in = rt_idx_in_open(images, labels, in_size, tgt_size);
    if (!in)
        return;
    void *x = malloc((size_t)piece * (size_t)in_size * (size_t)real_size);
    int count = rt_idx_in_count(in), ok = x != NULL;
    for (int at = 0; ok && at < count; at += piece)
        ok = rt_idx_in_read(in, x, count - at < piece ? count - at : piece, real_size) == 0;
    if (ok)
        rt_idx_in_finish(in);
    free(x);
    rt_idx_in_close(in);
}

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
    if (o & 128) {
        read_pieces(images.path, rest > n ? labels.path : NULL, inputs[o & 3], o >> 2 & 15,
                    o & 64 ? 8 : 4, 1 + (o >> 2 & 7));
        return 0;
    }
    NncSourceDesc src = {.kind = NNC_SRC_IDX, .path = images.path, .path2 = labels.path};
    NncData d;
    if (nnc_load_data(&src, NULL, inputs[o & 3], o >> 2 & 15, o & 64 ? 8 : 4, &d) == 0)
        nnc_free_data(&d);
    return 0;
}
