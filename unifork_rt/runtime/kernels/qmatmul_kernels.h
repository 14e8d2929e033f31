/* unifork-rt: integer GEMM for few-row activations against MatMulNBits-style block-quantized weights.
 *
 * Weights arrive from the graph in MatMulNBits' layout (B [N][blocks][blob], symmetric, no zero
 * points: 4-bit values stored with +8, 8-bit with +128; scales [N][blocks]) and are repacked once, at
 * load, into column groups of 16: for group g and block b, a run of 64-byte vectors in which byte
 * 4*j + i belongs to column 16*g + j and to the i-th of four consecutive k. With 4 bits one vector holds
 * two such quads (low nibbles: k..k+3, high nibbles: k+4..k+7). One VPDPBUSD (AVX-512 VNNI) then
 * multiplies 16 columns by 4 broadcast activation bytes, with no horizontal sums; on AVX2 the same
 * vector feeds VPMADDUBSW in two halves of 8 columns.
 *
 * Activations are quantized per row and per weight block to int8 (scale = max|a| / 127, rounding to
 * nearest even), as MatMulNBits does at accuracy level 4.
 */
#ifndef UNIFORK_QMATMUL_KERNELS_H
#define UNIFORK_QMATMUL_KERNELS_H
#include <stddef.h>
#include <stdint.h>

#define UK_ISA_NONE 0
#define UK_ISA_AVX2 1
#define UK_ISA_AVX512_VNNI 2

typedef struct {
  int bits;      /* 4 or 8 */
  int block;     /* weights per scale along K: a multiple of 16 */
  int64_t k;     /* logical K */
  int64_t n;     /* logical N */
  int64_t kp;    /* K padded to whole blocks */
  int64_t np;    /* N padded to a multiple of 16 */
} uk_shape;

int uk_isa(void);                                   /* the ISA this CPU runs (honours UNIFORK_RT_ISA=avx2) */
size_t uk_packed_bytes(const uk_shape* s);         /* bytes of the packed weights */
size_t uk_packed_scales(const uk_shape* s);        /* floats of the packed scales */
/* src: [n][kp/block][block*bits/8] bytes as MatMulNBits stores them; scales: [n][kp/block] */
void uk_pack(const uk_shape* s, const uint8_t* src, const float* scales, uint8_t* dst, float* dst_scales);
/* scratch floats/bytes for quantizing m rows */
size_t uk_scratch_bytes(const uk_shape* s, int64_t m);
/* C[m][n] = A[m][k] . W^T for the column groups [g0, g1) (16 columns each); A rows quantized by uk_quantize */
void uk_quantize(const uk_shape* s, const float* a, int64_t m, void* scratch);
/* DynamicQuantizeMatMul's activations (qmatmul_op.c): min(0, x) and max(0, x); then per row
 * q = clamp(round_half_even(x / scale) + zp, 0, 255) - shift (128: int8 a - 128; 0: uint8 a), returning the sum of
 * q (AVX2) */
void uk_range0(const float* x, int64_t n, float* lo, float* hi);
int32_t uk_quantize_u8(const float* x, int64_t n, float scale, int zp, int shift, int8_t* q);
void uk_gemm(const uk_shape* s, const void* scratch, int64_t m, const uint8_t* w, const float* ws,
             const float* bias, float* c, int64_t g0, int64_t g1, int isa);
/* uk_gemm for 8 bits in one block of K (kp = block), with CADD[n] (np int32) added to each column's integer sum
 * before it is scaled: the integer ops' column terms (qmatmul_op.c). The scratch's rows are int8 a - 128 on
 * AVX-512 VNNI (CADD (128 - zp) x column sums); on AVX2 (CADD -zp x column sums) uint8 a where every
 * |weight - 128| <= 64, else (WIDE) a >> 1, with a second [m][kp] array of a & 1 after the rows */
void uk_gemm_cadd(const uk_shape* s, const void* scratch, int64_t m, const uint8_t* w, const float* ws,
                  const float* bias, const int32_t* cadd, float* c, int64_t g0, int64_t g1, int isa, int wide);

