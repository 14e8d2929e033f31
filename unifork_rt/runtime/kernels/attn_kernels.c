/* unifork-rt: the attention of com.microsoft GroupQueryAttention as our `--graphs ort` graphs use it
 * (declared in qmatmul_kernels.h; the op around it is in qmatmul_op.c).
 *
 * ONNX Runtime's CPU kernel runs two MLAS GEMMs per (row, query head), each packing its K or V slice
 * first: at `paper` with 8 rows (a guided `draw --n 4`) that was 0.24 ms per layer, 2.9 of the trunk's
 * 10.3 ms (docs/KERNELS.md, "Attention"). Here one task takes one (row, KV head) and a range of new
 * tokens, and reads that head's keys and values straight from the cache: q·k dot products, a softmax
 * with a vectorized exp, and the weighted sum of the values, in float32. The query heads of a group are
 * computed together, each key and value vector loaded once for all of them (GROUP_ROWS_W, for groups of 2, 3, 4,
 * 6, 7 and 8 and head sizes of whole vectors: 16 floats on AVX-512 VNNI CPUs, the level uk_isa picks, 8 on AVX2
 * since session 48); otherwise each query head reads them in turn (ATTN_ROWS). Each output row is computed by one task in a fixed order, so
 * it does not depend on the thread count or on the other rows of the batch.
 */
#include "qmatmul_kernels.h"

#include <immintrin.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* rotate_half rotary (ONNX Runtime's rotary_interleaved = 0) of one head of dh floats at position p */
static void rotate(const uk_attn* a, const float* x, int64_t p, float* out) {
  const int64_t half = a->dh / 2;
  const float *c = a->cos_cache + p * half, *s = a->sin_cache + p * half;
  for (int64_t i = 0; i < half; i++) {
    float x1 = x[i], x2 = x[i + half];
    out[i] = x1 * c[i] - x2 * s[i];
    out[i + half] = x2 * c[i] + x1 * s[i];
  }
}

int64_t uk_attn_past(const uk_attn* a, int64_t b) { return (int64_t)a->seqlens_k[b] + 1 - a->t; }

int64_t uk_attn_position(const uk_attn* a, int64_t b, int64_t t) {
  return a->position_ids ? a->position_ids[b * a->t + t] : uk_attn_past(a, b) + t;
}

/* query head h of token (b, t), rotated and scaled, into q (dh floats); inlined into each ISA's code, which compiles
 * the rotation with its FMAs (not inlined, without them, the AVX2 outputs changed in the last bits) */
static inline __attribute__((always_inline)) void load_query(const uk_attn* a, int64_t b, int64_t t, int64_t h, float* q) {
  const float* qs = a->q + (size_t)(b * a->t + t) * a->q_stride + (size_t)h * a->dh;
  if (a->cos_cache) rotate(a, qs, uk_attn_position(a, b, t), q);
  else memcpy(q, qs, (size_t)a->dh * sizeof(float));
  for (int64_t i = 0; i < a->dh; i++) q[i] *= a->scale;
}

/* the bias added to query head h's scores at token (b, t) (total floats), or NULL */
static inline const float* bias_row(const uk_attn* a, int64_t b, int64_t h, int64_t t) {
  return a->bias ? a->bias + (((b % a->bias_b) * a->bias_h + h % a->bias_h) * a->t + t) * a->total : NULL;
}

void uk_attn_write_kv_pairs(const uk_attn* a, int64_t bh0, int64_t bh1) {
  for (int64_t bh = bh0; bh < bh1; bh++) {
    const int64_t b = bh / a->hkv, h = bh % a->hkv;
    for (int64_t t = 0; t < a->t; t++) {
      const size_t src = (size_t)(b * a->t + t) * a->kv_stride + (size_t)h * a->dh;
      const size_t dst = ((size_t)(b * a->hkv + h) * a->cap + uk_attn_past(a, b) + t) * a->dh;
      if (a->cos_cache) rotate(a, a->k + src, uk_attn_position(a, b, t), a->kc + dst);
      else memcpy(a->kc + dst, a->k + src, (size_t)a->dh * sizeof(float));
      memcpy(a->vc + dst, a->v + src, (size_t)a->dh * sizeof(float));
    }
  }
}

void uk_attn_write_kv(const uk_attn* a) { uk_attn_write_kv_pairs(a, 0, a->b * a->hkv); }

