/* unifork-rt: float GEMM against a constant weight matrix (MatMul's B [K][N]), described in
 * qmatmul_kernels.h ("Float weights").
 *
 * The weights are repacked once, at load, into panels of 16 columns: panel p holds B[k][16p .. 16p+15]
 * for k = 0 .. K-1, 64 bytes per k, one after another. A tile walks NS panels far apart in its range
 * side by side (NS weight streams: this kind of host reads 4 streams 1.3-1.5x faster than one,
 * docs/KERNELS.md "Several streams") and multiplies each 64-byte weight vector into MM activation rows,
 * with the accumulators in registers. Every output is one float sum over k in order (one fused
 * multiply-add per k), whatever the tile, the row group, the task split or the ISA: a row gets the same
 * bits alone or in a batch. The sums differ from ONNX Runtime's SGEMM by float rounding only.
 */
#include "qmatmul_kernels.h"

#include <immintrin.h>
#include <string.h>

size_t uk_f32_packed_floats(int64_t k, int64_t n) { return (size_t)((n + 15) / 16) * (size_t)k * 16; }

void uk_f32_pack(int64_t k, int64_t n, const float* b, float* dst) {
  for (int64_t p = 0; p < (n + 15) / 16; p++) {
    int64_t cols = n - 16 * p < 16 ? n - 16 * p : 16;
    for (int64_t kk = 0; kk < k; kk++) {
      float* out = dst + ((size_t)p * k + kk) * 16;
      memcpy(out, b + kk * n + 16 * p, (size_t)cols * sizeof(float));
      if (cols < 16) memset(out + cols, 0, (size_t)(16 - cols) * sizeof(float)); /* padding columns: weight 0 */
    }
  }
}

/* the loops over rows and streams fully unrolled, so that the accumulators stay in registers (GCC kept
 * them on the stack, stored at every k, where a loop over them survived) */
#define UNROLL _Pragma("GCC unroll 16")

/* Tiles of 1 and 2 rows prefetch each stream's weights 2 KB ahead (one line a k): 12 paper layers at 1 / 2 rows
 * -5 to -8% / -9 to -14% on both ISAs, the lm_head +2% to -8% (session 46 on the Intel guest, docs/KERNELS.md "Float
 * weights"). The AVX2 1-row tile no longer does (session 52): on a real AVX2-only CPU (AMD EPYC, Zen 3) its GEMV over
 * 418 MB took 1.12-1.20x the time of our 4-stream read probe with the prefetch and 0.98-1.02x without, and paper fp32
 * caption decode steps 83-94 ms against 90-111 (medians, 4 alternating rounds, faster in all 4). Measured on that one
 * host; session 46 saw it help under the AVX2 mask on Intel: a per-host trade-off. Also unmeasured: the 1-row groups
 * of 3-row and 6j+1-row products and unguided draws, which run this tile too. The AVX-512 tiles keep theirs. */
#define FPF_BYTES 2048
/* Tiles of 3 and more rows prefetch each stream's weights 4 KB ahead: on AVX2 at 5-16 rows they take each k block of
 * 64 (4 KB a panel) from L1 after the first row pair's 2-stream tile read it from memory, and until session 50 the
 * memory sat idle while they ran; now they ask for the next block. On a real AVX2-only CPU (AMD EPYC, session 50;
 * fdram.c, 12 paper layers, 2 threads, 3 rounds) 8 rows 71-82 -> 50-53 ms, 16 rows 116-120 -> 90-97; a 297-row
 * prompt (6-row tiles, k blocks of 512) 1199 / 1405 -> 1084 / 1141 in 2 rounds, within this host's noise in one
 * (docs/KERNELS.md "Float weights"). */
#define FPF_ROWS_BYTES 4096

/* C[r][cols of panel p0 + s*step] for r < MM, s < NS; a: MM rows of k floats (row stride lda). The sums over
 * k0 <= k < k1 only: they start from zero where FIRST, else from what C holds (the sum of the k before k0, stored
 * by the same tile), and alpha scales them where LAST. A float stored and loaded again is the same float, so a sum
 * taken in k blocks has the bits of one taken at once. */
