/* 2-thread read of a 716 MB array: NS streams per thread, optional software prefetch PF bytes ahead (T1 / T0 / NTA) */
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float* big; static int64_t n; static int NS, PF, HINT; static volatile float sink;
__attribute__((target("avx512f"))) static float rd(const float* p, int64_t len) {
  int64_t part = len / NS / 16 * 16; __m512 acc[16];
  for (int s = 0; s < 16; s++) acc[s] = _mm512_setzero_ps();
  for (int64_t i = 0; i < part; i += 16) {
    for (int s = 0; s < NS; s++) {
      const float* q = p + s * part + i;
      if (PF) { if (HINT == 1) _mm_prefetch((const char*)q + PF, _MM_HINT_T1); else if (HINT == 0) _mm_prefetch((const char*)q + PF, _MM_HINT_T0); else _mm_prefetch((const char*)q + PF, _MM_HINT_T2); }
      acc[s] = _mm512_add_ps(acc[s], _mm512_load_ps(q));
    }
  }
  __m512 t = acc[0]; for (int s = 1; s < 16; s++) t = _mm512_add_ps(t, acc[s]);
  return _mm512_reduce_add_ps(t);
}
static void* work(void* arg) { int id = (int)(intptr_t)arg; int64_t h = n / 2; for (int r = 0; r < 3; r++) sink = rd(big + (id ? h : 0), h); return NULL; }
int main(int argc, char** argv) {
  n = 716LL * 1000 * 1000 / 4 / 1024 * 1024; big = aligned_alloc(64, n * 4); for (int64_t j = 0; j < n; j++) big[j] = 1.f;
  int cfg[][3] = {{4,0,1},{1,0,1},{2,0,1},{8,0,1},{16,0,1},{4,1024,1},{4,4096,1},{4,4096,2},{8,2048,1},{1,4096,1},{1,1024,0}};
  for (int round = 0; round < 2; round++)
  for (unsigned c = 0; c < sizeof cfg / sizeof *cfg; c++) {
    NS = cfg[c][0]; PF = cfg[c][1]; HINT = cfg[c][2]; double best = 1e9;
    for (int r = 0; r < 3; r++) { pthread_t t; double t0 = now(); pthread_create(&t, NULL, work, (void*)1); work((void*)0); pthread_join(t, NULL); double dt = (now() - t0) / 3; if (dt < best) best = dt; }
    printf("streams %2d pf %5d hint %d: %.1f GB/s\n", NS, PF, HINT, n * 4. / best / 1e9);
  }
}
