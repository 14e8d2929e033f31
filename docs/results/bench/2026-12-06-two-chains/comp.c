/* compute rate of the packed GEMM at M rows, one thread, one L2-resident matrix K x N, best of R reps of 50 calls */
#include "qmatmul_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int M=atoi(argv[1]), bits=atoi(argv[2]); int64_t K=atoi(argv[3]), N=atoi(argv[4]); int block=bits==4?128:32;
  uk_shape s={bits,block,K,N,K,(N+15)/16*16};
  size_t nbytes=(size_t)N*K*bits/8; uint8_t*src=malloc(nbytes); for(size_t i=0;i<nbytes;i++)src[i]=rand();
  float*sc=malloc(N*K/block*4); for(int i=0;i<N*K/block;i++)sc[i]=0.01f;
  uint8_t*W=aligned_alloc(64,(uk_packed_bytes(&s)+63)/64*64); float*WS=aligned_alloc(64,(uk_packed_scales(&s)*4+63)/64*64);
  uk_pack(&s,src,sc,W,WS);
  float*A=malloc(M*K*4); for(int i=0;i<M*K;i++)A[i]=(rand()%200-100)/50.f; float*C=malloc(M*N*4);
  void*scr=malloc(uk_scratch_bytes(&s,M)); uk_quantize(&s,A,M,scr);
  double best=1e9;
  for(int r=0;r<40;r++){double t0=now(); for(int i=0;i<50;i++) uk_gemm(&s,scr,M,W,WS,NULL,C,0,s.np/16,uk_isa()); double dt=(now()-t0)/50; if(dt<best)best=dt;}
  double macs=(double)M*K*N; printf("int%d M=%d %lldx%lld: %.1f us, %.0f G MAC/s one core, %.2f vpdpbusd/ns\n",bits,M,(long long)K,(long long)N,best*1e6,macs/best/1e9,macs/64/best/1e9);
  return 0;}
