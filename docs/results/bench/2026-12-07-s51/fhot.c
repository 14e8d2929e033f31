/* one fp32 matrix K x N packed, in cache, one thread, M rows through uk_f32_gemm (the k blocks it picks):
 * best time a call over 7 rounds, G MAC/s */
#include "qmatmul_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc, char** argv) {
  int M = atoi(argv[1]); int64_t K = atoi(argv[2]), N = atoi(argv[3]); int reps = argc > 4 ? atoi(argv[4]) : 200;
  size_t nf = uk_f32_packed_floats(K, N);
  float* b = malloc(K * N * 4); for (int64_t j = 0; j < K * N; j++) b[j] = (rand() % 200 - 100) / 50.f;
  float* w = aligned_alloc(64, (nf * 4 + 63) / 64 * 64); uk_f32_pack(K, N, b, w);
  float* a = malloc(M * K * 4); for (int j = 0; j < M * K; j++) a[j] = (rand() % 200 - 100) / 50.f;
  float* c = malloc(M * N * 4);
  double best = 1e9, sum = 0;
  for (int r = 0; r < 7; r++) {
    double t0 = now();
    for (int i = 0; i < reps; i++) uk_f32_gemm(a, M, K, w, N, 1.f, c, 0, (N + 15) / 16, uk_isa());
    double dt = (now() - t0) / reps; if (dt < best) best = dt;
  }
  for (int j = 0; j < M * N; j++) sum += c[j];
  printf("fp32 hot M=%d K=%lld N=%lld: %.1f us a call, %.1f G MAC/s (sum %.3g)\n", M, (long long)K, (long long)N,
         best * 1e6, (double)M * K * N / best / 1e9, sum);
  return 0;
}
