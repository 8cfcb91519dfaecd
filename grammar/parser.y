/* parser.y - the grammar of .nn files: tokens to the syntax tree of ast.h.
 *
 * A pure parser: all state lives in the ParseState reached through the scanner.
 * Precedence is spelled out as grammar layers (sum, term, unary, power, atom) so the rules
 * read like the reference and need no precedence declarations. Lists are left-recursive
 * so long files keep the parser's stack shallow. A syntax error inside a statement or a
 * train option is reported, the rest of it skipped, and parsing goes on. */
%define api.pure full
%define parse.error custom
%locations
%param {yyscan_t scanner}
%expect 0

%code requires {
#include "ast.h"
#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif
}

%code {
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "parse.h"

#define YYMAXDEPTH PARSE_MAX_STACK

int yylex(YYSTYPE *lval, YYLTYPE *lloc, yyscan_t scanner);
ParseState *yyget_extra(yyscan_t scanner);

#define PS (yyget_extra(scanner))
#define AT(l) ((Loc){(l).first_line, (l).first_column})

/* Growable arrays in the arena, doubled as needed. */
typedef struct { Expr **v; int n, cap; } ExprVec;

static void yyerror(YYLTYPE *lloc, yyscan_t scanner, const char *msg);
static Expr *mk(ParseState *ps, ExprKind kind, Loc loc, Expr *lhs, Expr *rhs);
static Expr *mk_call(ParseState *ps, const char *name, Loc loc, Arg *args, int nargs);
static Expr *mk_list(ParseState *ps, Loc loc, Expr **items, int n);
static Arg *push_arg(ParseState *ps, Arg *args, int n, Arg arg);
static Stmt *mk_stmt(ParseState *ps, StmtKind kind, Loc loc, const char *name, Loc name_loc);
static void *push(ParseState *ps, void *arr, int n, size_t size, const void *item);
}

%union {
    double num;
    const char *str;
    Expr *expr;
    Stmt *stmt;
    Datum *datum;
    Sample sample;
    TrainItem *item;
    struct { Arg *v; int n; } args;
    struct { Expr **v; int n; } dims;
    struct { Stmt *head, **tail; } stmts;
    struct { TrainItem *head, **tail; } items;
    struct { Sample *v; int n; } samples;
    struct { Datum **v; int n; } data;
}

%token MODEL "'model'" TRAIN "'train'" INPUT "'input'" TARGET "'target'"
%token PARAM "'param'" OUTPUT "'output'" LOSS "'loss'"
%token <str> NAME "name"
%token <str> STRING "string"
%token <num> NUMBER "number"
%token ARROW "'->'"
%token BAD "invalid token" /* already reported by the scanner */

%type <expr> expr term unary power atom init
%type <args> args arglist
%type <dims> dims dimlist
%type <stmt> stmt
%type <stmts> stmts
%type <item> item
%type <items> items
%type <samples> samples samplelist
%type <sample> sample
%type <datum> datum
%type <data> datalist

%%

/* program -> { model | train | ';' } */
program:
    %empty
  | program model
  | program train
  | program ';'
  | program error
  ;

/* model -> 'model' NAME '{' stmts '}' */
model:
    MODEL NAME '{' stmts '}' {
        Model *m = arena_alloc(PS->arena, sizeof *m);
        m->name = $2;
        m->loc = AT(@1);
        m->name_loc = AT(@2);
        m->stmts = $4.head;
        *PS->model_tail = m;
        PS->model_tail = &m->next;
    }
  ;

/* stmts -> { stmt | ';' }; a broken statement is skipped up to the next one */
stmts:
    %empty          { $$.head = NULL; $$.tail = &$$.head; }
  | stmts stmt      { $$ = $1; *$$.tail = $2; $$.tail = &$2->next; }
  | stmts ';'       { $$ = $1; }
  | stmts error     { $$ = $1; }
  ;

