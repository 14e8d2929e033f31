/* Time the packed int4/int8 GEMM of unifork_rt/runtime/kernels on its own: L weight matrices of the
 * paper MLP shapes (896x3584 and 3584x896, alternating; 160 of them at int4 = 257 MB, more than twice
 * the 105 MB L3 of the machine it was written on, so the weights come from DRAM), M rows, T threads
 * (the calling thread and T-1 spinning workers, one column range each, as ParallelFor splits them).
 * Prints the best of 20 passes over all L matrices.
 *
 *   gcc -O3 -I unifork_rt/runtime/kernels kernel.c unifork_rt/runtime/kernels/qmatmul_kernels.c -lpthread -lm
 *   ./a.out M T [BITS]
 */
#include "qmatmul_kernels.h"
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifndef L
#define L 160
#endif
static uk_shape sh[L];
static uint8_t* W[L];
static float* WS[L];
static float *A, *C;
static void* scr[L];
static int M, NT;
static atomic_int gen_, done_;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static void part(int l, int t) {
  int64_t G = sh[l].np / 16;
  uk_gemm(&sh[l], scr[l], M, W[l], WS[l], NULL, C, G * t / NT, G * (t + 1) / NT, uk_isa());
}
static void* worker(void* p) {
  int t = (int)(long)p, g = 0;
  for (;;) {
    while (atomic_load(&gen_) == g) _mm_pause();
    g = atomic_load(&gen_);
    if (g < 0) return 0;
    part((g - 1) % L, t);
    atomic_fetch_add(&done_, 1);
  }
}
int main(int argc, char** argv) {
  if (argc < 3) { fprintf(stderr, "usage: %s ROWS THREADS [BITS]\n", argv[0]); return 2; }
  M = atoi(argv[1]); NT = atoi(argv[2]);
  int bits = argc > 3 ? atoi(argv[3]) : 4, block = bits == 4 ? 128 : 32;
  size_t tot = 0;
  for (int l = 0; l < L; l++) {
    int64_t K = l % 2 ? 3584 : 896, N = l % 2 ? 896 : 3584;
    uk_shape s = {bits, block, K, N, K, (N + 15) / 16 * 16};
    sh[l] = s;
    size_t nbytes = (size_t)N * K * bits / 8;
    uint8_t* src = malloc(nbytes);
    for (size_t i = 0; i < nbytes; i++) src[i] = (uint8_t)rand();
    float* sc = malloc(N * K / block * 4);
    for (int i = 0; i < N * K / block; i++) sc[i] = 0.01f;
    W[l] = aligned_alloc(64, (uk_packed_bytes(&s) + 63) / 64 * 64);
    WS[l] = aligned_alloc(64, (uk_packed_scales(&s) * 4 + 63) / 64 * 64);
    uk_pack(&s, src, sc, W[l], WS[l]);
    tot += uk_packed_bytes(&s);
    free(src); free(sc);
  }
  A = malloc(8 * 3584 * 4);
  for (int i = 0; i < 8 * 3584; i++) A[i] = (rand() % 200 - 100) / 50.f;
  C = malloc(8 * 3584 * 4);
  for (int l = 0; l < L; l++) { scr[l] = malloc(uk_scratch_bytes(&sh[l], M)); uk_quantize(&sh[l], A, M, scr[l]); }
  pthread_t th[16];
  for (int t = 1; t < NT; t++) pthread_create(&th[t], 0, worker, (void*)(long)t);
  double best = 1e9;
  for (int rep = 0; rep < 20; rep++) {
    double t0 = now();
    for (int l = 0; l < L; l++) {
      atomic_store(&done_, 0);
      atomic_fetch_add(&gen_, 1);
      part(l, 0);
      while (atomic_load(&done_) < NT - 1) _mm_pause();
    }
    double dt = now() - t0;
    if (dt < best) best = dt;
  }
  printf("int%d M=%d threads=%d: %.2f ms per %d matrices, %.1f MB, %.1f GB/s\n", bits, M, NT, best * 1e3, L, tot / 1e6,
         tot / best / 1e9);
  atomic_store(&gen_, -1);
  return 0;
}
