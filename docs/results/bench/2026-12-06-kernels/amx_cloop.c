#include "qmatmul_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char** argv) {
  int bits = atoi(argv[1]); int64_t m = atoi(argv[2]); int64_t k = atoi(argv[3]), n = atoi(argv[4]); int reps = atoi(argv[5]);
  uk_shape s = {bits, 128, k, n, (k + 127) / 128 * 128, (n + 15) / 16 * 16};
  size_t srcb = (size_t)n * s.kp * bits / 8;
  uint8_t* src = malloc(srcb); for (size_t i = 0; i < srcb; i++) src[i] = rand();
  float* sc = malloc(sizeof(float) * n * (s.kp / 128)); for (int64_t i = 0; i < n * (s.kp / 128); i++) sc[i] = 0.01f;
  uint8_t* w = aligned_alloc(64, (uk_packed_bytes(&s) + 63) / 64 * 64); float* ws = aligned_alloc(64, (uk_packed_scales(&s) * 4 + 63) / 64 * 64);
  uk_pack(&s, src, sc, w, ws);
  float* a = malloc(sizeof(float) * m * k); for (int64_t i = 0; i < m * k; i++) a[i] = (rand() % 200 - 100) * 0.01f;
  void* scr = aligned_alloc(64, (uk_scratch_bytes(&s, m) + 63) / 64 * 64);
  float* c = malloc(sizeof(float) * m * n);
  uk_quantize(&s, a, m, scr);
  double best = 1e9;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    for (int i = 0; i < 20; i++) uk_gemm(&s, scr, m, w, ws, NULL, c, 0, s.np / 16, 2);
    double t = (now() - t0) / 20; if (t < best) best = t;
  }
  printf("bits %d m %lld %lldx%lld: %.1f us  %.1f GMAC/s  %.1f GB/s weights  amx %d\n", bits, (long long)m, (long long)k, (long long)n, best * 1e6,
         m * k * n / best / 1e9, uk_packed_bytes(&s) / best / 1e9, uk_amx());
  return 0;
}
