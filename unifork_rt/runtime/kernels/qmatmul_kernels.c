/* unifork-rt: the integer GEMM described in qmatmul_kernels.h. */
#include "qmatmul_kernels.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int uk_isa(void) {
  static int isa = -1;
  if (isa >= 0) return isa;
  __builtin_cpu_init();
  const char* want = getenv("UNIFORK_RT_ISA");
  int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  int vnni = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vnni");
  isa = vnni ? UK_ISA_AVX512_VNNI : avx2 ? UK_ISA_AVX2 : UK_ISA_NONE;
  if (want && !strcmp(want, "avx2") && avx2) isa = UK_ISA_AVX2;
  if (want && !strcmp(want, "none")) isa = UK_ISA_NONE;
  return isa;
}

static int64_t nblocks(const uk_shape* s) { return s->kp / s->block; }
/* 64-byte vectors per block: 8 k per vector with 4 bits, 4 k with 8 bits */
static int64_t vecs_per_block(const uk_shape* s) { return s->block / (s->bits == 4 ? 8 : 4); }

size_t uk_packed_bytes(const uk_shape* s) { return (size_t)(s->np / 16) * nblocks(s) * vecs_per_block(s) * 64; }
size_t uk_packed_scales(const uk_shape* s) { return (size_t)(s->np / 16) * nblocks(s) * 16; }

/* 4 consecutive k of one column in the packed layout, from the 4 source bytes at k0/2 (8 nibbles, k0..k0+7
 * with the even k in the low nibble): byte i = nibble(k0 + i) | nibble(k0 + 4 + i) << 4 */
static uint32_t repack_nibbles(const uint8_t* b) {
  uint32_t o0 = (uint32_t)((b[0] & 15) | ((b[2] & 15) << 4)), o1 = (uint32_t)((b[0] >> 4) | (b[2] & 0xF0));
  uint32_t o2 = (uint32_t)((b[1] & 15) | ((b[3] & 15) << 4)), o3 = (uint32_t)((b[1] >> 4) | (b[3] & 0xF0));
  return o0 | o1 << 8 | o2 << 16 | o3 << 24;
}

void uk_pack(const uk_shape* s, const uint8_t* src, const float* scales, uint8_t* dst, float* dst_scales) {
  int64_t nb = nblocks(s), vpb = vecs_per_block(s);
  size_t row_bytes = (size_t)(s->kp * s->bits / 8);
  /* padding columns hold the zero point (weight 0): 8 in both nibbles, or 128 */
  const uint32_t pad = s->bits == 4 ? 0x88888888u : 0x80808080u;
  for (int64_t g = 0; g < s->np / 16; g++)
    for (int64_t b = 0; b < nb; b++) {
      uint8_t* out = dst + ((size_t)g * nb + b) * vpb * 64;
      for (int j = 0; j < 16; j++) {
        int64_t n = 16 * g + j;
        const uint8_t* row = src + (size_t)n * row_bytes;
        for (int64_t v = 0; v < vpb; v++) {
          uint32_t word = pad;
          if (n < s->n) {
            if (s->bits == 4) word = repack_nibbles(row + (b * s->block + 8 * v) / 2);
            else memcpy(&word, row + b * s->block + 4 * v, 4);
          }
          memcpy(out + v * 64 + 4 * j, &word, 4);
        }
      }
      for (int j = 0; j < 16; j++) {
        int64_t n = 16 * g + j;
        dst_scales[((size_t)g * nb + b) * 16 + j] = n < s->n ? scales[(size_t)n * nb + b] : 0.f;
      }
    }
}

/* scratch: scales [m][nb] float, zero-point sums [m][nb] int32, quantized rows [m][kp] int8 */
size_t uk_scratch_bytes(const uk_shape* s, int64_t m) {
  return (size_t)m * nblocks(s) * 8 + (size_t)m * s->kp + 64;
}

/* one block of 16*n16 floats: max |x| and the int8 values (rounding to nearest even, as cvtps does) */
__attribute__((target("avx2,fma"))) static void quantize_block_avx2(const float* x, int64_t n16, int8_t* q,
                                                                     float* scale, int32_t* sum) {
  const __m256 sign = _mm256_set1_ps(-0.f);
  __m256 mx = _mm256_setzero_ps();
  for (int64_t i = 0; i < 16 * n16; i += 8) mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
  float amax = _mm_cvtss_f32(m4);
  __m256 inv = _mm256_set1_ps(amax > 0.f ? 127.f / amax : 0.f);
  __m256i acc = _mm256_setzero_si256();
  for (int64_t i = 0; i < 16 * n16; i += 16) {
    __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    __m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8), inv));
    acc = _mm256_add_epi32(acc, _mm256_add_epi32(a, b));
    __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8); /* 16 int16 in order */
    __m128i v = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storeu_si128((__m128i*)(q + i), v);
  }
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  s4 = _mm_hadd_epi32(s4, s4);
  s4 = _mm_hadd_epi32(s4, s4);
  *scale = amax / 127.f;
  *sum = _mm_cvtsi128_si32(s4);
}

/* min(0, x) and max(0, x) over n floats */
__attribute__((target("avx2,fma"))) void uk_range0(const float* x, int64_t n, float* lo, float* hi) {
  __m256 vlo = _mm256_setzero_ps(), vhi = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    vlo = _mm256_min_ps(vlo, v);
    vhi = _mm256_max_ps(vhi, v);
  }
  float l[8], h[8];
  _mm256_storeu_ps(l, vlo);
  _mm256_storeu_ps(h, vhi);
  float a = 0.f, b = 0.f;
  for (int j = 0; j < 8; j++) {
    a = l[j] < a ? l[j] : a;
    b = h[j] > b ? h[j] : b;
  }
  for (; i < n; i++) {
    a = x[i] < a ? x[i] : a;
    b = x[i] > b ? x[i] : b;
  }
  *lo = a;
  *hi = b;
}

/* q = clamp(round_half_even(x / scale) + zp, 0, 255) - shift for n floats (shift 128: int8 a - 128; 0: the uint8 a
 * itself, stored in the same bytes); returns the sum of q */
