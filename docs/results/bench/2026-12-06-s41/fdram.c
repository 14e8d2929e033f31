/* 12 trunk-like layers of fp32 packed weights (~716 MB), 2 threads splitting each matrix's panels, a spin barrier
 * after each matrix (as ORT's ParallelFor); time per pass at M rows, best of R; plus a 2-thread read probe */
#include "qmatmul_kernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
enum { L = 12, NM = 4 };
static int64_t KS[NM] = {896, 896, 896, 4864}, NS_[NM] = {1152, 896, 9728, 896};
typedef struct { int64_t k, n; float* w; float* a; float* c; } Mat;
static Mat mats[L * NM];
static int M, isa, mode;
static float* big; static int64_t bign;
static atomic_int bar_count; static atomic_int bar_gen;
static void barrier(void) {
  int g = atomic_load(&bar_gen);
  if (atomic_fetch_add(&bar_count, 1) == 1) { atomic_store(&bar_count, 0); atomic_fetch_add(&bar_gen, 1); }
  else while (atomic_load(&bar_gen) == g) __builtin_ia32_pause();
}
static volatile float sink;
static void* work(void* arg) {
  int id = (int)(intptr_t)arg;
  for (int p = 0; p < 3; p++) {
    if (mode) { int64_t h = bign / 2; sink = uk_read_streams(big + (id ? h : 0), h, 4); barrier(); continue; }
    for (int i = 0; i < L * NM; i++) {
      Mat* m = &mats[i]; int64_t G = (m->n + 15) / 16, half = G / 2;
      uk_f32_gemm(m->a, M, m->k, m->w, m->n, 1.f, m->c, id ? half : 0, id ? G : half, isa);
      barrier();
    }
  }
  return NULL;
}
int main(int argc, char** argv) {
  M = atoi(argv[1]); int reps = argc > 2 ? atoi(argv[2]) : 5; isa = uk_isa(); double bytes = 0;
  for (int i = 0; i < L * NM; i++) {
    Mat* m = &mats[i]; m->k = KS[i % NM]; m->n = NS_[i % NM];
    size_t nf = uk_f32_packed_floats(m->k, m->n); m->w = aligned_alloc(64, nf * 4);
    for (size_t j = 0; j < nf; j++) m->w[j] = (float)(j % 7) * 0.01f;
    m->a = malloc(M * m->k * 4); for (int j = 0; j < M * m->k; j++) m->a[j] = 0.5f; m->c = malloc(M * m->n * 4);
    bytes += nf * 4.;
  }
  bign = (int64_t)(bytes / 4); big = aligned_alloc(64, bign * 4); for (int64_t j = 0; j < bign; j++) big[j] = 1.f;
  for (mode = 0; mode < 2; mode++) {
    double best = 1e9;
    for (int r = 0; r < reps; r++) {
      pthread_t t; double t0 = now();
      pthread_create(&t, NULL, work, (void*)1); work((void*)0); pthread_join(t, NULL);
      double dt = (now() - t0) / 3; if (dt < best) best = dt;
    }
    printf("%s M=%d: %.2f ms a pass, %.1f GB/s (%.0f MB)\n", mode ? "read probe" : "fp32 gemm", M, best * 1e3, bytes / best / 1e9, bytes / 1e6);
  }
  return 0;
}