typedef void (*ftile_fn)(const float* a, int64_t lda, int64_t k, int64_t k0, int64_t k1, int first, int last,
                         const float* w, int64_t p0, int64_t step, float* c, int64_t ldc, int64_t n, float alpha);

#define F512_TILE(MM, NS)                                                                                       \
  __attribute__((target("avx512f"))) static void f512_##MM##_##NS(                                            \
      const float* a, int64_t lda, int64_t k, int64_t k0, int64_t k1, int first, int last, const float* w,      \
      int64_t p0, int64_t step, float* c, int64_t ldc, int64_t n, float alpha) {                                \
    __m512 acc[MM][NS];                                                                                         \
    const float* ws[NS];                                                                                        \
    __mmask16 mks[NS];                                                                                          \
    UNROLL                                                                                                     \
    for (int s = 0; s < NS; s++) {                                                                              \
      ws[s] = w + (size_t)(p0 + s * step) * k * 16;                                                             \
      int64_t col = (p0 + s * step) * 16, cols = n - col < 16 ? n - col : 16;                                   \
      mks[s] = (__mmask16)(cols == 16 ? 0xFFFF : (1u << cols) - 1);                                             \
    }                                                                                                           \
    UNROLL                                                                                                      \
    for (int r = 0; r < MM; r++)                                                                                \
      UNROLL                                                                                                    \
      for (int s = 0; s < NS; s++)                                                                              \
        acc[r][s] = first ? _mm512_setzero_ps()                                                                 \
                          : _mm512_maskz_loadu_ps(mks[s], c + r * ldc + (p0 + s * step) * 16);                  \
    for (int64_t kk = k0; kk < k1; kk++) {                                                                      \
      __m512 v[NS];                                                                                             \
      UNROLL                                                                                                    \
      for (int s = 0; s < NS; s++) v[s] = _mm512_load_ps(ws[s] + kk * 16);                                      \
      if (MM <= 2) {                                                                                            \
        UNROLL                                                                                                  \
        for (int s = 0; s < NS; s++) _mm_prefetch((const char*)(ws[s] + kk * 16) + FPF_BYTES, _MM_HINT_T0);     \
      }                                                                                                         \
      UNROLL                                                                                                    \
      for (int r = 0; r < MM; r++) {                                                                            \
        __m512 x = _mm512_set1_ps(a[r * lda + kk]);                                                             \
        UNROLL                                                                                                 \
        for (int s = 0; s < NS; s++) acc[r][s] = _mm512_fmadd_ps(x, v[s], acc[r][s]);                          \
      }                                                                                                         \
    }                                                                                                           \
    const __m512 al = _mm512_set1_ps(alpha);                                                                    \
    UNROLL                                                                                                      \
    for (int s = 0; s < NS; s++) {                                                                              \
      int64_t col = (p0 + s * step) * 16;                                                                       \
      UNROLL                                                                                                    \
      for (int r = 0; r < MM; r++)                                                                              \
        _mm512_mask_storeu_ps(c + r * ldc + col, mks[s],                                                        \
                              !last || alpha == 1.f ? acc[r][s] : _mm512_mul_ps(acc[r][s], al));                \
    }                                                                                                           \
  }