__attribute__((target("avx2,fma"))) int32_t uk_quantize_u8(const float* x, int64_t n, float scale, int zp, int shift,
                                                           int8_t* q) {
  const __m256 vs = _mm256_set1_ps(scale), vlo = _mm256_set1_ps((float)-zp), vhi = _mm256_set1_ps((float)(255 - zp));
  const __m256i off = _mm256_set1_epi32(zp - shift);
  __m256i acc = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    /* clamped before rounding, as MLAS does: the same integers as clamping after */
    __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(_mm256_loadu_ps(x + i), vs), vlo), vhi);
    __m256i k = _mm256_add_epi32(_mm256_cvtps_epi32(v), off); /* round half to even (MXCSR) */
    acc = _mm256_add_epi32(acc, k);
    int32_t t[8];
    _mm256_storeu_si256((__m256i*)t, k);
    for (int j = 0; j < 8; j++) q[i + j] = (int8_t)t[j];
  }
  int32_t tt[8], sum = 0;
  _mm256_storeu_si256((__m256i*)tt, acc);
  for (int j = 0; j < 8; j++) sum += tt[j];
  for (; i < n; i++) {
    float v = nearbyintf(x[i] / scale) + (float)zp;
    v = v < 0.f ? 0.f : v > 255.f ? 255.f : v;
    q[i] = (int8_t)((int)v - shift);
    sum += q[i];
  }
  return sum;
}

void uk_quantize(const uk_shape* s, const float* a, int64_t m, void* scratch) {
  int64_t nb = nblocks(s);
  float* as = (float*)scratch;
  int32_t* zs = (int32_t*)(as + m * nb);
  int8_t* qa = (int8_t*)(zs + m * nb);
  int zp = s->bits == 4 ? 8 : 128;
  for (int64_t r = 0; r < m; r++)
    for (int64_t b = 0; b < nb; b++) {
      const float* x = a + (size_t)r * s->k + b * s->block;
      int8_t* q = qa + (size_t)r * s->kp + b * s->block;
      int64_t len = s->k - b * s->block;
      int32_t sum = 0;
      if (len >= s->block) {
        quantize_block_avx2(x, s->block / 16, q, &as[r * nb + b], &sum);
      } else { /* the last block of a K that is not a whole number of blocks: zeros after K */
        float amax = 0.f;
        for (int64_t i = 0; i < len; i++) amax = fmaxf(amax, fabsf(x[i]));
        float inv = amax > 0.f ? 127.f / amax : 0.f;
        for (int64_t i = 0; i < s->block; i++) {
          int v = i < len ? (int)nearbyintf(x[i] * inv) : 0;
          q[i] = (int8_t)v;
          sum += v;
        }
        as[r * nb + b] = amax / 127.f;
      }
      zs[r * nb + b] = zp * sum;
    }
}

/* ---- AVX-512 VNNI: 16 columns per VPDPBUSD, MM rows (1, 2, 4 or 8) per tile ----
 * A core reads its weights faster from several places at once than from one: each stream gets the
 * hardware prefetcher's attention. On the 2-core Xeon this was written on, 2 threads read 1.3-1.5x
 * more walking four streams each than one (docs/KERNELS.md, "Several streams"). So a tile
 * cuts its range [g0, g1) of column groups into NS equal parts and walks them side by side, one group
 * of each at a time; (g1 - g0) must be a multiple of NS (uk_gemm passes the rest to NS = 1). With
 * MM * NS < 8 accumulator chains, each row gets a second chain (even and odd weight vectors; the high nibbles'
 * in the 4-bit tiles), so that enough VPDPBUSDs are in flight. The 8-row 4-bit tile has one too: a VPDPBUSD takes
 * about 6 cycles here and two issue a cycle, so 8 chains of two VPDPBUSDs a weight vector (the low and the high
 * nibbles) bound the tile at 1.33 a cycle (computed); with 16 chains its compute-bound loop is 10-13% faster when the
 * core's issue rate is the limit (36.3 -> 32.3 us, and 29.3-30.4 -> 25.5-27.3, for an L2-resident 896 x 1024 matrix
 * at 8 rows on one core; level in slower minutes: docs/KERNELS.md "Two chains at 8 rows"). The 8-bit one was not
 * faster with it and keeps one. Since session 40 these one-stream 8-row tiles take only a range's odd last group:
 * VNNI_TILE8_2 below runs the rest, with one chain a row and stream.
 * At 4 and 8 rows a tile is busy long enough on each weight vector that the prefetchers fall behind, and
 * two streams of 8 rows with two chains a row need 32 accumulators (spilled): those tiles walk one stream and
 * prefetch PF bytes ahead of it instead (an 8-row int4 trunk step 6.9 -> 5.5 ms, int8 9.9 -> 8.1; docs/KERNELS.md,
 * "Prefetch at 4 and 8 rows"; the 8-row tiles walk two again since session 40, in VNNI_TILE8_2). Into L2, 4 KB ahead (since session 34; into L1 1 KB ahead before, which keeps fewer
 * lines in flight: an 8-row depth-head step 5.7 -> 4.9 ms in int8). The 4-bit 1- and 2-row tiles prefetch each of
 * their streams into L2 1 KB ahead (session 36, an Intel host: the int4 caption pipeline 13.3 -> 12.2 ms a token,
 * faster in 9 of 10 rounds; the 8-bit tiles were level with it, 19.7 / 19.6, and are as before). */
/* acc += VPDPBUSD(unsigned bytes W, the int32 at P broadcast), the broadcast as the instruction's memory operand
 * ({1to16}). With the intrinsic and _mm512_set1_epi32, GCC 12 copied accumulators between registers around the
 * VPDPBUSDs: the 1-row 4-stream 4-bit tile's loop (the int4 caption's) held 17 copies besides its 8 VPDPBUSD, now 2;
 * the 8-row tiles' 16 copies and 8 (8-bit) or 16 (4-bit) broadcasts are gone, and the 2-row 4-stream 8-bit tile's
 * 17 copies (objdump, docs/KERNELS.md). The 1-row 8-bit tiles keep the intrinsic: with the macro GCC kept their
 * accumulators on the stack (all 8 in the 4-stream one). AT&T syntax (GCC's and clang's default). */
