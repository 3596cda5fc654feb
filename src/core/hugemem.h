/*
 * hugemem.h - 2 MB aligned memory advised for transparent huge pages.
 *
 * Streaming gigabytes of weights through 4 KB pages costs a TLB miss (a
 * two-level page walk under a hypervisor) every 4 KB of every row a kernel
 * reads; 2 MB pages cut that 512-fold. Used for model weights (engine/gguf.c)
 * and for the memory-bandwidth probes that are compared against them.
 */
#ifndef AISTACK_CORE_HUGEMEM_H
#define AISTACK_CORE_HUGEMEM_H

#include <stddef.h>

/* The alignment (x86-64 and arm64 PMD size with 4 KB base pages). */
#define HUGEMEM_ALIGN ((size_t)2 << 20)

/*
 * Reserves n bytes of address space (PROT_NONE) at a 2 MB aligned address,
 * for the caller to map over with MAP_FIXED. NULL on failure (errno set).
 */
void *hugemem_reserve(size_t n);
/* n bytes of zeroed read-write anonymous memory, 2 MB aligned, advised for huge pages. */
void *hugemem_alloc(size_t n);
/* Frees what hugemem_reserve() or hugemem_alloc() returned (n as given). Accepts NULL. */
void hugemem_free(void *p, size_t n);
/* 1 when the kernel gives transparent huge pages to madvise()d memory. */
int hugemem_available(void);

#endif
