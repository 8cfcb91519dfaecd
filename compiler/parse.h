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

#endif