#define UK_DPBUSD_B(ACC, W, P) __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(ACC) : "v"(W), "m"(P))
/* The 8-row two-stream tiles' forms (VNNI_TILE8_2): the activation bytes broadcast into a register once (a load),
 * then a VPDPBUSD of registers for each stream. As asm for the reason above: with _mm512_dpbusd_epi32 GCC copied
 * the accumulators around each VPDPBUSD and kept some on the stack. */
#define UK_BCAST(Q, P) __asm__("vpbroadcastd %1, %0" : "=v"(Q) : "m"(P))
#define UK_DPBUSD_R(ACC, W, Q) __asm__("vpdpbusd %2, %1, %0" : "+v"(ACC) : "v"(W), "v"(Q))
/* Steps the VNNI tiles share, as statement macros (the same statements each tile was written with: GCC's register
 * allocation of these loops moved with smaller edits before, docs/KERNELS.md). UK_BLOCK_SUM: OUT = F_IN + the block's
 * int32 sum SUM of row r, stream t, less the zero-point term (plus the column term where cadd is set), as a float
 * scaled by the weight and activation scales (sc, as). UK_STORE_ROWS: the MM rows of each of the NS streams' 16
 * columns (the last group masked) plus the bias, F_OF(t, r) giving a row's float sums. */
#define UK_BLOCK_SUM(SUM, OUT, F_IN)                                                                       \
  {                                                                                                        \
    __m512i d = _mm512_sub_epi32(SUM, _mm512_set1_epi32(zs[r * nb + b]));                                  \
    if (cadd) d = _mm512_add_epi32(d, _mm512_loadu_si512(cadd + 16 * gs[t]));                                \
    OUT = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(sc, _mm512_set1_ps(as[r * nb + b])), F_IN);  \
  }
#define UK_F_REG(T, R) f[T][R]
#define UK_F_MEM(T, R) _mm512_load_ps(fm[T][R])
#define UK_STORE_ROWS(MM, NS, F_OF)                                                                        \
  for (int t = 0; t < NS; t++) {                                                                          \
    int64_t left = n - 16 * gs[t];                                                                        \
    __mmask16 keep = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);                      \
    __m512 bv = bias ? _mm512_maskz_loadu_ps(keep, bias + 16 * gs[t]) : _mm512_setzero_ps();              \
    for (int r = 0; r < MM; r++)                                                                          \
      _mm512_mask_storeu_ps(c + (size_t)r * n + 16 * gs[t], keep, _mm512_add_ps(F_OF(t, r), bv));         \
  }
#define VNNI_TILE(BITS, MM, NS) VNNI_TILE_C(BITS, MM, NS, vnni##BITS##_##MM##_##NS, UK_NO_CADD, UK_NULL_CADD)
/* cadd: an int32 per column (cadd[16 g ..]) added to the integer sum before it becomes a float, for one block of
 * K only (uk_gemm_cadd); a parameter of those tiles alone (the others have a null constant, folded away), so
 * the others' code is as it was */
#define UK_NO_CADD
#define UK_CADD const int32_t* cadd,
#define UK_NULL_CADD const int32_t* cadd = 0;
#define VNNI_TILE_C(BITS, MM, NS, NAME, CADD_PARAM, CADD_LOCAL)                                      \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni"))) static void                    \
      NAME(const uk_shape* s, const float* as, const int32_t* zs, const int8_t* qa,                       \
           const uint8_t* w, const float* ws, const float* bias, CADD_PARAM float* c, int64_t g0,          \
           int64_t g1) {                                                                                  \
    CADD_LOCAL                                                                                            \
    enum { TWO = MM * NS < 8 || (BITS == 4 && MM == 8), PF = MM >= 4 ? 4096 : BITS == 4 ? 1024 : 0 };                              \
    const int64_t nb = nblocks(s), vpb = vecs_per_block(s), kp = s->kp, block = s->block, n = s->n;       \
    const __m512i mask = _mm512_set1_epi8(0x0F);                                                          \
    const int64_t part = (g1 - g0) / NS;                                                                  \
    for (int64_t i = 0; i < part; i++) {                                                                  \
      int64_t gs[NS];                                                                                     \
      const uint8_t* wg[NS];                                                                              \
      __m512 f[NS][MM];                                                                                   \
      for (int t = 0; t < NS; t++) {                                                                      \
        gs[t] = g0 + t * part + i;                                                                        \
        wg[t] = w + (size_t)gs[t] * nb * vpb * 64;                                                        \
        for (int r = 0; r < MM; r++) f[t][r] = _mm512_setzero_ps();                                       \
      }                                                                                                   \
      for (int64_t b = 0; b < nb; b++) {                                                                  \
        __m512i acc[NS][MM], acc2[NS][MM];                                                                \
        for (int t = 0; t < NS; t++)                                                                      \
          for (int r = 0; r < MM; r++) acc[t][r] = acc2[t][r] = _mm512_setzero_si512();                   \
        const int8_t* qb = qa + b * block;                                                                \
        for (int64_t v = 0; v < vpb; v++) {                                                               \
          for (int t = 0; t < NS; t++) {                                                                  \
            __m512i x = _mm512_loadu_si512(wg[t] + (b * vpb + v) * 64);                                   \
            if (PF) _mm_prefetch((const char*)(wg[t] + (b * vpb + v) * 64 + PF), _MM_HINT_T1);          \
            if (BITS == 4) {                                                                              \
              __m512i lo = _mm512_and_si512(x, mask), hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), mask); \
              for (int r = 0; r < MM; r++) {                                                              \
                const int32_t* q = (const int32_t*)(qb + r * kp + 8 * v);                                 \
                UK_DPBUSD_B(acc[t][r], lo, q[0]);                                                         \
                if (TWO) UK_DPBUSD_B(acc2[t][r], hi, q[1]);                                               \
                else UK_DPBUSD_B(acc[t][r], hi, q[1]);                                                    \
              }                                                                                           \
            } else {                                                                                      \
              for (int r = 0; r < MM; r++) {                                                              \
                const int32_t* q = (const int32_t*)(qb + r * kp + 4 * v);                                 \
                if (MM == 1) { /* the intrinsic: with the macro GCC kept these tiles' accumulators on the stack */ \
                  if (TWO && (v & 1)) acc2[t][r] = _mm512_dpbusd_epi32(acc2[t][r], x, _mm512_set1_epi32(q[0])); \
                  else acc[t][r] = _mm512_dpbusd_epi32(acc[t][r], x, _mm512_set1_epi32(q[0]));            \
                } else if (TWO && (v & 1)) UK_DPBUSD_B(acc2[t][r], x, q[0]);                              \
                else UK_DPBUSD_B(acc[t][r], x, q[0]);                                                     \
              }                                                                                           \
            }                                                                                             \
          }                                                                                               \
        }                                                                                                 \
        for (int t = 0; t < NS; t++) {                                                                    \
          __m512 sc = _mm512_loadu_ps(ws + ((size_t)gs[t] * nb + b) * 16);                                \
          for (int r = 0; r < MM; r++) {                                                                  \
            __m512i sum = TWO ? _mm512_add_epi32(acc[t][r], acc2[t][r]) : acc[t][r];                      \
            UK_BLOCK_SUM(sum, f[t][r], f[t][r]);                                                          \
          }                                                                                               \
        }                                                                                                 \
      }                                                                                                   \
      UK_STORE_ROWS(MM, NS, UK_F_REG)                                                                     \
    }                                                                                                     \
  }
