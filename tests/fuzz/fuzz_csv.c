/* fuzz_csv.c - libFuzzer target: the csv reader. The first byte picks the options (bit 0
 * header, bit 1 label, bit 2 f64, bits 3-4 inputs - 1, bits 5-6 targets); the rest is the
 * file, plain or gzipped. */
#include "fuzz_rt.h"
#include "nnc_rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FuzzFile file;
    if (size < 1)
        return 0;
    unsigned o = data[0];
    NncSourceDesc src = {.kind = NNC_SRC_CSV, .header = o & 1, .label = o >> 1 & 1};
    int real_size = o & 4 ? 8 : 4, in_size = 1 + (o >> 3 & 3), tgt_size = o >> 5 & 3;
    fuzz_file(&file, data + 1, size - 1);
    src.path = file.path;
    NncData d;
    if (nnc_load_data(&src, NULL, in_size, tgt_size, real_size, &d) == 0)
        nnc_free_data(&d);
    return 0;
}
