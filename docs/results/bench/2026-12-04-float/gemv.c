#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>
#include <sys/mman.h>
#include "qmatmul_kernels.h"
typedef struct { int64_t k, n; float* b; } Mat;
static Mat* mats; static int nm; static float *A, *C; static int64_t M; static int T = 2; static int isa;
static pthread_barrier_t bar; static int reps;
static double now(void){struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec+t.tv_nsec*1e-9;}
static void* worker(void* p){ int id=(int)(long)p;
  for(int r=0;r<reps;r++){ for(int i=0;i<nm;i++){ int64_t g=(mats[i].n+15)/16; int64_t g0=g*id/T, g1=g*(id+1)/T;
      uk_f32_gemm(A, M, mats[i].k, mats[i].b, mats[i].n, 1.f, C, g0, g1, isa);
      pthread_barrier_wait(&bar);} }
  return 0;}
int main(int argc,char**argv){ M=atoi(argv[1]); reps=atoi(argv[2]); isa=uk_isa(); if(argc>3&&!strcmp(argv[3],"avx2"))isa=1;
  int L=12; nm=4*L; mats=calloc(nm,sizeof(Mat)); size_t bytes=0;
  for(int l=0;l<L;l++){ int64_t ks[4]={896,896,896,4864}, ns[4]={1152,896,9728,896};
    for(int j=0;j<4;j++){ Mat* mm=&mats[4*l+j]; mm->k=ks[j]; mm->n=ns[j]; float* b=malloc(ks[j]*ns[j]*4);
      for(int64_t i=0;i<ks[j]*ns[j];i++) b[i]=(float)((i*2654435761u)%1000)/1000.f-0.5f; bytes+=ks[j]*ns[j]*4;
      { size_t sz=(uk_f32_packed_floats(ks[j],ns[j])*4+(2<<20)-1)/(2<<20)*(2<<20); mm->b=aligned_alloc(2<<20,sz); if(getenv("HUGE")) madvise(mm->b,sz,MADV_HUGEPAGE);} uk_f32_pack(ks[j],ns[j],b,mm->b); free(b);} }
  A=aligned_alloc(64,M*4864*4); for(int i=0;i<M*4864;i++)A[i]=sinf(i); C=aligned_alloc(64,M*9728*4);
  pthread_barrier_init(&bar,0,T); pthread_t th[8]; double best=1e9;
  for(int it=0;it<5;it++){ double t0=now(); for(int i=0;i<T;i++) pthread_create(&th[i],0,worker,(void*)(long)i); for(int i=0;i<T;i++) pthread_join(th[i],0);
    double dt=(now()-t0)/reps; if(dt<best)best=dt; }
  printf("M=%ld isa=%d: %.2f ms = %.1f GB/s, %.0f GFLOP/s\n",(long)M,isa,best*1e3,bytes/best/1e9, bytes/2.0*M/best/1e9);
}