VNNI_TILE(4, 1, 4)
VNNI_TILE(4, 2, 4)
VNNI_TILE(8, 1, 4)
VNNI_TILE(8, 2, 4)
VNNI_TILE(4, 1, 1)
VNNI_TILE(4, 2, 1)
VNNI_TILE(4, 4, 1)
VNNI_TILE(4, 8, 1)
VNNI_TILE(8, 1, 1)
VNNI_TILE(8, 2, 1)
VNNI_TILE(8, 4, 1)
VNNI_TILE(8, 8, 1)

/* 8 rows, two streams (column groups g0 + i and g0 + part + i): each row's 4 activation bytes are broadcast into a
 * register once and multiply both streams' weight vectors, where VNNI_TILE's 8-row tile loads the broadcast again
 * for every VPDPBUSD. Its 8 VPDPBUSDs a vector had 8 broadcast loads beside them and the weights' load; this tile's
 * 16 have 8 + 2 (the 4-bit one 32 with 16 + 2). The loads were probably the limit: L2-resident matrices at 8 rows on
 * one core ran 21-26% faster in int8 and 5-9% in int4 (docs/KERNELS.md, "Shared broadcasts at 8 rows").
 * 16 accumulators (one chain a row and stream, two VPDPBUSDs a vector in 4 bits), 2 weight vectors (4 in 4 bits) and
 * the broadcast fit the 32 registers; the float sums of the 16 outputs stay in memory (fm) between blocks, where
 * GCC would otherwise spill the accumulators in the CADD form. Same integer sums and the same epilogue as
 * VNNI_TILE, so the same bits. */
#define VNNI_TILE8_2(BITS, NAME, CADD_PARAM, CADD_LOCAL)                                                  \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni"))) static void                    \
      NAME(const uk_shape* s, const float* as, const int32_t* zs, const int8_t* qa,                       \
           const uint8_t* w, const float* ws, const float* bias, CADD_PARAM float* c, int64_t g0,          \
           int64_t g1) {                                                                                  \
    CADD_LOCAL                                                                                            \
    enum { MM = 8, NS = 2, PF = 4096 };                                                                   \
    const int64_t nb = nblocks(s), vpb = vecs_per_block(s), kp = s->kp, block = s->block, n = s->n;       \
    const __m512i mask = _mm512_set1_epi8(0x0F);                                                          \
    const int64_t part = (g1 - g0) / NS;                                                                  \
    __attribute__((aligned(64))) float fm[NS][MM][16];                                                    \
    for (int64_t i = 0; i < part; i++) {                                                                  \
      int64_t gs[NS];                                                                                     \
      const uint8_t* wg[NS];                                                                              \
      for (int t = 0; t < NS; t++) {                                                                      \
        gs[t] = g0 + t * part + i;                                                                        \
        wg[t] = w + (size_t)gs[t] * nb * vpb * 64;                                                        \
        for (int r = 0; r < MM; r++) _mm512_store_ps(fm[t][r], _mm512_setzero_ps());                      \
      }                                                                                                   \
      for (int64_t b = 0; b < nb; b++) {                                                                  \
        __m512i acc[NS][MM];                                                                              \
        for (int t = 0; t < NS; t++)                                                                      \
          for (int r = 0; r < MM; r++) acc[t][r] = _mm512_setzero_si512();                                \
        const int8_t* qb = qa + b * block;                                                                \
        for (int64_t v = 0; v < vpb; v++) {                                                               \
          __m512i x[NS], hi[NS];                                                                          \
          for (int t = 0; t < NS; t++) {                                                                  \
            x[t] = _mm512_loadu_si512(wg[t] + (b * vpb + v) * 64);                                        \
            _mm_prefetch((const char*)(wg[t] + (b * vpb + v) * 64 + PF), _MM_HINT_T1);                   \
            if (BITS == 4) {                                                                              \
              hi[t] = _mm512_and_si512(_mm512_srli_epi16(x[t], 4), mask);                                 \
              x[t] = _mm512_and_si512(x[t], mask);                                                        \
            }                                                                                             \
          }                                                                                               \
          for (int r = 0; r < MM; r++) {                                                                  \
            const int32_t* q = (const int32_t*)(qb + r * kp + (BITS == 4 ? 8 : 4) * v);                   \
            __m512i q0, q1;                                                                               \
            UK_BCAST(q0, q[0]);                                                                           \
            for (int t = 0; t < NS; t++) UK_DPBUSD_R(acc[t][r], x[t], q0);                                \
            if (BITS == 4) {                                                                              \
              UK_BCAST(q1, q[1]);                                                                         \
              for (int t = 0; t < NS; t++) UK_DPBUSD_R(acc[t][r], hi[t], q1);                             \
            }                                                                                             \
          }                                                                                               \
        }                                                                                                 \
        _Pragma("GCC unroll 2") for (int t = 0; t < NS; t++) {                                          \
          __m512 sc = _mm512_loadu_ps(ws + ((size_t)gs[t] * nb + b) * 16);                                \
          _Pragma("GCC unroll 8") for (int r = 0; r < MM; r++) {                                        \
            __m512 sum_f;                                                                                 \
            UK_BLOCK_SUM(acc[t][r], sum_f, _mm512_load_ps(fm[t][r]));                                      \
            _mm512_store_ps(fm[t][r], sum_f);                                                             \
          }                                                                                               \
        }                                                                                                 \
      }                                                                                                   \
      UK_STORE_ROWS(MM, NS, UK_F_MEM)                                                                     \
    }                                                                                                     \
  }
