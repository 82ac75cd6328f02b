/* Freestanding build: xxhash.h includes <stdlib.h> for malloc and free, which XXH_NO_STREAM leaves unused. */
#include <stddef.h>
static inline void *malloc(size_t n) { (void)n; return 0; }
static inline void free(void *p) { (void)p; }
