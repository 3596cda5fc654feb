/*
 * peak.h - the machine's measured peak f32 FLOP/s, the denominator of MFU.
 * Runs independent fused multiply-adds in registers on n threads for about
 * `ms` milliseconds (AVX-512 when the CPU has it, else AVX2+FMA, else scalar).
 */
#ifndef AISTACK_TRAIN_PEAK_H
#define AISTACK_TRAIN_PEAK_H

/* Peak f32 FLOP/s over n_threads threads; which ISA was used goes to *isa if non-NULL. */
double peak_flops(int n_threads, int ms, const char **isa);
/* Achieved FLOP/s of an OpenBLAS sgemm of size n x n x n on the current BLAS threads. */
double peak_sgemm_flops(int n);

#endif
