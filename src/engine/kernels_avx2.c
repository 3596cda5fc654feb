/*
 * kernels_avx2.c - avx2 kernels (being written; falls back to lower levels).
 */
#include "engine/kernels_impl.h"

void kern__init_avx2(struct kern__ops *o)
{
    o->isa = KERN_ISA_AVX2;
}
