/* uk_f32_gemm's rate on one core at 1, 2, 4, 8 rows: ./a.out K N REPS (896 256: in L2; 896 4864: from memory).
   cc -O3 -std=gnu11 -I unifork_rt/runtime/kernels fb.c unifork_rt/runtime/kernels/fmatmul_kernels.c
   unifork_rt/runtime/kernels/qmatmul_kernels.c -lm. FMA/cycle assumes 3.7 GHz (16 is Zen 4's fp32 peak). */
#include "qmatmul_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){ int64_t K=atoll(argv[1]),N=atoll(argv[2]); int reps=atoi(argv[3]);
  float*b=malloc(K*N*4); for(int64_t i=0;i<K*N;i++)b[i]=(rand()%100)*0.01f;
  float*w=aligned_alloc(64,uk_f32_packed_floats(K,N)*4); uk_f32_pack(K,N,b,w);
  float*a=malloc(8*K*4); for(int64_t i=0;i<8*K;i++)a[i]=0.01f*(i%7); float*c=malloc(8*N*4);
  for(int m=1;m<=8;m*=2){ for(int i=0;i<3;i++)uk_f32_gemm(a,m,K,w,N,1.f,c,0,(N+15)/16,2);
    double t=now(); for(int i=0;i<reps;i++)uk_f32_gemm(a,m,K,w,N,1.f,c,0,(N+15)/16,2); t=(now()-t)/reps;
    printf("f32 K %ld N %ld m %d: %.1f us, %.1f FMA/cycle@3.7GHz, %.1f GB/s\n",K,N,m,t*1e6,(double)m*K*N/t/3.7e9,K*N*4/t/1e9);}
}
