// Vector-multiply throughput of this host's cores, registers only: VPMADDUBSW + VPMADDWD chains (the quantized
// tiles' multiply pipes) and FMA (the fp32 tile's), on 1 and on 2 threads side by side, 20M iterations each. usage: alu
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static long iters = 20000000; static volatile int sink;
__attribute__((target("avx2,fma"))) static void* madd(void* p) {
  __m256i a[8], b = _mm256_set1_epi8(3), one = _mm256_set1_epi16(1);
  for (int i = 0; i < 8; i++) a[i] = _mm256_set1_epi8((char)(i + 1));
  for (long n = 0; n < iters; n++)
    for (int i = 0; i < 8; i++) a[i] = _mm256_madd_epi16(_mm256_maddubs_epi16(a[i], b), one);  // 2 multiply uops
  int s = 0; for (int i = 0; i < 8; i++) s += _mm256_extract_epi32(a[i], 0); sink = s; return p; }
__attribute__((target("avx2,fma"))) static void* fmaw(void* p) {
  __m256 a[10], b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(0.001f);
  for (int i = 0; i < 10; i++) a[i] = _mm256_set1_ps((float)i);
  for (long n = 0; n < iters; n++)
    for (int i = 0; i < 10; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
  float s = 0; for (int i = 0; i < 10; i++) s += _mm256_cvtss_f32(a[i]); sink = (int)s; return p; }
static double run(void* (*f)(void*), int t) {
  pthread_t th[2]; double t0 = now();
  for (int i = 0; i < t; i++) pthread_create(&th[i], NULL, f, NULL);
  for (int i = 0; i < t; i++) pthread_join(th[i], NULL);
  return now() - t0; }
int main(void) {
  for (int r = 0; r < 3; r++) {
    double m1 = run(madd, 1), m2 = run(madd, 2), f1 = run(fmaw, 1), f2 = run(fmaw, 2);
    // per thread: madd 8 x 2 uops x iters, fma 10 x iters; per core rate = ops / time
    printf("round %d: maddubs+maddwd pairs/ns 1 thread %.2f, 2 threads %.2f (x%.2f); fma/ns 1 thread %.2f, 2 threads %.2f (x%.2f)\n", r,
           8.0 * iters / m1 / 1e9, 2 * 8.0 * iters / m2 / 1e9, m1 * 2 / m2, 10.0 * iters / f1 / 1e9, 2 * 10.0 * iters / f2 / 1e9, f1 * 2 / f2);
  }
  return 0; }
