/* cg_runtime.h - where nnc finds the runtime it links generated code with (cg_runtime.c). */
#ifndef NNC_CG_RUNTIME_H
#define NNC_CG_RUNTIME_H

typedef enum {
    CG_RT_FILE_LIB,    /* libnncrt.a: the runtime library */
    CG_RT_FILE_MAIN,   /* nncrt_main.o: main() of generated executables */
    CG_RT_FILE_HEADER, /* nnc_rt.h */
} CgRtFile;

/* The file's path: in $NNC_RUNTIME_DIR when that is set; else in lib/nnc beside the
 * installed nnc (BIN/../lib/nnc, BIN the folder of /proc/self/exe); else where the build
 * tree made it. NULL after a message when it is in none of these. The string stays valid
 * until the next call with the same file. */
const char *cg_runtime_file(CgRtFile which);

#endif
