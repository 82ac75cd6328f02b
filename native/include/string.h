/* Freestanding build: the compiler's own (memory.copy and memory.fill with bulk memory). */
#include <stddef.h>
#define memcpy __builtin_memcpy
#define memset __builtin_memset
#define memmove __builtin_memmove
#define memcmp __builtin_memcmp
