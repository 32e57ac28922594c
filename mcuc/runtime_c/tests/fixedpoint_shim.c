/* fixedpoint_shim.c: exports the inline fixed-point helpers so tests can call them through ctypes. */
#include <stdint.h>

#include "mcuc_support.h"

void mcuc_test_requantize_array(const int32_t *x, const int32_t *mult, const int32_t *shift, int32_t *out,
                                int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        out[i] = mcuc_requantize(x[i], mult[i], shift[i]);
    }
}
