/* arena.h - one bump allocator per compilation; everything is freed at once. */
#ifndef NNC_ARENA_H
#define NNC_ARENA_H

#include <stddef.h>

typedef struct Arena Arena;

/* Prints "nnc: error: out of memory" and exits 1: where every failed allocation of the
 * compiler ends (a message, never a crash). */
_Noreturn void arena_out_of_memory(void);
/* calloc for memory freed before the arena is (per-pass tables); never returns NULL. */
void *arena_xcalloc(size_t n, size_t size);

Arena *arena_new(void);
void arena_free(Arena *a);
/* Zeroed, aligned for any type; aborts with a message when memory runs out. */
void *arena_alloc(Arena *a, size_t size);
/* Grows an array allocated from the arena (old contents copied, old block abandoned). */
void *arena_grow(Arena *a, void *old, size_t old_size, size_t new_size);
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
