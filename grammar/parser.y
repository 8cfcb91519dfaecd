/* parser.y - PLACEHOLDER grammar until the front end lands. */
%define api.pure full
%define parse.error detailed
%locations
%param {void *scanner}
%code requires {
#include "ast.h"
}
%code {
#include "arena.h"
#include "parse.h"
int yylex(YYSTYPE *lval, YYLTYPE *lloc, void *scanner);
static void yyerror(YYLTYPE *lloc, void *scanner, const char *msg) { (void)lloc; (void)scanner; (void)msg; }
}
%token END_PLACEHOLDER
%%
program: %empty ;
%%
