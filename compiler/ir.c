/* ir.c - PLACEHOLDER until the module lands: reports that the stage is missing. */
#include "ir.h"
IrProgram *ir_new(Arena *arena) { IrProgram *p = arena_alloc(arena, sizeof *p); p->arena = arena; return p; }