VNNI_TILE8_2(4, vnni4_8_2, UK_NO_CADD, UK_NULL_CADD)
VNNI_TILE8_2(8, vnni8_8_2, UK_NO_CADD, UK_NULL_CADD)

/* ---- AVX2: VPMADDUBSW on 8 columns at a time, up to 8 rows per tile ----
 * 4 bits: unsigned weights 0..15 times signed activations; a pair sums to at most 2*15*127 = 3810. Each row's
 * products of two 64-byte vectors (4 VPMADDUBSW, 16 k) add up in int16 (at most 4 * 3810) and are widened by one
 * VPMADDWD into the row's int32 sums; the vectors' nibbles are split once for all the rows (vpb, block / 8, is
 * even: blocks are multiples of 16). Until session 49 each row kept an int16 sum over four vectors beside its
 * int32 one (twice the registers; docs/KERNELS.md "Eight rows in one pass on AVX2").
 * 8 bits: the weights are made signed (w - 128) and multiplied as |w| times the activation with w's
 * sign: a pair sums to at most 2*128*127 = 32512, so each product pair is widened at once.
 * Each 64-byte line is used whole when it is read: its two 32-byte halves (8 columns each) have their own
 * sums. Until session 46 a tile walked a column group's first halves over all of k, then its second halves,
 * so every line was fetched for half its work and read again from cache (docs/KERNELS.md "One pass over each
 * line on AVX2"). In one pass (HP = 2) each stream prefetches pf bytes ahead: 1 KB in 4 bits at 1-2 rows, else
 * 2 KB; the sums then outgrow the 16 registers and spill, and the tiles are faster anyway. HP = 1 walks the
 * halves in turn, without a prefetch. No tile uses it since session 49, but the parameter stays: without it gcc
 * allocates the tiles' registers otherwise, and the 1-row 4-bit tile ran 5% slower (hp-vs-final.txt in
 * docs/results/bench/2026-12-07-s49/). Several streams as in the VNNI tiles at
 * 1-2 rows (4; (g1 - g0) a multiple of NS). The 4- and 8-row tiles keep one: a guided --n 4 draw under the AVX2
 * CPUID mask took 3% longer with two, in the two-pass 4-row tiles (docs/KERNELS.md). Until session 49, 8 rows were
 * two passes of the 4-row tile over the weights. */