/* AVX2: a panel is two 8-float halves */
#define F256_TILE(MM, NS)                                                                                       \
  __attribute__((target("avx2,fma"))) static void f256_##MM##_##NS(                                           \
      const float* a, int64_t lda, int64_t k, int64_t k0, int64_t k1, int first, int last, const float* w,      \
      int64_t p0, int64_t step, float* c, int64_t ldc, int64_t n, float alpha) {                                \
    __m256 acc[MM][NS][2];                                                                                      \
    const float* ws[NS];                                                                                        \
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);                                             \
    UNROLL                                                                                                     \
    for (int s = 0; s < NS; s++) ws[s] = w + (size_t)(p0 + s * step) * k * 16;                                 \
    UNROLL                                                                                                      \
    for (int s = 0; s < NS; s++) {                                                                              \
      int64_t col = (p0 + s * step) * 16, cols = n - col < 16 ? n - col : 16;                                   \
      __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(cols < 8 ? cols : 8)), lane);                      \
      __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(cols > 8 ? cols - 8 : 0)), lane);                  \
      UNROLL                                                                                                   \
      for (int r = 0; r < MM; r++) {                                                                            \
        acc[r][s][0] = first      ? _mm256_setzero_ps()                                                         \
                       : cols == 16 ? _mm256_loadu_ps(c + r * ldc + col)                                         \
                                    : _mm256_maskload_ps(c + r * ldc + col, m0);                                  \
        acc[r][s][1] = first      ? _mm256_setzero_ps()                                                         \
                       : cols == 16 ? _mm256_loadu_ps(c + r * ldc + col + 8)                                     \
                                    : _mm256_maskload_ps(c + r * ldc + col + 8, m1);                              \
      }                                                                                                         \
    }                                                                                                           \
    for (int64_t kk = k0; kk < k1; kk++) {                                                                      \
      __m256 v[NS][2];                                                                                          \
      UNROLL                                                                                                    \
      for (int s = 0; s < NS; s++) {                                                                            \
        v[s][0] = _mm256_load_ps(ws[s] + kk * 16);                                                              \
        v[s][1] = _mm256_load_ps(ws[s] + kk * 16 + 8);                                                          \
        if (MM > 1)                                                                                            \
          _mm_prefetch((const char*)(ws[s] + kk * 16) + (MM <= 2 ? FPF_BYTES : FPF_ROWS_BYTES), _MM_HINT_T0);     \
      }                                                                                                         \
      UNROLL                                                                                                    \
      for (int r = 0; r < MM; r++) {                                                                            \
        __m256 x = _mm256_broadcast_ss(a + r * lda + kk);                                                       \
        UNROLL                                                                                                  \
        for (int s = 0; s < NS; s++) {                                                                          \
          acc[r][s][0] = _mm256_fmadd_ps(x, v[s][0], acc[r][s][0]);                                             \
          acc[r][s][1] = _mm256_fmadd_ps(x, v[s][1], acc[r][s][1]);                                             \
        }                                                                                                       \
      }                                                                                                         \
    }                                                                                                           \
    const __m256 al = _mm256_set1_ps(alpha);                                                                    \
    UNROLL                                                                                                      \
    for (int s = 0; s < NS; s++) {                                                                              \
      int64_t col = (p0 + s * step) * 16, cols = n - col < 16 ? n - col : 16;                                   \
      /* masked stores for a last, partial panel (no copy through memory: that kept the accumulators on the   \
       * stack in the loop) */                                                                                  \
      __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(cols < 8 ? cols : 8)), lane);                      \
      __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(cols > 8 ? cols - 8 : 0)), lane);                  \
      UNROLL                                                                                                    \
      for (int r = 0; r < MM; r++) {                                                                            \
        __m256 lo = acc[r][s][0], hi = acc[r][s][1];                                                            \
        if (last && alpha != 1.f) {                                                                             \
          lo = _mm256_mul_ps(lo, al);                                                                           \
          hi = _mm256_mul_ps(hi, al);                                                                           \
        }                                                                                                       \
        if (cols == 16) {                                                                                       \
          _mm256_storeu_ps(c + r * ldc + col, lo);                                                              \
          _mm256_storeu_ps(c + r * ldc + col + 8, hi);                                                          \
        } else {                                                                                                \
          _mm256_maskstore_ps(c + r * ldc + col, m0, lo);                                                       \
          _mm256_maskstore_ps(c + r * ldc + col + 8, m1, hi);                                                   \
        }                                                                                                       \
      }                                                                                                         \
    }                                                                                                           \
  }

F512_TILE(1, 4) F512_TILE(2, 4) F512_TILE(3, 4) F512_TILE(4, 4)
F512_TILE(5, 3) F512_TILE(6, 3) F512_TILE(7, 3) F512_TILE(8, 3)
F512_TILE(1, 1) F512_TILE(2, 1) F512_TILE(3, 1) F512_TILE(4, 1)
F512_TILE(5, 1) F512_TILE(6, 1) F512_TILE(7, 1) F512_TILE(8, 1)
F256_TILE(1, 4) F256_TILE(2, 2)
F256_TILE(1, 1) F256_TILE(2, 1) F256_TILE(3, 1) F256_TILE(4, 1) F256_TILE(5, 1) F256_TILE(6, 1)

