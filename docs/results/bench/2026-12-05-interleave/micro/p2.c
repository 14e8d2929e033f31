#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "qmatmul_kernels.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static void* halloc(size_t b,int huge){size_t h=2<<20;void*p=aligned_alloc(h,(b+h-1)/h*h);if(huge)madvise(p,(b+h-1)/h*h,MADV_HUGEPAGE);memset(p,1,b);return p;}
typedef struct{float*p;size_t n;}A;
static void* rd(void*x){A*a=x;uk_read_streams(a->p,a->n,4);return 0;}
static double probe(float*p,size_t n){pthread_t t;A a0={p,n/2},a1={p+n/2,n/2};double t0=now();pthread_create(&t,0,rd,&a1);rd(&a0);pthread_join(t,0);return n*4.0/(now()-t0)/1e9;}
int main(int argc,char**argv){int nb=16,huge=argc>1?atoi(argv[1]):1;size_t n=(size_t)256<<18;float*b[16];for(int i=0;i<nb;i++)b[i]=halloc(n*4,huge);
 for(int r=0;r<6;r++){for(int i=0;i<nb;i++)printf("%5.1f",probe(b[i],n));printf("\n");}}