/* Float weights (fmatmul_kernels.c): MatMul's constant B [k][n], repacked into panels of 16 columns */
size_t uk_f32_packed_floats(int64_t k, int64_t n);
void uk_f32_pack(int64_t k, int64_t n, const float* b, float* dst);
/* C[m][n] = alpha * A[m][k] . B for the panels [g0, g1) (columns 16*g0 .. 16*g1, the last cut at n) */
void uk_f32_gemm(const float* a, int64_t m, int64_t k, const float* w, int64_t n, float alpha, float* c, int64_t g0,
                 int64_t g1, int isa);
/* the same with k in blocks of KBLOCK (> 0; 0: the kernel's choice, as uk_f32_gemm): the same bits whatever the
 * blocks (tests/test_fmatmul.py) */
void uk_f32_gemm_kc(const float* a, int64_t m, int64_t k, const float* w, int64_t n, float alpha, float* c,
                    int64_t g0, int64_t g1, int isa, int64_t kblock);
/* the bench's read-bandwidth probe (AVX2): the sum of n floats read as 4 parts side by side (streams = 4)
 * or front to back (any other value) */
float uk_read_streams(const float* p, int64_t n, int streams);

/* GroupQueryAttention (attn_kernels.c). Rows b, new tokens t at positions past(b) + t of the cache, where
 * past(b) = seqlens_k[b] + 1 - t_count (uk_attn_past). */
typedef struct {
  int64_t b, t, hq, hkv, dh;
  int64_t cap;                 /* the cache's sequence capacity: kc, vc are [b][hkv][cap][dh] */
  const float* q;              /* head h of token (b, t) at q + (b * t_count + t) * q_stride + h * dh */
  const float *k, *v;          /* the new keys and values, likewise with kv_stride */
  int64_t q_stride, kv_stride;
  float *kc, *vc;
  const int32_t* seqlens_k;    /* [b]: the row's last key position after this step (GQA's input) */
  const float *cos_cache, *sin_cache; /* [positions][dh / 2], or NULL: no rotary */
  const int64_t* position_ids; /* [b][t], or NULL: past(b) + t */
  const float* bias;           /* [bias_b][bias_h][t][total] added to the scores, or NULL */
  int64_t bias_b, bias_h, total;
  float scale;
  float* out;                  /* [b][t][hq * dh] */
} uk_attn;
int64_t uk_attn_past(const uk_attn* a, int64_t b);              /* keys already in the cache, row b */
int64_t uk_attn_position(const uk_attn* a, int64_t b, int64_t t); /* the rotary position of token (b, t) */
void uk_attn_write_kv(const uk_attn* a);        /* the new keys (rotated) and values into the cache */
/* the same for the (row, KV head) pairs [bh0, bh1) only, pair bh = row * hkv + KV head: all its new tokens */
void uk_attn_write_kv_pairs(const uk_attn* a, int64_t bh0, int64_t bh1);
size_t uk_attn_scratch_floats(const uk_attn* a); /* per task */
/* software prefetches of pair bh's data, which run_atask issues one pair ahead within a task: write 1, the new keys
 * and values (512 bytes of each head) and the cache slots they go to; write 0, the group's queries (at most 4 KB) and
 * the cache's keys and values (at most the first 2 KB of each). A bh outside [0, b * hkv) does nothing */
void uk_attn_prefetch_pair(const uk_attn* a, int64_t bh, int write);
/* the outputs of the query heads of KV head kvh, row b, tokens [t0, t1); after that pair's new keys and values are
 * in the cache (uk_attn_write_kv or uk_attn_write_kv_pairs) */
void uk_attn_rows(const uk_attn* a, int64_t b, int64_t kvh, int64_t t0, int64_t t1, float* scratch, int isa);
/* SkipLayerNormalization (norm_kernels.c): rows [r0, r1) of h floats each */
typedef struct {
  const float *x, *skip;     /* row r: x + r * h; skip + (r * h) % skip_size */
  int64_t h, skip_size;
  const float *gamma, *beta, *bias; /* [h]; beta and bias may be NULL */
  float eps;
  float *y, *sum;            /* [rows][h]; sum (x + skip + bias) may be NULL */
} uk_norm;
void uk_skip_norm_rows(const uk_norm* p, int64_t r0, int64_t r1, int isa);
#endif
