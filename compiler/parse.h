/* parse.h - the front door of the front end: source text to syntax tree.
 * The scanner (grammar/lexer.l) and parser (grammar/parser.y) are reentrant and share
 * no globals; they report through the Diag and allocate in the Arena. */
#ifndef NNC_PARSE_H
#define NNC_PARSE_H

#include <stdio.h>

#include "arena.h"
#include "ast.h"
#include "diag.h"

/* Parses d->text. Returns NULL when there were syntax errors (all reported). */
Program *parse_program(Arena *a, Diag *d);
/* --emit=tokens: one token a line with its location. Returns the number of lexical errors. */
int parse_dump_tokens(Diag *d, FILE *out);

/* ---- shared by grammar/lexer.l and grammar/parser.y only ---- */

/* Nesting limits: the tree depth of one expression (sema and later stages recurse over
 * it), and the parser's stack (brackets and unary minus pile up there). */
enum { PARSE_MAX_EXPR_DEPTH = 1000, PARSE_MAX_STACK = 10000 };

/* The scanner's extra data: everything the scanner and the parser share. */
typedef struct ParseState {
    Arena *arena;
    Diag *diag;
    Program *prog;
    Model **model_tail;
    Train **train_tail;
    int line, col;           /* where the next token starts (1-based, col in bytes) */
    const char *tok_text;    /* the last token scanned, for syntax error messages */
    int tok_len;
    Loc tok_end;             /* just past the last token that is not white space */
    int errors;              /* lexical and syntax errors */
    Loc bad_end;             /* just past the last unexpected character (runs are one error) */
    bool depth_reported;
} ParseState;

#endif