/* [rows - 1]: the tile walking several streams and its one-stream form, and how many streams */
static const ftile_fn f512_tiles[8][2] = {{f512_1_4, f512_1_1}, {f512_2_4, f512_2_1}, {f512_3_4, f512_3_1},
                                          {f512_4_4, f512_4_1}, {f512_5_3, f512_5_1}, {f512_6_3, f512_6_1},
                                          {f512_7_3, f512_7_1}, {f512_8_3, f512_8_1}};
/* 5-8 rows: 3 streams, 24 accumulators + 3 weight vectors + the broadcast in 32 registers, no spill (2 streams
 * until 2026-12-05: an 8-row trunk step 3-10% slower, interleaved; one stream, with or without a prefetch into L1,
 * about 50% slower; docs/KERNELS.md "Float weights") */
static const int f512_streams[8] = {4, 4, 4, 4, 3, 3, 3, 3};
static const ftile_fn f256_tiles[6][2] = {{f256_1_4, f256_1_1}, {f256_2_2, f256_2_1}, {f256_3_1, f256_3_1},
                                          {f256_4_1, f256_4_1}, {f256_5_1, f256_5_1}, {f256_6_1, f256_6_1}};
static const int f256_streams[6] = {4, 2, 1, 1, 1, 1};

void uk_f32_gemm(const float* a, int64_t m, int64_t k, const float* w, int64_t n, float alpha, float* c, int64_t g0,
                 int64_t g1, int isa) {
  uk_f32_gemm_kc(a, m, k, w, n, alpha, c, g0, g1, isa, 0);
}

/* rows of the row group at r0 of m: at 5-16 rows on AVX2 (rest > 0) the rows after the first pair go in
 * ceil(left / rest) groups as even as they go (8 = 2 + 6, 10 = 2 + 4 + 4, 16 = 2 + 5 + 5 + 4), else groups of mm */
static inline int64_t group_rows(int64_t m, int64_t r0, int64_t mm, int64_t rest) {
  const int64_t left = m - r0;
  if (rest == 0 || r0 == 0) return left < mm ? left : mm;
  const int64_t groups = (left + rest - 1) / rest;
  return (left + groups - 1) / groups;
}

