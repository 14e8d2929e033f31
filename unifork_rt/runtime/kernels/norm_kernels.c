/* unifork-rt: com.microsoft SkipLayerNormalization (float), rows of a tensor, as ONNX Runtime's CPU kernel
 * defines it (contrib_ops/cpu/skip_layer_norm.cc):
 *
 *   s = x + skip (+ bias)   (written to `sum` too where the node asks for it: output 3)
 *   mean = sum(s) / H,  d = sqrt(sum(s * s) / H - mean * mean + eps),  y = (s - mean) / d * gamma (+ beta)
 *
 * ONNX Runtime's kernel took about 3 us a row of 896 in onnxruntime 1.32 (its SkipSimplifiedLayerNormalization,
 * the decoders', under 1: that one stays ONNX Runtime's). Here the sums run over lanes of
 * vectors (4 of them, for the adds' latency), which changes their rounding: the results differ from ONNX
 * Runtime's in the last bits (tests/test_norm_kernel.py prints the largest difference, and ours is the closer
 * to a float64 reference). The subtraction, division and products after them are ONNX Runtime's, in its order,
 * one lane at a time. docs/KERNELS.md, "Layer norms, and the attention's cache writes". */
#include <immintrin.h>
#include <math.h>

#include "qmatmul_kernels.h"

/* row r's pointers: skip repeats every skip_size floats, as ONNX Runtime reads it (offset % skip_size) */
#define NORM_ROW_POINTERS(P, R)                                    \
  const int64_t h = (P)->h, off = (R) * h;                         \
  const float *x = (P)->x + off, *sk = (P)->skip + off % (P)->skip_size; \
  float *y = (P)->y + off, *sum = (P)->sum ? (P)->sum + off : 0;

static void norm_row_tail(const uk_norm* p, const float* x, const float* sk, float* y, float* sum, int64_t i0,
                          int64_t h, float* s, float* q) {
  for (int64_t i = i0; i < h; i++) {
    float v = x[i] + sk[i];
    if (p->bias) v += p->bias[i];
    if (sum) sum[i] = v;
    y[i] = v;
    *s += v;
    *q += v * v;
  }
}

static float norm_divisor(const uk_norm* p, float s, float q) {
  const float mean = s / (float)p->h;
  return sqrtf(q / (float)p->h - mean * mean + p->eps);
}

static void norm_scale_tail(const uk_norm* p, float* y, int64_t i0, int64_t h, float mean, float d) {
  for (int64_t i = i0; i < h; i++) {
    float v = (y[i] - mean) / d * p->gamma[i];
    if (p->beta) v += p->beta[i];
    y[i] = v;
  }
}

__attribute__((target("avx512f"))) static void norm_row_avx512(const uk_norm* p, int64_t r) {
  NORM_ROW_POINTERS(p, r)
  __m512 s[4], q[4];
  for (int j = 0; j < 4; j++) s[j] = q[j] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= h; i += 16) {
    __m512 v = _mm512_add_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(sk + i));
    if (p->bias) v = _mm512_add_ps(v, _mm512_loadu_ps(p->bias + i));
    if (sum) _mm512_storeu_ps(sum + i, v);
    _mm512_storeu_ps(y + i, v);
    const int j = (int)(i >> 4) & 3;
    s[j] = _mm512_add_ps(s[j], v);
    q[j] = _mm512_fmadd_ps(v, v, q[j]);
  }
  float st = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s[0], s[1]), _mm512_add_ps(s[2], s[3])));
  float qt = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(q[0], q[1]), _mm512_add_ps(q[2], q[3])));
  norm_row_tail(p, x, sk, y, sum, i, h, &st, &qt);
  const float d = norm_divisor(p, st, qt), mean = st / (float)h;
  const __m512 dv = _mm512_set1_ps(d), mv = _mm512_set1_ps(mean);
  for (i = 0; i + 16 <= h; i += 16) {
    __m512 v = _mm512_loadu_ps(y + i);
    v = _mm512_mul_ps(_mm512_div_ps(_mm512_sub_ps(v, mv), dv), _mm512_loadu_ps(p->gamma + i));
    if (p->beta) v = _mm512_add_ps(v, _mm512_loadu_ps(p->beta + i));
    _mm512_storeu_ps(y + i, v);
  }
  norm_scale_tail(p, y, i, h, mean, d);
}

__attribute__((target("avx2,fma"))) static void norm_row_avx2(const uk_norm* p, int64_t r) {
  NORM_ROW_POINTERS(p, r)
  __m256 s[4], q[4];
  for (int j = 0; j < 4; j++) s[j] = q[j] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= h; i += 8) {
    __m256 v = _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(sk + i));
    if (p->bias) v = _mm256_add_ps(v, _mm256_loadu_ps(p->bias + i));
    if (sum) _mm256_storeu_ps(sum + i, v);
    _mm256_storeu_ps(y + i, v);
    const int j = (int)(i >> 3) & 3;
    s[j] = _mm256_add_ps(s[j], v);
    q[j] = _mm256_fmadd_ps(v, v, q[j]);
  }
  __m256 s4 = _mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3]));
  __m256 q4 = _mm256_add_ps(_mm256_add_ps(q[0], q[1]), _mm256_add_ps(q[2], q[3]));
  float sl[8], ql[8];
  _mm256_storeu_ps(sl, s4);
  _mm256_storeu_ps(ql, q4);
  float st = ((sl[0] + sl[4]) + (sl[1] + sl[5])) + ((sl[2] + sl[6]) + (sl[3] + sl[7]));
  float qt = ((ql[0] + ql[4]) + (ql[1] + ql[5])) + ((ql[2] + ql[6]) + (ql[3] + ql[7]));
  norm_row_tail(p, x, sk, y, sum, i, h, &st, &qt);
  const float d = norm_divisor(p, st, qt), mean = st / (float)h;
  const __m256 dv = _mm256_set1_ps(d), mv = _mm256_set1_ps(mean);
  for (i = 0; i + 8 <= h; i += 8) {
    __m256 v = _mm256_loadu_ps(y + i);
    v = _mm256_mul_ps(_mm256_div_ps(_mm256_sub_ps(v, mv), dv), _mm256_loadu_ps(p->gamma + i));
    if (p->beta) v = _mm256_add_ps(v, _mm256_loadu_ps(p->beta + i));
    _mm256_storeu_ps(y + i, v);
  }
  norm_scale_tail(p, y, i, h, mean, d);
}

void uk_skip_norm_rows(const uk_norm* p, int64_t r0, int64_t r1, int isa) {
  for (int64_t r = r0; r < r1; r++) {
    if (isa == UK_ISA_AVX512_VNNI) norm_row_avx512(p, r);
    else norm_row_avx2(p, r);
  }
}
