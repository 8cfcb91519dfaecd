/* diag.h - diagnostics: "FILE:LINE:COL: error: MESSAGE", the source line, a caret.
 * The format is fixed: golden tests and users' scripts depend on it. */
#ifndef NNC_DIAG_H
#define NNC_DIAG_H

#include <stddef.h>
#include <stdio.h>

/* A place in the source; line and col are 1-based, col counts bytes.
 * line == 0 means "no place" (the message is printed without a caret). */
typedef struct Loc {
    int line, col;
} Loc;

typedef struct Diag {
    const char *path; /* the file as named on the command line */
    const char *text; /* whole source, NUL-terminated (may hold NUL bytes before len) */
    size_t len;
    int nerrors, nwarnings;
    int max_errors;   /* stop reporting (but keep counting) past this many; 0 = 20 */
    FILE *out;        /* stderr unless a test redirects it */
} Diag;

void diag_init(Diag *d, const char *path, const char *text, size_t len);
void diag_error(Diag *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_warning(Diag *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Diag *d, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The text of source line `line` (without its newline) and its length. */
const char *diag_line(const Diag *d, int line, size_t *len);

#endif
