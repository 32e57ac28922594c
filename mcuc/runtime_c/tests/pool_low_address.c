/* pool_low_address.c: the pool kernels never form a pointer outside their input. The input is mapped at a
 * low address with many channels, so a pointer to a padded tap (left of column 0) would wrap below address
 * 0, which -fsanitize=pointer-overflow reports. Also checks the results of the padded windows. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>

#include "mcuc_pool.h"

#define CH 70000 /* more bytes than the mapping's address: in - CH wraps */

int main(void)
{
    int8_t *in = mmap((void *)0x10000, 2 * CH, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (in != (int8_t *)0x10000) {
        printf("cannot map the input at 0x10000\n");
        return 2;
    }
    static int8_t out[2 * CH];
    for (int32_t i = 0; i < 2 * CH; ++i) {
        in[i] = (int8_t)(i % 251 - 125);
    }
    /* [1, 1, 2, CH] input, 1x2 window, stride 1, one column of left padding: output column 0 sees only
     * input column 0, output column 1 sees both. */
    const mcuc_maxpool_params_t p = {1, 1, 2, CH, 1, 2, 1, 2, 1, 1, 0, 1, -128, 127};
    mcuc_maxpool_s8(&p, in, out);
    for (int32_t c = 0; c < CH; ++c) {
        const int8_t a = in[c], b = in[CH + c];
        if (out[c] != a || out[CH + c] != (a > b ? a : b)) {
            printf("maxpool wrong at channel %d\n", (int)c);
            return 1;
        }
    }
    mcuc_avgpool_s8(&p, in, out);
    for (int32_t c = 0; c < CH; ++c) {
        const int32_t s = in[c] + in[CH + c];
        const int32_t avg = s > 0 ? (s + 1) / 2 : (s - 1) / 2;
        if (out[c] != in[c] || out[CH + c] != avg) {
            printf("avgpool wrong at channel %d\n", (int)c);
            return 1;
        }
    }
    printf("pool low address ok\n");
    return 0;
}
