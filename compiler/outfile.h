/* outfile.h - output files appear whole or not at all: write a temporary beside the
 * target, then rename it into place. */
#ifndef NNC_OUTFILE_H
#define NNC_OUTFILE_H

#include <stdbool.h>
#include <stdio.h>

typedef struct OutFile {
    FILE *f;
    const char *path;
    char tmp[4096];
} OutFile;

/* Opens a fresh temporary beside path; prints "nnc: error: ..." and returns false on failure. */
bool outfile_open(OutFile *o, const char *path);
/* Closes and renames into place; on any failure removes the temporary and returns false. */
bool outfile_commit(OutFile *o);
/* Closes and removes the temporary. */
void outfile_abort(OutFile *o);

#endif