#define AVX2_TILE(MM, NS, HP)                                                                             \
  __attribute__((target("avx2,fma"))) static void avx2_##MM##_##NS##_##HP(                                \
      const uk_shape* s, const float* as, const int32_t* zs, const int8_t* qa, const uint8_t* w,          \
      const float* ws, const float* bias, float* c, int64_t g0, int64_t g1) {                             \
    const int64_t nb = nblocks(s), vpb = vecs_per_block(s), kp = s->kp;                                   \
    const int64_t pf = s->bits == 4 && MM <= 2 ? 1024 : 2048;                                             \
    const __m256i mask = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);                             \
    const __m256i flip = _mm256_set1_epi8((char)0x80);                                                    \
    const int64_t part = (g1 - g0) / NS;                                                                  \
    for (int64_t i = 0; i < part; i++)                                                                    \
      for (int h0 = 0; h0 < 2; h0 += HP) {                                                                \
        int64_t gs[NS];                                                                                   \
        __m256 f[NS][HP][MM];                                                                             \
        for (int t = 0; t < NS; t++) {                                                                    \
          gs[t] = g0 + t * part + i;                                                                      \
          for (int h = 0; h < HP; h++)                                                                    \
            for (int r = 0; r < MM; r++) f[t][h][r] = _mm256_setzero_ps();                                \
        }                                                                                                 \
        for (int64_t b = 0; b < nb; b++) {                                                                \
          __m256i acc[NS][HP][MM];                                                                        \
          for (int t = 0; t < NS; t++)                                                                    \
            for (int h = 0; h < HP; h++)                                                                  \
              for (int r = 0; r < MM; r++) acc[t][h][r] = _mm256_setzero_si256();                         \
          if (s->bits == 4) {                                                                             \
            for (int64_t v0 = 0; v0 < vpb; v0 += 2) {                                                     \
              __m256i u[NS][2][HP][2];                                                                    \
              for (int v = 0; v < 2; v++)                                                                 \
                for (int t = 0; t < NS; t++) {                                                            \
                  const uint8_t* wl = w + (((size_t)gs[t] * nb + b) * vpb + v0 + v) * 64;                 \
                  if (HP == 2) _mm_prefetch((const char*)wl + pf, _MM_HINT_T0);                           \
                  for (int h = 0; h < HP; h++) {                                                          \
                    __m256i x = _mm256_loadu_si256((const __m256i*)(wl + 32 * (h0 + h)));                 \
                    u[t][v][h][0] = _mm256_and_si256(x, mask);                                            \
                    u[t][v][h][1] = _mm256_and_si256(_mm256_srli_epi16(x, 4), mask);                      \
                  }                                                                                       \
                }                                                                                         \
              for (int r = 0; r < MM; r++) {                                                              \
                const int32_t* q = (const int32_t*)(qa + (size_t)r * kp + b * s->block + 8 * v0);         \
                for (int t = 0; t < NS; t++)                                                              \
                  for (int h = 0; h < HP; h++) {                                                          \
                    __m256i p = _mm256_maddubs_epi16(u[t][0][h][0], _mm256_set1_epi32(q[0]));             \
                    p = _mm256_add_epi16(p, _mm256_maddubs_epi16(u[t][0][h][1], _mm256_set1_epi32(q[1]))); \
                    p = _mm256_add_epi16(p, _mm256_maddubs_epi16(u[t][1][h][0], _mm256_set1_epi32(q[2]))); \
                    p = _mm256_add_epi16(p, _mm256_maddubs_epi16(u[t][1][h][1], _mm256_set1_epi32(q[3]))); \
                    acc[t][h][r] = _mm256_add_epi32(acc[t][h][r], _mm256_madd_epi16(p, ones));            \
                  }                                                                                       \
              }                                                                                           \
            }                                                                                             \
          } else {                                                                                        \
            for (int64_t v = 0; v < vpb; v++)                                                             \
              for (int t = 0; t < NS; t++) {                                                              \
                const uint8_t* wl = w + (((size_t)gs[t] * nb + b) * vpb + v) * 64;                        \
                if (HP == 2) _mm_prefetch((const char*)wl + pf, _MM_HINT_T0);                             \
                for (int h = 0; h < HP; h++) {                                                            \
                  __m256i x = _mm256_xor_si256(_mm256_loadu_si256((const __m256i*)(wl + 32 * (h0 + h))), flip); \
                  __m256i ax = _mm256_abs_epi8(x);                                                        \
                  for (int r = 0; r < MM; r++) {                                                          \
                    const int32_t* q = (const int32_t*)(qa + (size_t)r * kp + b * s->block + 4 * v);      \
                    __m256i y = _mm256_sign_epi8(_mm256_set1_epi32(q[0]), x);                             \
                    acc[t][h][r] = _mm256_add_epi32(acc[t][h][r], _mm256_madd_epi16(_mm256_maddubs_epi16(ax, y), ones)); \
                  }                                                                                       \
                }                                                                                         \
              }                                                                                           \
          }                                                                                               \
          for (int t = 0; t < NS; t++)                                                                    \
            for (int h = 0; h < HP; h++) {                                                                \
              __m256 sc = _mm256_loadu_ps(ws + ((size_t)gs[t] * nb + b) * 16 + 8 * (h0 + h));             \
              for (int r = 0; r < MM; r++) {                                                              \
                __m256i d = s->bits == 4 ? _mm256_sub_epi32(acc[t][h][r], _mm256_set1_epi32(zs[r * nb + b])) : acc[t][h][r]; \
                f[t][h][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_mul_ps(sc, _mm256_set1_ps(as[r * nb + b])), \
                                             f[t][h][r]);                                                 \
              }                                                                                           \
            }                                                                                             \
        }                                                                                                 \
        for (int t = 0; t < NS; t++)                                                                      \
          for (int h = 0; h < HP; h++) {                                                                  \
            int64_t col = 16 * gs[t] + 8 * (h0 + h), left = s->n - col;                                   \
            if (left <= 0) continue;                                                                      \
            for (int r = 0; r < MM; r++) {                                                                \
              float tmp[8];                                                                               \
              _mm256_storeu_ps(tmp, f[t][h][r]);                                                          \
              for (int j = 0; j < 8 && j < left; j++) c[(size_t)r * s->n + col + j] = tmp[j] + (bias ? bias[col + j] : 0.f); \
            }                                                                                             \
          }                                                                                               \
      }                                                                                                   \
  }
AVX2_TILE(1, 4, 2)
AVX2_TILE(2, 4, 2)
AVX2_TILE(1, 1, 2)
AVX2_TILE(2, 1, 2)
AVX2_TILE(4, 1, 2)
AVX2_TILE(8, 1, 2)

/* ---- AVX2 tiles of the integer ops (DynamicQuantizeMatMul, MatMulIntegerToFloat; qmatmul_op.c) ----
 * One block of K, 8-bit weights B (stored B + 128), the uint8 activations a (0..255); VPMADDUBSW multiplies
 * unsigned bytes by signed ones and sums each pair into a saturating int16:
 * - |B| <= 64 (WIDE 0; ONNX Runtime's quantizer writes such weights with reduce_range, as our exports do since
 *   2026-12-02): a times B, a pair at most 2 * 255 * 64 = 32640, widened at once by VPMADDWD. Per row and
 *   weight vector: the product, its widening and the add (the MatMulNBits 8-bit tile above also needs a sign).
 * - any int8 B (WIDE 1): a = 2 (a >> 1) + (a & 1), the rows holding a >> 1 (a pair at most 2 * 127 * 128 = 32512)
 *   and a second array QLO the bits a & 1 (a pair at most 256); the first products are widened by VPMADDWD with
 *   2s, the second with 1s. Twice the work, for bundles exported before reduce_range.
 * The sum is exactly sum_k a B; cadd (-zp x the column sums) joins it before the one conversion to float, so a
 * column gets the integer the VNNI tiles get, and the same float. Rows and streams as in AVX2_TILE (1-2 rows: 4
 * streams). */
