/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shared by the fuzz targets and their seed generator: the job id the
 * targets assume, and the libFuzzer entry point they define.
 */
#ifndef SGC_FUZZ_COMMON_H
#define SGC_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_JOB 0x1122334455667788ULL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* SGC_FUZZ_COMMON_H */
