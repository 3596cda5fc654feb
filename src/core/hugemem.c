/*
 * hugemem.c - 2 MB aligned memory advised for transparent huge pages (see hugemem.h).
 */
#include "core/hugemem.h"

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void *hugemem_reserve(size_t n)
{
    if (n == 0 || n > SIZE_MAX - HUGEMEM_ALIGN)
        return NULL;
    size_t span = n + HUGEMEM_ALIGN;
    uint8_t *raw = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uint8_t *p =
        (uint8_t *)(((uintptr_t)raw + HUGEMEM_ALIGN - 1) & ~(uintptr_t)(HUGEMEM_ALIGN - 1));
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t keep = (n + page - 1) / page * page;
    if (p > raw)
        munmap(raw, (size_t)(p - raw));
    size_t tail = span - (size_t)(p - raw) - keep;
    if (tail)
        munmap(p + keep, tail);
    return p;
}

void *hugemem_alloc(size_t n)
{
    void *p = hugemem_reserve(n);
    if (!p)
        return NULL;
    if (mmap(p, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
        MAP_FAILED) {
        munmap(p, n);
        return NULL;
    }
    madvise(p, n, MADV_HUGEPAGE);
    return p;
}

void hugemem_free(void *p, size_t n)
{
    if (p)
        munmap(p, n);
}

int hugemem_available(void)
{
    char buf[128] = {0};
    int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t got = read(fd, buf, sizeof buf - 1);
    close(fd);
    /* "always [madvise] never": anything but "[never]" honours MADV_HUGEPAGE */
    return got > 0 && !strstr(buf, "[never]");
}