#define AVX2_CTILE(MM, NS, WIDE)                                                                          \
  __attribute__((target("avx2,fma"))) static void avx2c_##MM##_##NS##_##WIDE(                             \
      const uk_shape* s, const float* as, const uint8_t* qa, const uint8_t* qlo, const uint8_t* w,        \
      const float* ws, const float* bias, const int32_t* cadd, float* c, int64_t g0, int64_t g1) {        \
    const int64_t vpb = vecs_per_block(s), kp = s->kp;                                                    \
    const __m256i ones = _mm256_set1_epi16(1), twos = _mm256_set1_epi16(2);                               \
    const __m256i flip = _mm256_set1_epi8((char)0x80);                                                    \
    const int64_t part = (g1 - g0) / NS;                                                                  \
    for (int64_t i = 0; i < part; i++) {                                                                  \
      int64_t gs[NS];                                                                                     \
      __m256i acc[NS][2][MM];                                                                             \
      for (int t = 0; t < NS; t++) {                                                                      \
        gs[t] = g0 + t * part + i;                                                                        \
        for (int h = 0; h < 2; h++)                                                                       \
          for (int r = 0; r < MM; r++) acc[t][h][r] = _mm256_setzero_si256();                             \
      }                                                                                                   \
      for (int64_t v = 0; v < vpb; v++)                                                                   \
        for (int t = 0; t < NS; t++) {                                                                    \
          const uint8_t* wl = w + ((size_t)gs[t] * vpb + v) * 64;                                         \
          _mm_prefetch((const char*)wl + 2048, _MM_HINT_T0);                                              \
          for (int h = 0; h < 2; h++) {                                                                   \
            __m256i x = _mm256_xor_si256(_mm256_loadu_si256((const __m256i*)(wl + 32 * h)), flip);         \
            for (int r = 0; r < MM; r++) {                                                                \
              const int32_t* q = (const int32_t*)(qa + (size_t)r * kp + 4 * v);                           \
              __m256i p = _mm256_maddubs_epi16(_mm256_set1_epi32(q[0]), x);                               \
              if (WIDE) {                                                                                 \
                const int32_t* ql = (const int32_t*)(qlo + (size_t)r * kp + 4 * v);                       \
                p = _mm256_add_epi32(_mm256_madd_epi16(p, twos),                                          \
                                     _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi32(ql[0]), x), ones)); \
              } else {                                                                                    \
                p = _mm256_madd_epi16(p, ones);                                                           \
              }                                                                                           \
              acc[t][h][r] = _mm256_add_epi32(acc[t][h][r], p);                                           \
            }                                                                                             \
          }                                                                                               \
        }                                                                                                 \
      for (int t = 0; t < NS; t++)                                                                        \
        for (int h = 0; h < 2; h++) {                                                                     \
          int64_t col = 16 * gs[t] + 8 * h, left = s->n - col;                                            \
          if (left <= 0) continue;                                                                        \
          __m256 sc = _mm256_loadu_ps(ws + (size_t)gs[t] * 16 + 8 * h);                                   \
          __m256i ca = _mm256_loadu_si256((const __m256i*)(cadd + col));                                  \
          for (int r = 0; r < MM; r++) {                                                                  \
            float tmp[8];                                                                                 \
            _mm256_storeu_ps(tmp, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(acc[t][h][r], ca)),  \
                                                  _mm256_mul_ps(sc, _mm256_set1_ps(as[r])), _mm256_setzero_ps())); \
            for (int j = 0; j < 8 && j < left; j++) c[(size_t)r * s->n + col + j] = tmp[j] + (bias ? bias[col + j] : 0.f); \
          }                                                                                               \
        }                                                                                                 \
    }                                                                                                     \
  }
#define AVX2_CTILES(WIDE)                                                                                 \
  AVX2_CTILE(1, 4, WIDE) AVX2_CTILE(2, 4, WIDE) AVX2_CTILE(1, 1, WIDE) AVX2_CTILE(2, 1, WIDE)             \
  AVX2_CTILE(4, 1, WIDE) AVX2_CTILE(8, 1, WIDE)
AVX2_CTILES(0)
AVX2_CTILES(1)

typedef void (*tile_fn)(const uk_shape*, const float*, const int32_t*, const int8_t*, const uint8_t*,
                        const float*, const float*, float*, int64_t, int64_t);
typedef void (*ctile_fn)(const uk_shape*, const float*, const int32_t*, const int8_t*, const uint8_t*,
                         const float*, const float*, const int32_t*, float*, int64_t, int64_t);
VNNI_TILE_C(8, 1, 4, vnni8_1_4_c, UK_CADD, UK_NO_CADD)
VNNI_TILE_C(8, 2, 4, vnni8_2_4_c, UK_CADD, UK_NO_CADD)
VNNI_TILE_C(8, 1, 1, vnni8_1_1_c, UK_CADD, UK_NO_CADD)
VNNI_TILE_C(8, 2, 1, vnni8_2_1_c, UK_CADD, UK_NO_CADD)
VNNI_TILE_C(8, 4, 1, vnni8_4_1_c, UK_CADD, UK_NO_CADD)
VNNI_TILE_C(8, 8, 1, vnni8_8_1_c, UK_CADD, UK_NO_CADD)
VNNI_TILE8_2(8, vnni8_8_2_c, UK_CADD, UK_NO_CADD)

/* VNNI tiles by bit width, row count (1, 2, 4, 8) and streams (many or 1; the 4-row tiles have one, the 8-row two) */
static const tile_fn vnni_tiles[2][4][2] = {
    {{vnni4_1_4, vnni4_1_1}, {vnni4_2_4, vnni4_2_1}, {vnni4_4_1, vnni4_4_1}, {vnni4_8_2, vnni4_8_1}},
    {{vnni8_1_4, vnni8_1_1}, {vnni8_2_4, vnni8_2_1}, {vnni8_4_1, vnni8_4_1}, {vnni8_8_2, vnni8_8_1}},
};
static const int vnni_streams[4] = {4, 4, 1, 2};
/* the 8-bit tiles with a column term (CADD), likewise */
static const ctile_fn vnni_cadd_tiles[4][2] = {
    {vnni8_1_4_c, vnni8_1_1_c}, {vnni8_2_4_c, vnni8_2_1_c}, {vnni8_4_1_c, vnni8_4_1_c}, {vnni8_8_2_c, vnni8_8_1_c}};
/* AVX2 tiles by row count (1, 2, 4, 8) and streams (many or 1; the 4- and 8-row tiles have one), each line in one
 * pass */
/* (until session 49 8 rows were two passes of the 4-row tile, and 4-bit prompts took a two-pass 4-row tile) */
static const tile_fn avx2_tiles[4][2] = {
    {avx2_1_4_2, avx2_1_1_2}, {avx2_2_4_2, avx2_2_1_2}, {avx2_4_1_2, avx2_4_1_2}, {avx2_8_1_2, avx2_8_1_2}};
static const int avx2_streams[4] = {4, 4, 1, 1};