/* the cache lines of [p, p + bytes), at most `lines` of them from the first (software prefetches into L1; they do
 * not fault). By address: p need not start a line */
static void prefetch_lines(const void* p, size_t bytes, size_t lines) {
  const uintptr_t end = (uintptr_t)p + bytes;
  uintptr_t x = (uintptr_t)p & ~(uintptr_t)63;
  for (size_t n = 0; x < end && n < lines; x += 64, n++) _mm_prefetch((const char*)x, _MM_HINT_T0);
}

void uk_attn_prefetch_pair(const uk_attn* a, int64_t bh, int write) {
  if (bh < 0 || bh >= a->b * a->hkv) return; /* no pair: nothing read (past(b) reads seqlens_k[b]) */
  const int64_t b = bh / a->hkv, h = bh % a->hkv, group = a->hq / a->hkv, past = uk_attn_past(a, b);
  const size_t head = (size_t)a->dh * sizeof(float), pair = (size_t)(b * a->hkv + h) * a->cap * a->dh;
  for (int64_t t = 0; t < a->t; t++) {
    if (write) {
      const size_t src = (size_t)(b * a->t + t) * a->kv_stride + (size_t)h * a->dh;
      prefetch_lines(a->k + src, head, 8);
      prefetch_lines(a->v + src, head, 8);
    } else {
      prefetch_lines(a->q + (size_t)(b * a->t + t) * a->q_stride + (size_t)h * group * a->dh, head * group, 64);
    }
  }
  /* the keys and values read (or, writing, the slots written): the first 2 KB of each; longer caches are long
   * streams, which the hardware prefetchers follow */
  const size_t from = write ? (size_t)past : 0, keys = (size_t)(past + a->t) - from;
  prefetch_lines(a->kc + pair + from * a->dh, keys * head, 32);
  prefetch_lines(a->vc + pair + from * a->dh, keys * head, 32);
}

/* per task, the larger of ATTN_ROWS's (one query head's query and scores, cap padded) and GROUP_ROWS_W's (the
 * group's queries and scores, each row of scores cap padded to whole vectors) */
size_t uk_attn_scratch_floats(const uk_attn* a) {
  const int64_t group = a->hq / a->hkv, one = a->cap + 16 + a->dh, grouped = group * (a->dh + (a->cap + 15) / 16 * 16);
  return (size_t)(one > grouped ? one : grouped);
}

/* exp(x) for x <= 0 on a vector (Cephes' expf: 2^n · e^r, |r| <= ln2/2, degree-6 polynomial, relative
 * error about 2e-7); below -87.3 the result is 0. EXP_BODY is written once for both widths. */
#define EXP_BODY(V, SET1, ADD, MUL, FMA, MAX, ROUND, CVT, SHL, CAST_PS, ADDI, SETI)                       \
  V lo = SET1(-87.3f);                                                                                        \
  V under = x;                                                                                                \
  x = MAX(x, lo);                                                                                             \
  V n = ROUND(MUL(x, SET1(1.44269504088896341f)));                                                            \
  V r = FMA(n, SET1(-0.693359375f), x);                                                                       \
  r = FMA(n, SET1(2.12194440e-4f), r);                                                                        \
  V p = SET1(1.9875691500e-4f);                                                                               \
  p = FMA(p, r, SET1(1.3981999507e-3f));                                                                      \
  p = FMA(p, r, SET1(8.3334519073e-3f));                                                                      \
  p = FMA(p, r, SET1(4.1665795894e-2f));                                                                      \
  p = FMA(p, r, SET1(1.6666665459e-1f));                                                                      \
  p = FMA(p, r, SET1(5.0000001201e-1f));                                                                      \
  p = FMA(MUL(p, r), r, ADD(r, SET1(1.f)));                                                                   \
  V scale = CAST_PS(SHL(ADDI(CVT(n), SETI(127)), 23));

#define _mm512_roundscale_ps_near(x) _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define _mm256_round_ps_near(x) _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

