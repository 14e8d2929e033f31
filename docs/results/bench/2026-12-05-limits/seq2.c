/* 60 int4/int8 matmuls of chain.py's shapes (12 x 896->4864, 4864->896, 896->4864, 4864->896, 896->896, 128-wide
   blocks) through uk_gemm at M rows on 2 threads, each thread its half of every matrix, REPS passes per round,
   300 MB read between rounds: (futex) a pthread barrier after each op; (spin) a spinning barrier after each op,
   as ONNX Runtime's spinning pool; (none) each thread streams its halves back to back.
   cc -O3 -std=gnu11 -I unifork_rt/runtime/kernels -pthread seq2.c unifork_rt/runtime/kernels/qmatmul_kernels.c -lm
   ./a.out BITS M REPS */
#include "qmatmul_kernels.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <stdatomic.h>
static atomic_int spin_count; static atomic_int spin_gen;
static void spin_barrier(void){ int g=atomic_load(&spin_gen); if(atomic_fetch_add(&spin_count,1)==1){atomic_store(&spin_count,0); atomic_fetch_add(&spin_gen,1);} else while(atomic_load(&spin_gen)==g) __builtin_ia32_pause(); }
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define NOPS 60
uk_shape S[NOPS]; uint8_t*W[NOPS]; float*WS[NOPS]; void*SCR[NOPS]; float*C; int M, BAR, BITS; pthread_barrier_t bar, bar2; int reps;
void* th(void*a){ int64_t id=(int64_t)a;
  for(int r=0;r<reps;r++){ pthread_barrier_wait(&bar);
    for(int o=0;o<NOPS;o++){ int64_t G=S[o].np/16, g0=id*G/2, g1=(id+1)*G/2;
      uk_gemm(&S[o],SCR[o],M,W[o],WS[o],NULL,C+id*0,g0,g1,2);
      if(BAR==1) pthread_barrier_wait(&bar2); else if(BAR==2) spin_barrier();} }
  pthread_barrier_wait(&bar); return 0;}
int main(int argc,char**argv){ BITS=atoi(argv[1]); M=atoi(argv[2]); reps=atoi(argv[3]);
  int64_t kn[5][2]={{896,4864},{4864,896},{896,4864},{4864,896},{896,896}}; size_t bytes=0;
  float*a=malloc(8*4864*4); for(int i=0;i<8*4864;i++)a[i]=(rand()%200-100)*0.01f; C=malloc(8*4864*4*2);
  for(int o=0;o<NOPS;o++){ int64_t K=kn[o%5][0],N=kn[o%5][1]; S[o]=(uk_shape){BITS,128,K,N,(K+127)/128*128,(N+15)/16*16};
    int64_t nb=S[o].kp/128; size_t rowb=S[o].kp*BITS/8; uint8_t*src=malloc(N*rowb); for(size_t i=0;i<N*rowb;i++)src[i]=rand();
    float*sc=malloc(N*nb*4); for(int64_t i=0;i<N*nb;i++)sc[i]=0.01f;
    W[o]=aligned_alloc(64,uk_packed_bytes(&S[o])); WS[o]=aligned_alloc(64,uk_packed_scales(&S[o])*4); uk_pack(&S[o],src,sc,W[o],WS[o]); free(src); free(sc);
    SCR[o]=aligned_alloc(64,(uk_scratch_bytes(&S[o],8)+63)/64*64); uk_quantize(&S[o],a,M,SCR[o]); bytes+=uk_packed_bytes(&S[o]); }
  /* 300 MB scrub between rounds so that nothing is in L3 */
  size_t sb=300<<20; char*scrub=malloc(sb);
  for(int round=0;round<6;round++) for(BAR=2;BAR>=0;BAR--){
    for(size_t i=0;i<sb;i+=64)scrub[i]++;
    pthread_barrier_init(&bar,0,3); pthread_barrier_init(&bar2,0,2); pthread_t t[2]; for(int64_t i=0;i<2;i++)pthread_create(&t[i],0,th,(void*)i);
    double t0=now(); for(int r=0;r<reps;r++)pthread_barrier_wait(&bar); pthread_barrier_wait(&bar); double dt=(now()-t0)/reps;
    for(int i=0;i<2;i++)pthread_join(t[i],0); pthread_barrier_destroy(&bar);
    printf("bits %d rows %d %s: %.0f us, %.1f GB/s, %.1f us/op\n",BITS,M,BAR==1?"futex barrier per op":BAR==2?"spin barrier per op ":"no barriers         ",dt*1e6,bytes/dt/1e9,dt*1e6/NOPS);}
}
