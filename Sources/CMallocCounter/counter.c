/* Interposes malloc and friends in the test process and counts the calls of one watched thread. */
#define _GNU_SOURCE 1
#include "CMallocCounter.h"
#include <stddef.h>
#include <stdatomic.h>
#include <unistd.h>
#include <sys/syscall.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static _Atomic int32_t watched;
static _Atomic uint64_t counted;
static __thread int32_t my_tid;

static inline void note(void) {
    int32_t w = atomic_load_explicit(&watched, memory_order_relaxed);
    if (w == 0) return;
    if (my_tid == 0) my_tid = (int32_t)syscall(SYS_gettid);
    if (my_tid == w) atomic_fetch_add_explicit(&counted, 1, memory_order_relaxed);
}

void *malloc(size_t n) { note(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { note(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { note(); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { note(); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { note(); return __libc_memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n) {
    note();
    void *p = __libc_memalign(a, n);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}

void malloc_counter_watch(int32_t tid) { atomic_store(&watched, tid); }
uint64_t malloc_counter_count(void) { return atomic_load(&counted); }
void malloc_counter_reset(void) { atomic_store(&counted, 0); }
int32_t malloc_counter_gettid(void) { return (int32_t)syscall(SYS_gettid); }
void *malloc_counter_allocate(unsigned long n) { return malloc(n); }