__attribute__((target("avx512f"))) static inline __m512 exp512(__m512 x) {
  EXP_BODY(__m512, _mm512_set1_ps, _mm512_add_ps, _mm512_mul_ps, _mm512_fmadd_ps, _mm512_max_ps,
           _mm512_roundscale_ps_near, _mm512_cvtps_epi32, _mm512_slli_epi32, _mm512_castsi512_ps, _mm512_add_epi32,
           _mm512_set1_epi32)
  __mmask16 zero = _mm512_cmp_ps_mask(under, lo, _CMP_LT_OQ);
  return _mm512_maskz_mul_ps((__mmask16)~zero, p, scale);
}

__attribute__((target("avx2,fma"))) static inline __m256 exp256(__m256 x) {
  EXP_BODY(__m256, _mm256_set1_ps, _mm256_add_ps, _mm256_mul_ps, _mm256_fmadd_ps, _mm256_max_ps,
           _mm256_round_ps_near, _mm256_cvtps_epi32, _mm256_slli_epi32, _mm256_castsi256_ps, _mm256_add_epi32,
           _mm256_set1_epi32)
  __m256 keep = _mm256_cmp_ps(under, lo, _CMP_GE_OQ);
  return _mm256_and_ps(_mm256_mul_ps(p, scale), keep);
}

/* The softmax of the n scores at S, in place, for both widths: padded with -inf to whole vectors, then exp(s - max)
 * and INV = 1 / their sum (in (0, 1]: the largest is exp(0) = 1). A NaN score makes OUT (DH floats) NaN and every key
 * masked (-inf or the float minimum) makes it zeros, as ONNX Runtime's kernel; INV is then 0. */
#define SOFTMAX_ROW(V, W, LOAD, STORE, SET1, ZERO, ADD, SUB, MAX, REDUCE_ADD, REDUCE_MAX, ANY_NAN, EXP, S, N, OUT, DH, \
                    INV)                                                                                      \
  {                                                                                                           \
    const int64_t np_ = (N + W - 1) / W * W;                                                                  \
    for (int64_t j = N; j < np_; j++) S[j] = -INFINITY;                                                       \
    V m = SET1(-INFINITY);                                                                                    \
    int nan = 0;                                                                                              \
    for (int64_t j = 0; j < np_; j += W) {                                                                    \
      const V x = LOAD(S + j);                                                                                \
      m = MAX(m, x);                                                                                          \
      nan |= ANY_NAN(x);                                                                                      \
    }                                                                                                         \
    const float topf = REDUCE_MAX(m);                                                                         \
    if (nan || topf <= -FLT_MAX) {                                                                            \
      for (int64_t i = 0; i < DH; i++) OUT[i] = nan ? NAN : 0.f;                                              \
      INV = 0.f;                                                                                              \
    } else {                                                                                                  \
      const V top = SET1(topf);                                                                               \
      V sum = ZERO();                                                                                         \
      for (int64_t j = 0; j < np_; j += W) {                                                                  \
        V e = EXP(SUB(LOAD(S + j), top));                                                                     \
        STORE(S + j, e);                                                                                      \
        sum = ADD(sum, e);                                                                                    \
      }                                                                                                       \
      INV = 1.f / REDUCE_ADD(sum);                                                                            \
    }                                                                                                         \
  }

/* One task's attention for both widths: V vector type, W floats per vector. For query head h of the
 * KV head kvh and new token t: scores s_j = q·k_j (q rotated and scaled) + bias, j over the row's
 * keys 0 .. past + t; p = softmax(s); out = sum_j p_j v_j. Tails past the last whole vector are
 * scalar. */
