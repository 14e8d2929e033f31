/* uk_gemm's multiply-add rate on one core at 1, 2, 4, 8 rows: ./a.out BITS K N REPS (K 896, N 512: the weights
   stay in L2; N 4864: a trunk MLP matrix). cc -O3 -std=gnu11 -I unifork_rt/runtime/kernels mb.c
   unifork_rt/runtime/kernels/qmatmul_kernels.c -lm. MAC/cycle assumes 3.7 GHz. */
#include "qmatmul_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int bits=atoi(argv[1]); int64_t K=atoll(argv[2]),N=atoll(argv[3]); int reps=atoi(argv[4]);
  uk_shape s={bits,128,K,N,(K+127)/128*128,(N+15)/16*16};
  int64_t nb=s.kp/128; size_t rowb=s.kp*bits/8;
  uint8_t*src=malloc(N*rowb); for(size_t i=0;i<N*rowb;i++)src[i]=rand();
  float*sc=malloc(N*nb*4); for(int64_t i=0;i<N*nb;i++)sc[i]=0.01f;
  uint8_t*w=aligned_alloc(64,uk_packed_bytes(&s)); float*ws=aligned_alloc(64,uk_packed_scales(&s)*4);
  uk_pack(&s,src,sc,w,ws);
  float*a=malloc(8*K*4); for(int64_t i=0;i<8*K;i++)a[i]=(rand()%200-100)*0.01f;
  void*scr=aligned_alloc(64,(uk_scratch_bytes(&s,8)+63)/64*64); float*c=malloc(8*s.np*4);
  int ms[]={1,2,4,8};
  for(int mi=0;mi<4;mi++){int m=ms[mi];
    uk_quantize(&s,a,m,scr);
    for(int i=0;i<3;i++)uk_gemm(&s,scr,m,w,ws,NULL,c,0,s.np/16,2);
    double t=now(); for(int i=0;i<reps;i++)uk_gemm(&s,scr,m,w,ws,NULL,c,0,s.np/16,2); t=(now()-t)/reps;
    double mac=(double)m*s.kp*s.np; printf("bits %d K %ld N %ld m %d: %.1f us, %.1f GMAC/s, %.1f MAC/cycle@3.7GHz, %.1f GB/s\n",bits,K,N,m,t*1e6,mac/t/1e9,mac/t/3.7e9,uk_packed_bytes(&s)/t/1e9);}
}