void uk_f32_gemm_kc(const float* a, int64_t m, int64_t k, const float* w, int64_t n, float alpha, float* c,
                    int64_t g0, int64_t g1, int isa, int64_t kblock) {
  const int vnni = isa == UK_ISA_AVX512_VNNI;
  /* AVX2 at 3-16 rows (a guided draw's 2 x --n): the first row pair runs the 2-stream tile, k in blocks of 64, so
   * that it reads the weights from memory in 2 streams and the other rows take each block from L1. The 6-row tile
   * walks one stream, which read this host's memory at about 3/4 of the rate of two: with all groups pairs, 12 paper
   * layers under AVX2 tiles at 3 / 4 / 8 / 16 rows 31.5 / 30.8-33.5 / 40.3-42.0 / 59.2-59.7 -> 24.7-25.6 /
   * 23.2-25.6 / 33.2-36.3 / 55.6-58.3 ms (session 47, docs/KERNELS.md "Float weights"). At 3-4 rows the other rows
   * are a pair or one row. From 5 rows they go in even groups of up to 6 on the one-stream tiles (once for each
   * stream's panel): a pair after the first ran 8 FMA chains on 6 loads a k, a k step as long as one FMA's latency;
   * the 6-row tile runs 12 on 8 (6 / 8 / 10 / 16 rows 25.6-28.2 / 30.8-33.5 / 34.9-39.1 / 49.1-54.4 -> 23.8-25.0 /
   * 26.4-28.8 / 30.6-32.0 / 41.2-42.7 ms, 4 rounds, session 48). The same bits: one FMA per k in order, whatever
   * the tile. */
  const int first_pair = !vnni && m > 2 && m <= 16;
  const int64_t rest = first_pair && m > 4 ? 6 : 0; /* the most rows of a group after the first pair; 0: as mm */
  const int64_t rows = vnni ? 8 : first_pair ? 2 : 6; /* the most rows of the first group's tile */
  const ftile_fn(*tiles)[2] = vnni ? f512_tiles : f256_tiles;
  const int64_t mm = m < rows ? m : rows; /* rows of the main tile; a smaller group, and every group after the
                                           * first pair at 5-16 rows on AVX2, walks one stream */
  const int64_t ns = (vnni ? f512_streams : f256_streams)[mm - 1];
  const int64_t per = (g1 - g0) / ns; /* panel sets: ns panels `per` apart */
  /* Each panel set is read once from memory; all row groups then take it from cache (at a prompt's
   * hundreds of rows, weights before activations keeps the matrix at one pass). */
  /* AVX2 with several row groups: k in blocks, so that each row group after the first takes the panel's block
   * from L1, not L2 (the 6-row tile's panel of K x 64 bytes outgrows L1). Under the AVX2 CPUID mask on an Intel
   * guest (session 45, docs/KERNELS.md "Float weights"): 12 paper layers at 8 rows 40.7-42.8 -> 33.3-35.3 ms with
   * blocks of 256 (6-row groups then), a 297-row prompt 547-575 -> 534-537 with blocks of 512 (256 level, 1024
   * slower). 3-16 rows take blocks of 64: with all groups pairs 32 and 96 were level at 3-10 rows and 7-10% slower
   * at 16 (session 47); with groups of up to 6 after the first pair, 32 and 128 were 2-9% slower at 5-12 rows
   * (session 48, docs/results/bench/2026-12-07-s48/chain-variants-avx2.txt). AVX-512 tiles hold 8 rows: there
   * blocks of 256 or 512 made a 297-row prompt slower (353 -> 363-378 ms), so they keep one. */
  const int64_t kc = kblock > 0 ? kblock : vnni || m <= mm ? k : first_pair ? 64 : 512; /* kblock: the tests' */
  for (int64_t i = 0; i < per + (g1 - g0 - per * ns); i++) {
    const int set = i < per;
    const int64_t p0 = set ? g0 + i : g0 + per * ns + (i - per);
    for (int64_t k0 = 0;; k0 += kc) { /* at least once: with K = 0 the tiles store zeros */
      const int64_t k1 = k - k0 < kc ? k : k0 + kc;
      const int first = k0 == 0, last = k1 == k;
      for (int64_t r0 = 0, rg = 0; r0 < m; r0 += rg) {
        rg = group_rows(m, r0, mm, rest);
        const float* ar = a + r0 * k;
        float* cr = c + r0 * n;
        if (set && rg == mm && (rest == 0 || r0 == 0)) {
          tiles[rg - 1][0](ar, k, k, k0, k1, first, last, w, p0, per, cr, n, n, alpha);
        } else {
          for (int64_t s = 0; s < (set ? ns : 1); s++)
            tiles[rg - 1][1](ar, k, k, k0, k1, first, last, w, p0 + s * per, 0, cr, n, n, alpha);
        }
      }
      if (last) break;
    }
  }
}

/* A read-bandwidth probe for the bench's roofline (benchmarks/roofline.py): the sum of n floats read as 4
 * parts side by side (streams = 4), as the tiles read their weights, or front to back (any other value). */
__attribute__((target("avx2"))) float uk_read_streams(const float* p, int64_t n, int streams) {
  const int ns = streams == 4 ? 4 : 1;
  const int64_t part = n / ns / 16 * 16;
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  if (ns == 4) {
    for (int64_t i = 0; i < part; i += 8) {
      a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
      a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + part + i));
      a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + 2 * part + i));
      a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + 3 * part + i));
    }
  } else {
    for (int64_t i = 0; i < part; i += 16) {
      a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
      a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
    }
  }
  float out[8], total = 0.f;
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (int j = 0; j < 8; j++) total += out[j];
  for (int64_t i = part * ns; i < n; i++) total += p[i];
  return total;
}
