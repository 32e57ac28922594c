/* mcuc_support.h: conventions shared by every mcuc kernel, and the TFLite-compatible fixed-point helpers
 * (bit-exact with mcuc/quant.py).
 *
 * Conventions:
 * - Activations are int8, asymmetric per tensor, row-major; 4-D activations are NHWC. Tensors of rank
 *   < 4 are described as 4-D with leading dimensions of 1.
 * - Parameter structs hold only integers (plus pointers to const data), so generated code emits them
 *   as `static const` initialisers. They are filled by the Python `prepare_*` functions in
 *   mcuc/reference/, which also define the integer-exact numpy reference of each kernel.
 * - Fixed-point multipliers (`*_mult`, `*_shift`, `multiplier`/`shift`) come from
 *   mcuc.quant.quantize_multiplier: mult in [2^30, 2^31) or 0, shift in [-31, 30]; they are applied
 *   with mcuc_requantize below (TFLite's MultiplyByQuantizedMultiplier).
 * - act_min <= act_max, both in [-128, 127].
 * - No kernel allocates memory. A kernel that needs scratch memory takes it from the caller, sized by
 *   its _get_buffer_size companion (the compiler plans it in the arena).
 * - Buffers must not overlap unless a kernel's comment says that its output may alias an input.
 * - `>>` on negative signed values is an arithmetic (flooring) shift, as on every compiler mcuc
 *   targets (GCC, Clang, Arm Compiler).
 */
#ifndef MCUC_SUPPORT_H
#define MCUC_SUPPORT_H

#include <stdint.h>

static inline int32_t mcuc_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

static inline int32_t mcuc_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * mult * 2^(shift-31), rounded as TFLite's MultiplyByQuantizedMultiplier.
 * mult in [2^30, 2^31) or 0; shift in [-31, 30]; x << max(shift,0) must fit int32. */
static inline int32_t mcuc_requantize(int32_t x, int32_t mult, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return mcuc_rounding_divide_by_pot(
        mcuc_sat_rounding_doubling_high_mul((int32_t)((uint32_t)x << left), mult), right);
}

static inline int8_t mcuc_clamp_s8(int32_t v, int32_t lo, int32_t hi)
{
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

#endif /* MCUC_SUPPORT_H */
