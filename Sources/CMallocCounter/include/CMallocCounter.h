/* Counts heap allocations made by one chosen thread, for the zero-allocation tests (test-only). */
#ifndef CMALLOCCOUNTER_H
#define CMALLOCCOUNTER_H
#include <stdint.h>

/// Starts counting allocations made by thread `tid` (Linux thread id); 0 stops counting.
void malloc_counter_watch(int32_t tid);
/// Allocations counted since the last reset.
uint64_t malloc_counter_count(void);
void malloc_counter_reset(void);
/// The calling thread's Linux thread id.
int32_t malloc_counter_gettid(void);
/// Allocates `n` bytes with malloc (opaque to the Swift optimiser), to check the counter itself.
void *malloc_counter_allocate(unsigned long n);
#endif