stmt:
    INPUT NAME dims {
        $$ = mk_stmt(PS, ST_INPUT, AT(@1), $2, AT(@2));
        $$->dims = $3.v; $$->ndims = $3.n;
    }
  | TARGET NAME dims {
        $$ = mk_stmt(PS, ST_TARGET, AT(@1), $2, AT(@2));
        $$->dims = $3.v; $$->ndims = $3.n;
    }
  | PARAM NAME dims init {
        $$ = mk_stmt(PS, ST_PARAM, AT(@1), $2, AT(@2));
        $$->dims = $3.v; $$->ndims = $3.n;
        $$->init_expr = $4;
    }
  | NAME '=' expr {
        $$ = mk_stmt(PS, ST_LET, AT(@1), $1, AT(@1));
        $$->value = $3;
    }
  | OUTPUT expr {
        /* Any expression parses, so sema can say "output must name a value". */
        $$ = mk_stmt(PS, ST_OUTPUT, AT(@1), $2->kind == EX_NAME ? $2->str : NULL, $2->loc);
        $$->value = $2;
    }
  | LOSS '=' expr {
        $$ = mk_stmt(PS, ST_LOSS, AT(@1), "loss", AT(@1));
        $$->value = $3;
    }
  ;

/* dims -> [ '[' expr { ',' expr } ']' ]   (none: a scalar) */
dims:
    %empty              { $$.v = NULL; $$.n = 0; }
  | '[' dimlist ']'     { $$ = $2; }
  ;

dimlist:
    expr                { $$.v = push(PS, NULL, 0, sizeof $1, &$1); $$.n = 1; }
  | dimlist ',' expr    { $$.v = push(PS, $1.v, $1.n, sizeof $3, &$3); $$.n = $1.n + 1; }
  ;

init:
    %empty              { $$ = NULL; }
  | '=' expr            { $$ = $2; }
  ;

/* expr -> term { ('+' | '-') term } */
expr:
    term
  | expr '+' term       { $$ = mk(PS, EX_BIN, AT(@2), $1, $3); $$->op = '+'; }
  | expr '-' term       { $$ = mk(PS, EX_BIN, AT(@2), $1, $3); $$->op = '-'; }
  ;

/* term -> unary { ('*' | '/' | '@') unary } */
term:
    unary
  | term '*' unary      { $$ = mk(PS, EX_BIN, AT(@2), $1, $3); $$->op = '*'; }
  | term '/' unary      { $$ = mk(PS, EX_BIN, AT(@2), $1, $3); $$->op = '/'; }
  | term '@' unary      { $$ = mk(PS, EX_BIN, AT(@2), $1, $3); $$->op = '@'; }
  ;

/* unary -> '-' unary | power */
unary:
    power
  | '-' unary           { $$ = mk(PS, EX_NEG, AT(@1), $2, NULL); }
  ;

/* power -> atom [ '^' unary ]: right-associative, and the exponent may be negated */
power:
    atom
  | atom '^' unary      { $$ = mk(PS, EX_BIN, AT(@2), $1, $3); $$->op = '^'; }
  ;

/* atom -> NUMBER | STRING | NAME [ '(' args ')' ] | '(' expr ')' */
atom:
    NUMBER              { $$ = mk(PS, EX_NUM, AT(@1), NULL, NULL); $$->num = $1; }
  | STRING              { $$ = mk(PS, EX_STR, AT(@1), NULL, NULL); $$->str = $1; }
  | NAME                { $$ = mk(PS, EX_NAME, AT(@1), NULL, NULL); $$->str = $1; }
  | NAME '(' args ')'   { $$ = mk_call(PS, $1, AT(@1), $3.v, $3.n); }
  | '(' expr ')'        { $$ = $2; }
  ;

args:
    %empty              { $$.v = NULL; $$.n = 0; }
  | arglist
  ;

/* arglist -> arg { ',' arg }, arg -> [ NAME '=' ] expr | '[' expr { ',' expr } ']'
 * (a bracketed list of constants, as reshape's dims) */
arglist:
    expr                { $$.v = push_arg(PS, NULL, 0, (Arg){NULL, $1->loc, $1}); $$.n = 1; }
  | NAME '=' expr       { $$.v = push_arg(PS, NULL, 0, (Arg){$1, AT(@1), $3}); $$.n = 1; }
  | '[' dimlist ']'     { Expr *l = mk_list(PS, AT(@1), $2.v, $2.n);
                          $$.v = push_arg(PS, NULL, 0, (Arg){NULL, l->loc, l}); $$.n = 1; }
  | arglist ',' expr    { $$.v = push_arg(PS, $1.v, $1.n, (Arg){NULL, $3->loc, $3}); $$.n = $1.n + 1; }
  | arglist ',' '[' dimlist ']' {
                          Expr *l = mk_list(PS, AT(@3), $4.v, $4.n);
                          $$.v = push_arg(PS, $1.v, $1.n, (Arg){NULL, l->loc, l}); $$.n = $1.n + 1; }
  | arglist ',' NAME '=' expr {
                          $$.v = push_arg(PS, $1.v, $1.n, (Arg){$3, AT(@3), $5}); $$.n = $1.n + 1; }
  ;