#define ATTN_ROWS(NAME, TARGET, V, W, LOAD, STORE, SET1, ZERO, ADD, SUB, FMA, MUL, MAX, REDUCE_ADD, REDUCE_MAX, \
                  REDUCE_W, ANY_NAN, EXP)                                                                     \
  __attribute__((target(TARGET))) static void NAME(const uk_attn* a, int64_t b, int64_t kvh, int64_t t0,      \
                                                   int64_t t1, float* scratch) {                              \
    const int64_t dh = a->dh, group = a->hq / a->hkv, dv = dh / W * W;                                        \
    float* q = scratch;                                                                                       \
    float* s = scratch + dh; /* scores, padded to whole vectors */                                            \
    const float* kc = a->kc + (size_t)(b * a->hkv + kvh) * a->cap * dh;                                       \
    const float* vc = a->vc + (size_t)(b * a->hkv + kvh) * a->cap * dh;                                       \
    for (int64_t t = t0; t < t1; t++) {                                                                       \
      const int64_t n = uk_attn_past(a, b) + t + 1;                                                           \
      for (int64_t g = 0; g < group; g++) {                                                                   \
        const int64_t h = kvh * group + g;                                                                    \
        load_query(a, b, t, h, q);                                                                            \
        const float* bias = bias_row(a, b, h, t);                                                             \
        int64_t j = 0;                                                                                        \
        if (dv == dh) /* W keys at a time, their W sums gathered by one transposing reduction */              \
          for (; j + W <= n; j += W) {                                                                        \
            const float* k = kc + (size_t)j * dh;                                                             \
            V acc[W];                                                                                         \
            for (int l = 0; l < W; l++) acc[l] = ZERO();                                                      \
            for (int64_t i = 0; i < dh; i += W) {                                                             \
              const V qi = LOAD(q + i);                                                                       \
              for (int l = 0; l < W; l++) acc[l] = FMA(qi, LOAD(k + (size_t)l * dh + i), acc[l]);             \
            }                                                                                                 \
            V d = REDUCE_W(acc);                                                                              \
            if (bias) d = ADD(d, LOAD(bias + j));                                                             \
            STORE(s + j, d);                                                                                  \
          }                                                                                                   \
        for (; j < n; j++) {                                                                                  \
          const float* k = kc + (size_t)j * dh;                                                               \
          V acc = ZERO();                                                                                     \
          for (int64_t i = 0; i < dv; i += W) acc = FMA(LOAD(q + i), LOAD(k + i), acc);                       \
          float d = REDUCE_ADD(acc);                                                                          \
          for (int64_t i = dv; i < dh; i++) d += q[i] * k[i];                                                 \
          s[j] = bias ? d + bias[j] : d;                                                                      \
        }                                                                                                     \
        float* out = a->out + (size_t)(b * a->t + t) * a->hq * dh + (size_t)h * dh;                           \
        float inv;                                                                                            \
        SOFTMAX_ROW(V, W, LOAD, STORE, SET1, ZERO, ADD, SUB, MAX, REDUCE_ADD, REDUCE_MAX, ANY_NAN, EXP, s, n, out, \
                    dh, inv)                                                                                  \
        if (inv == 0.f) continue;                                                                             \
        for (int64_t i0 = 0; i0 < dv; i0 += 4 * W) {                                                          \
          V o0 = ZERO(), o1 = ZERO(), o2 = ZERO(), o3 = ZERO();                                               \
          const int64_t w = dv - i0 < 4 * W ? dv - i0 : 4 * W;                                                \
          V e0 = ZERO(), e1 = ZERO(), e2 = ZERO(), e3 = ZERO(); /* odd keys: two chains of FMAs */            \
          int64_t j = 0;                                                                                      \
          for (; j + 2 <= n; j += 2) {                                                                        \
            const V pj = SET1(s[j]), pk = SET1(s[j + 1]);                                                     \
            const float* v = vc + (size_t)j * dh + i0;                                                        \
            o0 = FMA(pj, LOAD(v), o0);                                                                        \
            e0 = FMA(pk, LOAD(v + dh), e0);                                                                   \
            if (w > W) o1 = FMA(pj, LOAD(v + W), o1), e1 = FMA(pk, LOAD(v + dh + W), e1);                     \
            if (w > 2 * W) o2 = FMA(pj, LOAD(v + 2 * W), o2), e2 = FMA(pk, LOAD(v + dh + 2 * W), e2);         \
            if (w > 3 * W) o3 = FMA(pj, LOAD(v + 3 * W), o3), e3 = FMA(pk, LOAD(v + dh + 3 * W), e3);         \
          }                                                                                                   \
          for (; j < n; j++) {                                                                                \
            const V pj = SET1(s[j]);                                                                          \
            const float* v = vc + (size_t)j * dh + i0;                                                        \
            o0 = FMA(pj, LOAD(v), o0);                                                                        \
            if (w > W) o1 = FMA(pj, LOAD(v + W), o1);                                                         \
            if (w > 2 * W) o2 = FMA(pj, LOAD(v + 2 * W), o2);                                                 \
            if (w > 3 * W) o3 = FMA(pj, LOAD(v + 3 * W), o3);                                                 \
          }                                                                                                   \
          o0 = ADD(o0, e0), o1 = ADD(o1, e1), o2 = ADD(o2, e2), o3 = ADD(o3, e3);                             \
          const V iv = SET1(inv);                                                                             \
          STORE(out + i0, MUL(o0, iv));                                                                       \
          if (w > W) STORE(out + i0 + W, MUL(o1, iv));                                                        \
          if (w > 2 * W) STORE(out + i0 + 2 * W, MUL(o2, iv));                                                \
          if (w > 3 * W) STORE(out + i0 + 3 * W, MUL(o3, iv));                                                \
        }                                                                                                     \
        for (int64_t i = dv; i < dh; i++) {                                                                   \
          float o = 0.f;                                                                                      \
          for (int64_t j = 0; j < n; j++) o += s[j] * vc[(size_t)j * dh + i];                                 \
          out[i] = o * inv;                                                                                   \
        }                                                                                                     \
      }                                                                                                       \
    }                                                                                                         \
  }

