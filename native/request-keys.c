/*
 * Request keys made where a batch's lines are, in the shared WebAssembly memory the lines pool's
 * buffers are in (src/internal/lines-memory.ts): XXH3-128 (seed 0) of each line without its
 * custom_id's value, and the line's record of request-keys.tsv. Built by scripts/build-request-keys-wasm.sh
 * into src/core/requests/request-keys-wasm.ts; the hash is xxHash's own code (xxhash.h, XXH_INLINE_ALL).
 *
 * Why not hash-wasm's module, which the keys were made with before: its memory is its own, so each
 * line was copied into it, then moved to its input buffer's start, then hashed (~250 ns a ~970-byte
 * line on a render thread). Here a line is hashed where it was rendered (~110 ns).
 */
#define XXH_INLINE_ALL
#define XXH_NO_STREAM
#include <stdint.h>
#include <wasm_simd128.h>
#include <xxhash.h>

static const char HEX[16] = "0123456789abcdef";

/*
 * XXH3's long-input steps in WebAssembly SIMD (xxhash.h 0.8.1 has none, so its scalar ones were
 * used: ~20% slower on a 1 KB line), as its SSE2 ones: a stripe of 64 bytes in four 128-bit lanes.
 */
static void accumulate512(void *restrict acc, const void *restrict input, const void *restrict secret) {
  for (int i = 0; i < 4; i++) {
    v128_t data = wasm_v128_load((const uint8_t *)input + 16 * i);
    v128_t key = wasm_v128_xor(data, wasm_v128_load((const uint8_t *)secret + 16 * i));
    /* Each 64-bit lane's low half times its high half, and the data's lanes swapped, added in. */
    v128_t product = wasm_u64x2_extmul_low_u32x4(wasm_i32x4_shuffle(key, key, 0, 2, 0, 2),
                                                 wasm_i32x4_shuffle(key, key, 1, 3, 1, 3));
    v128_t sum = wasm_i64x2_add(product, wasm_i64x2_shuffle(data, data, 1, 0));
    uint8_t *at = (uint8_t *)acc + 16 * i;
    wasm_v128_store(at, wasm_i64x2_add(wasm_v128_load(at), sum));
  }
}

static void scramble(void *restrict acc, const void *restrict secret) {
  const v128_t prime = wasm_i64x2_splat(XXH_PRIME32_1);
  for (int i = 0; i < 4; i++) {
    uint8_t *at = (uint8_t *)acc + 16 * i;
    v128_t a = wasm_v128_load(at);
    a = wasm_v128_xor(a, wasm_u64x2_shr(a, 47));
    a = wasm_v128_xor(a, wasm_v128_load((const uint8_t *)secret + 16 * i));
    wasm_v128_store(at, wasm_i64x2_mul(a, prime));
  }
}

/* XXH3-128, seed 0: xxhash.h's own for up to 240 bytes, its long hash with the steps above past that. */
static XXH128_hash_t hash128(const uint8_t *input, size_t len) {
  if (len <= XXH3_MIDSIZE_MAX) return XXH3_128bits(input, len);
  return XXH3_hashLong_128b_internal(input, len, XXH3_kSecret, sizeof(XXH3_kSecret), accumulate512,
                                     scramble);
}

/*
 * The keys (and records) of `n` lines of the buffer at `data`; positions are offsets into it.
 * `lines`: 4n int32s, the lines' starts (-1: no line), ends (newline included or not), and where
 * each custom_id's value begins and ends. Line i's key goes to `out + 16 i` (canonical, big-endian).
 * `records` >= 0: line i's record `"<id>"\t<32 hex digits>\t*\n` is written at `data + records`,
 * one after another, and `recordAt[i]`..`recordAt[i + 1]` says where it is (empty without a line).
 * `saved`: room for the bytes from a line's start to its id's end (the caller sizes it).
 *
 * The hashed bytes are the head (before the id's value) and the tail (after it): the head is moved
 * next to the tail over the id's place, hashed with it in one call, and the line put back. The
 * buffer is the caller's alone while this runs (the render thread's batch).
 */
__attribute__((export_name("keys"))) void keys(uint8_t *data, uint32_t n, const int32_t *lines,
                                                uint8_t *out, int32_t *recordAt, int32_t records,
                                                uint8_t *saved) {
  const int32_t *starts = lines, *ends = lines + n, *idFroms = lines + 2 * n, *idTos = lines + 3 * n;
  int32_t p = records;
  if (records >= 0) recordAt[0] = p;
  for (uint32_t i = 0; i < n; i++) {
    int32_t start = starts[i];
    if (start >= 0) {
      int32_t end = ends[i];
      int32_t idFrom = idFroms[i], idTo = idTos[i];
      if (end > idTo && data[end - 1] == '\n') end--;
      int32_t head = idFrom - start;
      int32_t span = idTo - start;
      __builtin_memcpy(saved, data + start, span);
      __builtin_memmove(data + idTo - head, saved, head);
      XXH128_hash_t hash = hash128(data + idTo - head, (size_t)(end - idTo + head));
      __builtin_memcpy(data + start, saved, span);
      XXH128_canonical_t *key = (XXH128_canonical_t *)(out + 16 * i);
      XXH128_canonicalFromHash(key, hash);
      if (records >= 0) {
        uint8_t *r = data + p;
        *r++ = '"';
        for (int32_t k = idFrom; k < idTo; k++) *r++ = data[k];
        *r++ = '"';
        *r++ = '\t';
        /* The key's 32 hex digits: each byte's two nibbles looked up in one swizzle each. */
        v128_t bytes = wasm_v128_load(key->digest);
        v128_t digits = wasm_v128_load(HEX);
        v128_t high = wasm_i8x16_swizzle(digits, wasm_u8x16_shr(bytes, 4));
        v128_t low = wasm_i8x16_swizzle(digits, wasm_v128_and(bytes, wasm_i8x16_splat(15)));
        wasm_v128_store(r, wasm_i8x16_shuffle(high, low, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23));
        wasm_v128_store(r + 16,
                        wasm_i8x16_shuffle(high, low, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31));
        r += 32;
        *r++ = '\t';
        *r++ = '*';
        *r++ = '\n';
        p = (int32_t)(r - data);
      }
    }
    if (records >= 0) recordAt[i + 1] = p;
  }
}
