#include <stdio.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(){ long n=2000000000L; long x=3; double t0=now();
 __asm__ volatile("1:\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0\n\tsub $4, %1\n\tjnz 1b" : "+r"(x), "+r"(n) :: "cc");
 double dt=now()-t0; printf("%.3f s: %.2f GHz if imul is 3 cycles\n", dt, 2e9*3/dt/1e9); return 0;}