__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  return _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)));
}
__attribute__((target("avx2,fma"))) static inline float hmax256(__m256 v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  return _mm_cvtss_f32(_mm_max_ss(x, _mm_movehdup_ps(x)));
}

/* r[l] = the sum of the lanes of v[l], l < W: pairs interleaved and added, then quads, then 128-bit lanes */
__attribute__((target("avx512f"))) static inline __m512 reduce16(const __m512* v) {
  __m512 w[8], x[4];
  for (int i = 0; i < 8; i++)
    w[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
  for (int i = 0; i < 4; i++)
    x[i] = _mm512_add_ps(_mm512_shuffle_ps(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  __m512 s01 = _mm512_add_ps(_mm512_shuffle_f32x4(x[0], x[1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(x[0], x[1], _MM_SHUFFLE(3, 1, 3, 1)));
  __m512 s23 = _mm512_add_ps(_mm512_shuffle_f32x4(x[2], x[3], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(x[2], x[3], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(3, 1, 3, 1)));
}
__attribute__((target("avx2,fma"))) static inline __m256 reduce8(const __m256* v) {
  __m256 w[4], x[2];
  for (int i = 0; i < 4; i++)
    w[i] = _mm256_add_ps(_mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]));
  for (int i = 0; i < 2; i++)
    x[i] = _mm256_add_ps(_mm256_shuffle_ps(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm256_shuffle_ps(w[2 * i], w[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  return _mm256_add_ps(_mm256_permute2f128_ps(x[0], x[1], 0x20), _mm256_permute2f128_ps(x[0], x[1], 0x31));
}

__attribute__((target("avx512f"))) static inline int any_nan512(__m512 x) {
  return _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q) != 0;
}
__attribute__((target("avx2,fma"))) static inline int any_nan256(__m256 x) {
  return _mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)) != 0;
}

/* Each width's target, vector type, floats per vector and operations, in the order ATTN_ROWS and GROUP_ROWS_W take
 * them; WITH_OPS expands the list into the macro's arguments. */
#define OPS512                                                                                                 \
  "avx512f", __m512, 16, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_add_ps,   \
      _mm512_sub_ps, _mm512_fmadd_ps, _mm512_mul_ps, _mm512_max_ps, _mm512_reduce_add_ps, _mm512_reduce_max_ps,  \
      reduce16, any_nan512, exp512
#define OPS256                                                                                                 \
  "avx2,fma", __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_set1_ps, _mm256_setzero_ps, _mm256_add_ps,   \
      _mm256_sub_ps, _mm256_fmadd_ps, _mm256_mul_ps, _mm256_max_ps, hsum256, hmax256, reduce8, any_nan256, exp256
#define WITH_OPS(MACRO, ...) MACRO(__VA_ARGS__)

WITH_OPS(ATTN_ROWS, attn_rows_avx512, OPS512)
WITH_OPS(ATTN_ROWS, attn_rows_avx2, OPS256)

/* The query heads of a group together (head size a multiple of the vector width), G of them: each key and value
 * vector of the (row, KV head) is loaded once for all G heads, where ATTN_ROWS reads the group's keys and values
 * once per query head (7 times for paper's 14 / 2 heads: at 8 rows and 140 keys a trunk layer's attention took
 * 81 us against 30 at 2 rows, docs/KERNELS.md "Attention"). Scores: KB keys at a time, the G x KB dot products in
 * accumulators reduced by one transposing reduction (G x KB <= W). Softmax per head as ATTN_ROWS. Values: C output
 * vectors of every head at a time (G x C accumulators), each value vector loaded once. The sums are taken in a
 * fixed order per row, as in ATTN_ROWS, so a row's outputs do not depend on the batch or the thread count; the
 * order differs from ATTN_ROWS's (one chain per output vector, keys in order), so the bits differ from it by
 * float rounding. One macro for both widths: V vector type, W floats per vector (AVX-512 since session 41, AVX2
 * since session 48). */
enum { PF_KEYS = 32 };
#define GROUP_ROWS_W(NAME, G, KB, C, TARGET, V, W, LOAD, STORE, SET1, ZERO, ADD, SUB, FMA, MUL, MAX, REDUCE_ADD,    \
                     REDUCE_MAX, REDUCE_W, ANY_NAN, EXP)                                                       \
  __attribute__((target(TARGET))) static void NAME(const uk_attn* a, int64_t b, int64_t kvh, int64_t t0,       \
                                                   int64_t t1, float* scratch) {                               \
    const int64_t dh = a->dh, nv = dh / W, sp = (a->cap + 15) / 16 * 16;                                      \
    float* q = scratch;          /* G x dh */                                                                 \
    float* s = scratch + G * dh; /* G x sp */                                                                 \
    const float* kc = a->kc + (size_t)(b * a->hkv + kvh) * a->cap * dh;                                       \
    const float* vc = a->vc + (size_t)(b * a->hkv + kvh) * a->cap * dh;                                       \
    for (int64_t t = t0; t < t1; t++) {                                                                       \
      const int64_t n = uk_attn_past(a, b) + t + 1;                                                           \
      for (int g = 0; g < G; g++) load_query(a, b, t, kvh * G + g, q + g * dh);                              \
      for (int64_t j = 0; j < n; j += KB) {                                                                   \
        V acc[W];                                                                                             \
        for (int l = 0; l < W; l++) acc[l] = ZERO();                                                          \
        if (j + PF_KEYS + KB <= n) /* keys PF_KEYS ahead (none past the row's last key) */                   \
          for (int64_t o = 0; o < KB * dh * 4; o += 64)                                                      \
            _mm_prefetch((const char*)(kc + (size_t)(j + PF_KEYS) * dh) + o, _MM_HINT_T0);                   \
        if (j + KB <= n) /* these keys' values, for the weighted sum */                                      \
          for (int64_t o = 0; o < KB * dh * 4; o += 64) _mm_prefetch((const char*)(vc + (size_t)j * dh) + o, _MM_HINT_T1); \
        for (int64_t i = 0; i < dh; i += W) {                                                                 \
          V kv[KB];                                                                                           \
          for (int kb = 0; kb < KB; kb++) kv[kb] = j + kb < n ? LOAD(kc + (size_t)(j + kb) * dh + i) : ZERO(); \
          for (int g = 0; g < G; g++) {                                                                       \
            const V qv = LOAD(q + g * dh + i);                                                                \
            for (int kb = 0; kb < KB; kb++) acc[g * KB + kb] = FMA(qv, kv[kb], acc[g * KB + kb]);             \
          }                                                                                                   \
        }                                                                                                     \
        float d[W];                                                                                           \
        STORE(d, REDUCE_W(acc));                                                                              \
        for (int g = 0; g < G; g++)                                                                           \
          for (int kb = 0; kb < KB && j + kb < n; kb++) s[g * sp + j + kb] = d[g * KB + kb];                  \
      }                                                                                                       \
      float* out0 = a->out + (size_t)(b * a->t + t) * a->hq * dh + (size_t)kvh * G * dh;                      \
      float inv[G]; /* 0 for a head whose output SOFTMAX_ROW wrote (NaN or all keys masked) */                \
      for (int g = 0; g < G; g++) {                                                                           \
        float* sg = s + g * sp;                                                                               \
        const float* bias = bias_row(a, b, kvh * G + g, t);                                                   \
        if (bias)                                                                                             \
          for (int64_t j = 0; j < n; j++) sg[j] += bias[j];                                                   \
        SOFTMAX_ROW(V, W, LOAD, STORE, SET1, ZERO, ADD, SUB, MAX, REDUCE_ADD, REDUCE_MAX, ANY_NAN, EXP, sg, n,   \
                    (out0 + (size_t)g * dh), dh, inv[g])                                                      \
      }                                                                                                       \
      int64_t v0 = 0;                                                                                         \
      for (; v0 + C <= nv; v0 += C) GROUP_PV(G, C, V, W, LOAD, STORE, SET1, ZERO, FMA, MUL)                   \
      for (; v0 < nv; v0++) GROUP_PV(G, 1, V, W, LOAD, STORE, SET1, ZERO, FMA, MUL)                           \
    }                                                                                                         \
  }
/* out[g][W (v0 + c) ..] = inv[g] x sum_j s[g][j] v[j][W (v0 + c) ..] for c < CC, heads g with inv[g] > 0 */
#define GROUP_PV(G, CC, V, W, LOAD, STORE, SET1, ZERO, FMA, MUL)                                               \
  {                                                                                                           \
    V o[G][CC];                                                                                               \
    for (int g = 0; g < G; g++)                                                                               \
      for (int c = 0; c < CC; c++) o[g][c] = ZERO();                                                          \
    for (int64_t j = 0; j < n; j++) {                                                                         \
      V vv[CC];                                                                                               \
      for (int c = 0; c < CC; c++) vv[c] = LOAD(vc + (size_t)j * dh + W * (v0 + c));                          \
      for (int g = 0; g < G; g++) {                                                                           \
        const V p = SET1(s[g * sp + j]);                                                                      \
        for (int c = 0; c < CC; c++) o[g][c] = FMA(p, vv[c], o[g][c]);                                        \
      }                                                                                                       \
    }                                                                                                         \
    for (int g = 0; g < G; g++)                                                                               \
      if (inv[g] != 0.f)                                                                                      \
        for (int c = 0; c < CC; c++) STORE(out0 + (size_t)g * dh + W * (v0 + c), MUL(o[g][c], SET1(inv[g])));  \
  }
#define GROUP_ROWS(G, KB, C) WITH_OPS(GROUP_ROWS_W, attn_group##G, G, KB, C, OPS512)
/* AVX2: G x KB <= 8 dot products a reduction, G x C + C + 1 of the 16 registers in the value pass */
#define GROUP_ROWS256(G, KB, C) WITH_OPS(GROUP_ROWS_W, attn_group256_##G, G, KB, C, OPS256)

GROUP_ROWS(2, 8, 8) GROUP_ROWS(3, 5, 6) GROUP_ROWS(4, 4, 5) GROUP_ROWS(6, 2, 3) GROUP_ROWS(7, 2, 3) GROUP_ROWS(8, 2, 2)
GROUP_ROWS256(2, 4, 4) GROUP_ROWS256(3, 2, 3) GROUP_ROWS256(4, 2, 2) GROUP_ROWS256(6, 1, 2) GROUP_ROWS256(7, 1, 1)
GROUP_ROWS256(8, 1, 1)

typedef void (*group_fn)(const uk_attn*, int64_t, int64_t, int64_t, int64_t, float*);
static group_fn group_rows(int64_t group, int avx512) {
  switch (group) {
    case 2: return avx512 ? attn_group2 : attn_group256_2;
    case 3: return avx512 ? attn_group3 : attn_group256_3;
    case 4: return avx512 ? attn_group4 : attn_group256_4;
    case 6: return avx512 ? attn_group6 : attn_group256_6;
    case 7: return avx512 ? attn_group7 : attn_group256_7;
    case 8: return avx512 ? attn_group8 : attn_group256_8;
    default: return NULL;
  }
}

/* isa: AVX2 or AVX-512 VNNI (the op registers nowhere else; UK_ISA_NONE would run the AVX2 code as before) */
void uk_attn_rows(const uk_attn* a, int64_t b, int64_t kvh, int64_t t0, int64_t t1, float* scratch, int isa) {
  const int avx512 = isa == UK_ISA_AVX512_VNNI;
  group_fn grouped = isa != UK_ISA_NONE && a->dh % (avx512 ? 16 : 8) == 0 ? group_rows(a->hq / a->hkv, avx512) : NULL;
  if (grouped) grouped(a, b, kvh, t0, t1, scratch);
  else if (isa == UK_ISA_AVX512_VNNI) attn_rows_avx512(a, b, kvh, t0, t1, scratch);
  else attn_rows_avx2(a, b, kvh, t0, t1, scratch);
}
