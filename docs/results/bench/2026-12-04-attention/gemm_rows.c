/* One uk_gemm (our MatMulNBits kernel, one thread) of M rows by a 896 x 19456 weight, best of 30:
 * gcc -O3 -I unifork_rt/runtime/kernels gemm_rows.c unifork_rt/runtime/kernels/qmatmul_kernels.c -lm && ./a.out BITS M */
#include "qmatmul_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int bits=atoi(argv[1]), m=atoi(argv[2]); int64_t K=896,N=4864*4; /* 4 matrices' worth: 17 MB int4 */
  uk_shape s={bits,128,K,N,(K+127)/128*128,(N+15)/16*16};
  uint8_t*src=malloc(N*s.kp*bits/8); for(size_t i=0;i<(size_t)N*s.kp*bits/8;i++)src[i]=rand();
  float*sc=malloc(N*(s.kp/128)*4); for(int i=0;i<N*(s.kp/128);i++)sc[i]=0.01f;
  uint8_t*w=aligned_alloc(64,uk_packed_bytes(&s)); float*ws=aligned_alloc(64,uk_packed_scales(&s)*4+64);
  uk_pack(&s,src,sc,w,ws);
  float*a=malloc(m*K*4); for(int i=0;i<m*K;i++)a[i]=(i%13)*0.1f-0.6f;
  void*scr=aligned_alloc(64,(uk_scratch_bytes(&s,m)+63)/64*64); float*c=malloc(m*N*4);
  uk_quantize(&s,a,m,scr);
  int isa=uk_isa();
  double best=1e9;
  for(int r=0;r<30;r++){double t=now(); uk_gemm(&s,scr,m,w,ws,NULL,c,0,s.np/16,isa); double d=now()-t; if(d<best)best=d;}
  printf("bits %d rows %d: %.3f ms  %.0f GMAC/s\n",bits,m,best*1e3,(double)m*K*N/best/1e9);
}