void uk_gemm(const uk_shape* s, const void* scratch, int64_t m, const uint8_t* w, const float* ws,
             const float* bias, float* c, int64_t g0, int64_t g1, int isa) {
  int64_t nb = nblocks(s);
  const float* as = (const float*)scratch;
  const int32_t* zs = (const int32_t*)(as + m * nb);
  const int8_t* qa = (const int8_t*)(zs + m * nb);
  for (int64_t r0 = 0; r0 < m;) {
    int64_t left = m - r0, step;
    const float* ar = as + r0 * nb;
    const int32_t* zr = zs + r0 * nb;
    const int8_t* qr = qa + (size_t)r0 * s->kp;
    float* cr = c + (size_t)r0 * s->n;
    if (isa == UK_ISA_AVX512_VNNI) {
      int t = left >= 8 ? 3 : left >= 4 ? 2 : left >= 2 ? 1 : 0;
      const tile_fn* fn = vnni_tiles[s->bits == 4 ? 0 : 1][t];
      int64_t ns = vnni_streams[t], split = g0 + (g1 - g0) / ns * ns; /* the rest goes to one stream */
      step = (int64_t)1 << t;
      if (split > g0) fn[0](s, ar, zr, qr, w, ws, bias, cr, g0, split);
      if (g1 > split) fn[1](s, ar, zr, qr, w, ws, bias, cr, split, g1);
    } else {
      /* 8-bit prompts (more than 16 rows) stay in 4-row tiles: their weights come from the cache, where the 8-row
       * tile is the slower (a 297-row int8 prefill 3-8% slower with it under the AVX2 mask, session 49) */
      int t = left >= 8 && (s->bits == 4 || m <= 16) ? 3 : left >= 4 ? 2 : left >= 2 ? 1 : 0;
      const tile_fn* fn = avx2_tiles[t];
      int64_t ns = avx2_streams[t], split = g0 + (g1 - g0) / ns * ns;
      step = (int64_t)1 << t;
      if (split > g0) fn[0](s, ar, zr, qr, w, ws, bias, cr, g0, split);
      if (g1 > split) fn[1](s, ar, zr, qr, w, ws, bias, cr, split, g1);
    }
    r0 += step;
  }
}

typedef void (*actile_fn)(const uk_shape*, const float*, const uint8_t*, const uint8_t*, const uint8_t*, const float*,
                          const float*, const int32_t*, float*, int64_t, int64_t);
/* by WIDE, row count (1, 2, 4, 8) and streams (many or 1), as avx2_tiles */
static const actile_fn avx2_cadd_tiles[2][4][2] = {
    {{avx2c_1_4_0, avx2c_1_1_0}, {avx2c_2_4_0, avx2c_2_1_0}, {avx2c_4_1_0, avx2c_4_1_0}, {avx2c_8_1_0, avx2c_8_1_0}},
    {{avx2c_1_4_1, avx2c_1_1_1}, {avx2c_2_4_1, avx2c_2_1_1}, {avx2c_4_1_1, avx2c_4_1_1}, {avx2c_8_1_1, avx2c_8_1_1}}};

/* uk_gemm_cadd on AVX2: uint8 rows (AVX2_CTILE); prompts (more than 16 rows) in 4-row tiles, as uk_gemm's 8 bits.
 * At a prompt's rows ONNX Runtime's kernel is the faster (a 297-row prefill 31%; UNIFORK_RT_INTEGER_KERNEL=0 keeps
 * it; walking the columns in chunks of 64-512 KB with every row group inside, or 8-row tiles, gave no clear gain:
 * docs/results/bench/2026-12-07-s50/op-chunk.txt). */
static void avx2_cadd_rows(const uk_shape* s, const float* as, const int8_t* qa, int64_t m, const uint8_t* w,
                           const float* ws, const float* bias, const int32_t* cadd, float* c, int64_t g0, int64_t g1,
                           int wide) {
  for (int64_t r0 = 0; r0 < m;) {
    int64_t left = m - r0;
    int t = left >= 8 && m <= 16 ? 3 : left >= 4 ? 2 : left >= 2 ? 1 : 0;
    const actile_fn* fn = avx2_cadd_tiles[wide ? 1 : 0][t];
    const uint8_t* qr = (const uint8_t*)qa + (size_t)r0 * s->kp;
    const uint8_t* lr = wide ? (const uint8_t*)qa + (size_t)(m + r0) * s->kp : NULL;
    int64_t ns = avx2_streams[t], split = g0 + (g1 - g0) / ns * ns;
    if (split > g0) fn[0](s, as + r0, qr, lr, w, ws, bias, cadd, c + (size_t)r0 * s->n, g0, split);
    if (g1 > split) fn[1](s, as + r0, qr, lr, w, ws, bias, cadd, c + (size_t)r0 * s->n, split, g1);
    r0 += (int64_t)1 << t;
  }
}

void uk_gemm_cadd(const uk_shape* s, const void* scratch, int64_t m, const uint8_t* w, const float* ws,
                  const float* bias, const int32_t* cadd, float* c, int64_t g0, int64_t g1, int isa, int wide) {
  const float* as = (const float*)scratch; /* one block: [m] scales, [m] zero-point sums, then the rows */
  const int32_t* zs = (const int32_t*)(as + m);
  const int8_t* qa = (const int8_t*)(zs + m);
  if (isa != UK_ISA_AVX512_VNNI) {
    avx2_cadd_rows(s, as, qa, m, w, ws, bias, cadd, c, g0, g1, wide);
    return;
  }
  for (int64_t r0 = 0; r0 < m;) {
    int64_t left = m - r0;
    int t = left >= 8 ? 3 : left >= 4 ? 2 : left >= 2 ? 1 : 0;
    const ctile_fn* fn = vnni_cadd_tiles[t];
    int64_t ns = vnni_streams[t], split = g0 + (g1 - g0) / ns * ns;
    if (split > g0) fn[0](s, as + r0, zs + r0, qa + (size_t)r0 * s->kp, w, ws, bias, cadd, c + (size_t)r0 * s->n, g0, split);
    if (g1 > split) fn[1](s, as + r0, zs + r0, qa + (size_t)r0 * s->kp, w, ws, bias, cadd, c + (size_t)r0 * s->n, split, g1);
    r0 += (int64_t)1 << t;
  }
}