/* train -> 'train' NAME '{' items '}' */
train:
    TRAIN NAME '{' items '}' {
        Train *t = arena_alloc(PS->arena, sizeof *t);
        t->model_name = $2;
        t->loc = AT(@1);
        t->name_loc = AT(@2);
        t->items = $4.head;
        *PS->train_tail = t;
        PS->train_tail = &t->next;
    }
  ;

items:
    %empty              { $$.head = NULL; $$.tail = &$$.head; }
  | items item          { $$ = $1; *$$.tail = $2; $$.tail = &$2->next; }
  | items ';'           { $$ = $1; }
  | items error         { $$ = $1; }
  ;

/* item -> NAME '=' expr | NAME '=' '[' samples ']' */
item:
    NAME '=' expr {
        $$ = arena_alloc(PS->arena, sizeof *$$);
        $$->key = $1; $$->loc = AT(@1); $$->value = $3;
    }
  | NAME '=' '[' samples ']' {
        $$ = arena_alloc(PS->arena, sizeof *$$);
        $$->key = $1; $$->loc = AT(@1);
        $$->samples = $4.v; $$->nsamples = $4.n; $$->data_loc = AT(@3);
    }
  ;

samples:
    %empty              { $$.v = NULL; $$.n = 0; }
  | samplelist
  | samplelist ','      { $$ = $1; }
  ;

samplelist:
    sample              { $$.v = push(PS, NULL, 0, sizeof $1, &$1); $$.n = 1; }
  | samplelist ',' sample { $$.v = push(PS, $1.v, $1.n, sizeof $3, &$3); $$.n = $1.n + 1; }
  ;

/* sample -> datum [ '->' datum ] */
sample:
    datum               { $$.loc = $1->loc; $$.x = $1; $$.t = NULL; }
  | datum ARROW datum   { $$.loc = $1->loc; $$.x = $1; $$.t = $3; }
  ;

/* datum -> expr | '[' [ datum { ',' datum } ] ']' */
datum:
    expr {
        $$ = arena_alloc(PS->arena, sizeof *$$);
        $$->loc = $1->loc; $$->num = $1;
    }
  | '[' ']' {
        $$ = arena_alloc(PS->arena, sizeof *$$);
        $$->loc = AT(@1); $$->is_list = true;
    }
  | '[' datalist ']' {
        $$ = arena_alloc(PS->arena, sizeof *$$);
        $$->loc = AT(@1); $$->is_list = true; $$->items = $2.v; $$->nitems = $2.n;
    }
  ;

datalist:
    datum               { $$.v = push(PS, NULL, 0, sizeof $1, &$1); $$.n = 1; }
  | datalist ',' datum  { $$.v = push(PS, $1.v, $1.n, sizeof $3, &$3); $$.n = $1.n + 1; }
  ;

%%

/* Appends one item, doubling the array at powers of two so a list of n costs O(n). */
static void *push(ParseState *ps, void *arr, int n, size_t size, const void *item)
{
    if (n == 0 || (n & (n - 1)) == 0)
        arr = arena_grow(ps->arena, arr, size * (size_t)n, size * (size_t)(n ? 2 * n : 1));
    memcpy((char *)arr + size * (size_t)n, item, size);
    return arr;
}

static Arg *push_arg(ParseState *ps, Arg *args, int n, Arg arg)
{
    return push(ps, args, n, sizeof arg, &arg);
}

/* Deep trees are refused here, once, so no later recursive pass can run out of stack. */
static void limit_depth(ParseState *ps, Expr *e)
{
    if (e->depth <= PARSE_MAX_EXPR_DEPTH || ps->depth_reported)
        return;
    ps->depth_reported = true;
    ps->errors++;
    diag_error(ps->diag, e->loc, "expression is nested too deeply (more than %d levels)",
               PARSE_MAX_EXPR_DEPTH);
}

