/*
 * fuzz: what the libFuzzer targets share. Each target defines LLVMFuzzerTestOneInput(), the
 * entry point libFuzzer calls with one input; the same file links into replay.c (built with gcc
 * by the normal test run) to replay the committed corpus, so a finding once fixed stays fixed.
 *
 * Targets check the invariants their module's header promises, beyond "no crash": a broken
 * promise aborts with FUZZ_CHECK, which both libFuzzer and the replay driver report as a
 * failure with the input that caused it.
 */
#ifndef IPWARM_FUZZ_H
#define IPWARM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Called once per input; returns 0 (libFuzzer's only accepted value). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with a message when an invariant does not hold. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
