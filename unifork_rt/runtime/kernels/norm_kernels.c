/* unifork-rt: com.microsoft SkipLayerNormalization (float), rows of a tensor, as ONNX Runtime's CPU kernel
 * defines it (contrib_ops/cpu/skip_layer_norm.cc):
 *
 *   s = x + skip (+ bias)   (written to `sum` too where the node asks for it: output 3)
 *   mean = sum(s) / H,  d = sqrt(sum(s * s) / H - mean * mean + eps),  y = (s - mean) / d * gamma (+ beta)
 *
 * ONNX Runtime's kernel took about 3 us a row of 896 in onnxruntime 1.32 (its SkipSimplifiedLayerNormalization,
 * the decoders', under 1: that one stays ONNX Runtime's). Here the sums of s and s * s run in double over the lanes
 * of vectors, the variance clamped at 0 (NORM_ROW); the subtraction, division and products after them are ONNX
 * Runtime's, in float, in its order, one lane at a time. The results differ from ONNX Runtime's in the last bits
 * (tests/test_norm_kernel.py prints the largest difference against it and against a float64 reference); a row of
 * equal values gives beta exactly, as ONNX Runtime's does. docs/KERNELS.md, "Layer norms, and the attention's cache
 * writes". */
#include <immintrin.h>
#include <math.h>

#include "qmatmul_kernels.h"

static void norm_row_tail(const uk_norm* p, const float* x, const float* sk, float* y, float* sum, int64_t i0,
                          int64_t h, double* s, double* q) {
  for (int64_t i = i0; i < h; i++) {
    float v = x[i] + sk[i];
    if (p->bias) v += p->bias[i];
    if (sum) sum[i] = v;
    y[i] = v;
    *s += v;
    *q += (double)v * v;
  }
}

/* the mean and the divisor sqrt(var + eps) from the sums of s and s * s, in double; the variance is clamped at 0
 * (a constant row's s * s and mean * mean may differ by a rounding either way) */
static void norm_stats(const uk_norm* p, double s, double q, float* mean, float* d) {
  const double m = s / (double)p->h, var = q / (double)p->h - m * m;
  *mean = (float)m;
  *d = (float)sqrt((var > 0 ? var : 0) + (double)p->eps);
}

static void norm_scale_tail(const uk_norm* p, float* y, int64_t i0, int64_t h, float mean, float d) {
  for (int64_t i = i0; i < h; i++) {
    float v = (y[i] - mean) / d * p->gamma[i];
    if (p->beta) v += p->beta[i];
    y[i] = v;
  }
}

/* One row, written once for both widths: V the float vector type, W its floats, VD the double vector of W / 2; the
 * sums of s and s * s in double (CVT_LO / CVT_HI widen a float vector's halves), so that a row's mean comes out exact
 * where its values are all the same and the variance does not vanish into float rounding; the scaling in float. */
#define NORM_ROW(V, W, VD, LOADU, STOREU, ADD, SUB, MUL, DIV, SET1, CVT_LO, CVT_HI, ADDD, FMAD, ZEROD, REDUCED) \
  /* row r; skip repeats every skip_size floats, as ONNX Runtime reads it (offset % skip_size) */             \
  const int64_t h = p->h, off = r * h;                                                    \
  const float *x = p->x + off, *sk = p->skip + off % p->skip_size;                       \
  float *y = p->y + off, *sum = p->sum ? p->sum + off : 0;                                \
  VD s[2], q[2];                                                                          \
  for (int j = 0; j < 2; j++) s[j] = q[j] = ZEROD();                                     \
  int64_t i = 0;                                                                          \
  for (; i + W <= h; i += W) {                                                            \
    V v = ADD(LOADU(x + i), LOADU(sk + i));                                               \
    if (p->bias) v = ADD(v, LOADU(p->bias + i));                                          \
    if (sum) STOREU(sum + i, v);                                                          \
    STOREU(y + i, v);                                                                     \
    const VD lo = CVT_LO(v), hi = CVT_HI(v);                                              \
    s[0] = ADDD(s[0], lo);                                                                \
    s[1] = ADDD(s[1], hi);                                                                \
    q[0] = FMAD(lo, lo, q[0]);                                                            \
    q[1] = FMAD(hi, hi, q[1]);                                                            \
  }                                                                                       \
  double st = REDUCED(ADDD(s[0], s[1])), qt = REDUCED(ADDD(q[0], q[1]));                  \
  norm_row_tail(p, x, sk, y, sum, i, h, &st, &qt);                                       \
  float mean, d;                                                                          \
  norm_stats(p, st, qt, &mean, &d);                                                       \
  const V dv = SET1(d), mv = SET1(mean);                                                  \
  for (i = 0; i + W <= h; i += W) {                                                       \
    V v = MUL(DIV(SUB(LOADU(y + i), mv), dv), LOADU(p->gamma + i));                       \
    if (p->beta) v = ADD(v, LOADU(p->beta + i));                                          \
    STOREU(y + i, v);                                                                     \
  }                                                                                       \
  norm_scale_tail(p, y, i, h, mean, d);

#define CVT512_LO(v) _mm512_cvtps_pd(_mm512_castps512_ps256(v))
#define CVT512_HI(v) _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)))
#define CVT256_LO(v) _mm256_cvtps_pd(_mm256_castps256_ps128(v))
#define CVT256_HI(v) _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))

__attribute__((target("avx2"))) static inline double reduce256d(__m256d v) {
  double l[4];
  _mm256_storeu_pd(l, v);
  return (l[0] + l[2]) + (l[1] + l[3]);
}

__attribute__((target("avx512f"))) static void norm_row_avx512(const uk_norm* p, int64_t r) {
  NORM_ROW(__m512, 16, __m512d, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps,
           _mm512_div_ps, _mm512_set1_ps, CVT512_LO, CVT512_HI, _mm512_add_pd, _mm512_fmadd_pd, _mm512_setzero_pd,
           _mm512_reduce_add_pd)
}

__attribute__((target("avx2,fma"))) static void norm_row_avx2(const uk_norm* p, int64_t r) {
  NORM_ROW(__m256, 8, __m256d, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_add_ps, _mm256_sub_ps, _mm256_mul_ps,
           _mm256_div_ps, _mm256_set1_ps, CVT256_LO, CVT256_HI, _mm256_add_pd, _mm256_fmadd_pd, _mm256_setzero_pd,
           reduce256d)
}

void uk_skip_norm_rows(const uk_norm* p, int64_t r0, int64_t r1, int isa) {
  for (int64_t r = r0; r < r1; r++) {
    if (isa == UK_ISA_AVX512_VNNI) norm_row_avx512(p, r);
    else norm_row_avx2(p, r);
  }
}
