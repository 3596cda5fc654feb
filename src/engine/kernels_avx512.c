/*
 * kernels_avx512.c - avx512 kernels (being written; falls back to lower levels).
 */
#include "engine/kernels_impl.h"

void kern__init_avx512(struct kern__ops *o)
{
    o->isa = KERN_ISA_AVX512;
}