static Expr *mk(ParseState *ps, ExprKind kind, Loc loc, Expr *lhs, Expr *rhs)
{
    Expr *e = arena_alloc(ps->arena, sizeof *e);
    e->kind = kind;
    e->loc = loc;
    e->lhs = lhs;
    e->rhs = rhs;
    int below = lhs ? lhs->depth : 0;
    if (rhs && rhs->depth > below)
        below = rhs->depth;
    e->depth = below + 1;
    limit_depth(ps, e);
    return e;
}

static Expr *mk_call(ParseState *ps, const char *name, Loc loc, Arg *args, int nargs)
{
    Expr *e = mk(ps, EX_CALL, loc, NULL, NULL);
    e->str = name;
    e->args = args;
    e->nargs = nargs;
    for (int i = 0; i < nargs; i++)
        if (args[i].value->depth >= e->depth)
            e->depth = args[i].value->depth + 1;
    limit_depth(ps, e);
    return e;
}

/* [e1, ...]: the items as positional arguments of a list node. */
static Expr *mk_list(ParseState *ps, Loc loc, Expr **items, int n)
{
    Arg *args = NULL;
    for (int i = 0; i < n; i++)
        args = push_arg(ps, args, i, (Arg){NULL, items[i]->loc, items[i]});
    Expr *e = mk_call(ps, NULL, loc, args, n);
    e->kind = EX_LIST;
    return e;
}

static Stmt *mk_stmt(ParseState *ps, StmtKind kind, Loc loc, const char *name, Loc name_loc)
{
    Stmt *s = arena_alloc(ps->arena, sizeof *s);
    s->kind = kind;
    s->loc = loc;
    s->name = name;
    s->name_loc = name_loc;
    return s;
}

/* Only bison's own failures come here ("memory exhausted" when the stack is full). */
static void yyerror(YYLTYPE *lloc, yyscan_t scanner, const char *msg)
{
    ParseState *ps = PS;
    ps->errors++;
    if (strcmp(msg, "memory exhausted") == 0)
        diag_error(ps->diag, AT(*lloc), "input is nested too deeply (more than %d open brackets "
                   "and operators)", PARSE_MAX_STACK);
    else
        diag_error(ps->diag, AT(*lloc), "%s", msg);
}

/* A symbol's name as the grammar spells it, without bison's quoting. */
static const char *symbol(yysymbol_kind_t kind, char *buf, size_t size)
{
    const char *name = yysymbol_name(kind);
    size_t n = strlen(name);
    if (n >= 2 && name[0] == '"' && name[n - 1] == '"')
        snprintf(buf, size, "%.*s", (int)(n - 2), name + 1);
    else
        snprintf(buf, size, "%s", name);
    return buf;
}

/* The unexpected token as the user wrote it: "unexpected name 'foo'". */
static void describe_lookahead(ParseState *ps, yysymbol_kind_t kind, char *buf, size_t size)
{
    char name[64];
    if (kind == YYSYMBOL_YYEOF)
        snprintf(buf, size, "end of file");
    else if (kind == YYSYMBOL_NAME || kind == YYSYMBOL_NUMBER || kind == YYSYMBOL_STRING)
        snprintf(buf, size, "%s '%.*s%s'", symbol(kind, name, sizeof name),
                 ps->tok_len > 32 ? 32 : ps->tok_len, ps->tok_text, ps->tok_len > 32 ? "..." : "");
    else
        snprintf(buf, size, "%s", symbol(kind, name, sizeof name));
}

/* "unexpected X, expected A, B or C" (the list only when it is short enough to help). */
static int yyreport_syntax_error(const yypcontext_t *ctx, yyscan_t scanner)
{
    ParseState *ps = PS;
    if (yypcontext_token(ctx) == YYSYMBOL_BAD)
        return 0;
    enum { MAX_LISTED = 6 };
    yysymbol_kind_t expected[MAX_LISTED + 1];
    int n = yypcontext_expected_tokens(ctx, expected, MAX_LISTED + 1);
    char got[96], list[512] = "", name[64];
    describe_lookahead(ps, yypcontext_token(ctx), got, sizeof got);
    if (n > 0 && n <= MAX_LISTED) {
        size_t len = (size_t)snprintf(list, sizeof list, ", expected ");
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
                                    i == 0 ? "" : i == n - 1 ? " or " : ", ",
                                    symbol(expected[i], name, sizeof name));
    }
    ps->errors++;
    diag_error(ps->diag, AT(*yypcontext_location(ctx)), "syntax error: unexpected %s%s", got, list);
    return 0;
}
