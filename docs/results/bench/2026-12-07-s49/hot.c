/* one matrix K x N in cache, one thread, M rows: G MAC/s and MAC/cycle at F GHz */
#include "qmatmul_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc, char** argv) {
  int M = atoi(argv[1]), bits = atoi(argv[2]); int64_t K = atoi(argv[3]), N = atoi(argv[4]); double ghz = argc > 5 ? atof(argv[5]) : 4.0;
  int block = getenv("BLK") ? atoi(getenv("BLK")) : bits == 4 ? 128 : 32, isa = uk_isa();
  uk_shape s = {bits, block, K, N, K, (N + 15) / 16 * 16};
  size_t nbytes = (size_t)N * K * bits / 8; uint8_t* src = malloc(nbytes); for (size_t j = 0; j < nbytes; j++) src[j] = rand();
  float* sc = malloc(N * K / block * 4); for (int j = 0; j < N * K / block; j++) sc[j] = 0.01f;
  uint8_t* w = aligned_alloc(64, (uk_packed_bytes(&s) + 63) / 64 * 64); float* ws = aligned_alloc(64, (uk_packed_scales(&s) * 4 + 63) / 64 * 64);
  uk_pack(&s, src, sc, w, ws);
  float* A = malloc(M * K * 4); for (int j = 0; j < M * K; j++) A[j] = (rand() % 200 - 100) / 50.f;
  void* scr = malloc(uk_scratch_bytes(&s, M)); uk_quantize(&s, A, M, scr);
  float* c = malloc(M * N * 4);
  int reps = 2000; double best = 1e9; double sum = 0;
  for (int r = 0; r < 7; r++) { double t0 = now(); for (int i = 0; i < reps; i++) uk_gemm(&s, scr, M, w, ws, NULL, c, 0, s.np / 16, isa); double dt = (now() - t0) / reps; if (dt < best) best = dt; }
  for (int j = 0; j < M * N; j++) sum += c[j];
  unsigned long long hsh = 1469598103934665603ULL; for (size_t j = 0; j < (size_t)M * N * 4; j++) hsh = (hsh ^ ((unsigned char*)c)[j]) * 1099511628211ULL;
  printf("hash %016llx ", hsh);
  double macs = (double)M * K * N;
  printf("isa %d int%d M=%d K=%ld N=%ld (%zu KB): %.1f us, %.1f G MAC/s, %.1f MAC/cycle at %.1f GHz (sum %.3g)\n", isa, bits, M, K, N, uk_packed_bytes(&s) / 1024, best * 1e6, macs / best / 1e9, macs / best / 1e9 / ghz, ghz, sum);
}
