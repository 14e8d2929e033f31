/* avx2only: make this process (and the processes it starts) see an x86-64 CPU with AVX2, FMA and
 * F16C but without AVX-512, VNNI (AVX-512 or AVX) or AMX, so that every library that picks its
 * kernels from CPUID at run time (ONNX Runtime's MLAS, numpy, PyTorch, oneDNN) takes the code
 * paths of an AVX2-only machine.
 *
 * How: Linux CPUID faulting (arch_prctl ARCH_SET_CPUID, 0; the CPU flag `cpuid_fault`) makes every
 * CPUID instruction in this process raise SIGSEGV. Our handler runs the real CPUID with faulting
 * briefly off, clears the feature bits above, writes the result into the interrupted registers and
 * steps over the 2-byte instruction. Loaded with LD_PRELOAD, which children inherit; exec clears
 * the faulting state and the preload sets it again. Other SIGSEGV handlers (Python's faulthandler,
 * gcc's crash handler), set with sigaction() or signal(), are kept and called for every fault that
 * is not a CPUID.
 *
 * Limits: the dynamic loader reads CPUID before any preload runs, so glibc's own string functions
 * are masked separately (GLIBC_TUNABLES, see run.sh); instructions are not checked, only CPUID
 * answers, so code that uses AVX-512 without asking CPUID would still run (qemu-x86_64 -cpu max
 * checks that, at 30-80x the time). Build: cc -O2 -shared -fPIC -o avx2only.so avx2only.c -ldl
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static struct sigaction next_segv;  /* the handler someone else installed for SIGSEGV */
static int active;

static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);

static void set_faulting(int on) { syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1); }

static void mask(uint32_t leaf, uint32_t sub, uint32_t r[4]) /* r: eax, ebx, ecx, edx */
{
    if (leaf == 7 && sub == 0) {
        r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) |
                  (1u << 31));  /* AVX512 F DQ IFMA PF ER CD BW VL */
        r[2] &= ~((1u << 1) | (1u << 6) | (1u << 8) | (1u << 9) | (1u << 10) | (1u << 11) | (1u << 12) |
                  (1u << 14));  /* VBMI VBMI2 GFNI VAES VPCLMULQDQ VNNI BITALG VPOPCNTDQ */
        r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) |
                  (1u << 25));  /* 4VNNIW 4FMAPS VP2INTERSECT AMX-BF16 AVX512-FP16 AMX-TILE AMX-INT8 */
    } else if (leaf == 7 && sub == 1) {
        r[0] &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23));  /* AVX-VNNI AVX512-BF16 AMX-FP16 AVX-IFMA */
        r[3] &= ~((1u << 4) | (1u << 5) | (1u << 10) | (1u << 14) | (1u << 19) | (1u << 21));
        /* AVX-VNNI-INT8 AVX-NE-CONVERT AVX-VNNI-INT16 PREFETCHI AVX10 APX */
    } else if (leaf == 0xd && sub == 0) {
        r[0] &= ~((1u << 5) | (1u << 6) | (1u << 7) | (1u << 17) | (1u << 18));  /* opmask, ZMM state, tiles */
    } else if (leaf == 0x1d || leaf == 0x1e || leaf == 0x24) {
        r[0] = r[1] = r[2] = r[3] = 0;  /* AMX tile / TMUL info, AVX10 */
    }
}

static void on_segv(int sig, siginfo_t *info, void *ctx)
{
    ucontext_t *uc = ctx;
    greg_t *g = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)g[REG_RIP];
    if (ip && ip[0] == 0x0f && ip[1] == 0xa2) {
        uint32_t leaf = (uint32_t)g[REG_RAX], sub = (uint32_t)g[REG_RCX], r[4];
        set_faulting(0);
        __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
        set_faulting(1);
        mask(leaf, sub, r);
        g[REG_RAX] = r[0], g[REG_RBX] = r[1], g[REG_RCX] = r[2], g[REG_RDX] = r[3];
        g[REG_RIP] += 2;
        return;
    }
    /* not ours: hand it to whoever asked for SIGSEGV, else die of it as the process would have */
    if (next_segv.sa_flags & SA_SIGINFO && next_segv.sa_sigaction) {
        next_segv.sa_sigaction(sig, info, ctx);
    } else if (next_segv.sa_handler != SIG_DFL && next_segv.sa_handler != SIG_IGN && next_segv.sa_handler) {
        next_segv.sa_handler(sig);
    } else {
        struct sigaction dfl = {0};
        dfl.sa_handler = SIG_DFL;
        real_sigaction(SIGSEGV, &dfl, NULL);  /* the fault repeats on return and kills the process */
    }
}

/* Keep our handler installed: a later sigaction(SIGSEGV) becomes the handler we chain to. */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (!real_sigaction)
        real_sigaction = dlsym(RTLD_NEXT, "sigaction");
    if (sig != SIGSEGV || !active)
        return real_sigaction(sig, act, old);
    if (old)
        *old = next_segv;
    if (act)
        next_segv = *act;
    return 0;
}

/* signal() too: glibc's signal() reaches its sigaction internally, past the interposer (gcc's cc1
 * installs its crash handler so). */
sighandler_t signal(int sig, sighandler_t handler)
{
    static sighandler_t (*real_signal)(int, sighandler_t);
    if (!real_signal)
        real_signal = dlsym(RTLD_NEXT, "signal");
    if (sig != SIGSEGV || !active)
        return real_signal(sig, handler);
    sighandler_t old = next_segv.sa_flags & SA_SIGINFO ? (sighandler_t)next_segv.sa_sigaction : next_segv.sa_handler;
    memset(&next_segv, 0, sizeof next_segv);
    next_segv.sa_handler = handler;
    next_segv.sa_flags = SA_RESTART;
    return old;
}

__attribute__((constructor)) static void avx2only_init(void)
{
    struct sigaction sa;
    if (!real_sigaction)
        real_sigaction = dlsym(RTLD_NEXT, "sigaction");
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (real_sigaction(SIGSEGV, &sa, &next_segv) != 0)
        return;
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        real_sigaction(SIGSEGV, &next_segv, NULL);
        if (!getenv("AVX2ONLY_QUIET"))
            { static const char msg[] = "avx2only: this CPU or kernel has no CPUID faulting (cpuid_fault): nothing masked\n"; if (write(2, msg, sizeof msg - 1) < 0) return; }
        return;
    }
    active = 1;
}
