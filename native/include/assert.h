/* Freestanding build: no assertions (xxhash.h's static ones stay). */
#define assert(x) ((void)0)
#define static_assert _Static_assert
