/* mcuc_support.h: the rules every mcuc kernel follows, and the TFLite-compatible fixed-point helpers
 * (bit-exact with mcuc/quant.py).
 *
 * Names. Kernels are mcuc_<op>[_<variant>]_s8. A variant computes the same result from the same
 * parameters in another way, chosen per shape or core (mcuc_depthwise_conv2d_3x3_s8,
 * mcuc_attention_blocked_s8); a kernel with parameters of its own has a name of its own
 * (mcuc_softmax_tflite_s8). Public headers hold declarations only, one per family of the compiler's op
 * registry (mcuc/ops/<family>.py); mcuc.h includes them all. Each public function is in its own
 * src/<function>.c; helpers shared by several kernels are in src/mcuc_internal.h.
 *
 * Parameter structs. Kernel mcuc_<op>[_<variant>]_s8 takes const mcuc_<op>_params_t *params. Where
 * several kernels share one layout, it is declared once as struct mcuc_<name>_params and each kernel
 * has its own typedef of it (struct mcuc_conv_params is mcuc_conv2d_params_t and
 * mcuc_depthwise_conv2d_params_t). A struct that is a further part of a call or of another params
 * struct is mcuc_<part>_params_t (mcuc_per_channel_quant_params_t, mcuc_broadcast_params_t,
 * mcuc_concat_input_params_t). Params hold only integers (plus pointers to const data), so generated
 * code emits them as `static const` initialisers; they are filled by the Python `prepare_*`
 * functions in mcuc/reference/, which also define each kernel's integer-exact numpy reference: the same
 * arguments in the same order, except that it returns the output, reads sizes and broadcast shapes off
 * the arrays, and finds a constant in the params dataclass when prepare_* made it (exp tables, gather
 * indices, LayerNorm's gamma/beta terms).
 *
 * Argument order, the same for every kernel:
 *   1. params: the kernel's params struct, then any further parameter struct of the call (the
 *      broadcast shape of binary elementwise kernels). Every size and count is a params field; no
 *      kernel takes a bare integer.
 *   2. constants the compiler prepares for the op: per-channel multipliers and shifts
 *      (mcuc_per_channel_quant_params_t), look-up and exp tables, gather indices, LayerNorm's folded
 *      gamma/beta terms.
 *   3. scratch, for a kernel that needs one.
 *   4. activation inputs, in the op's operand order (concat: one array of pointers).
 *   5. weights, then bias (conv family).
 *   6. output, last.
 * A kernel that needs scratch has the companion
 *   int32_t mcuc_<op>[_<variant>]_s8_get_buffer_size(const mcuc_<op>_params_t *params)
 * returning the bytes the scratch must hold; the compiler plans exactly that many in the arena
 * (generated code built with MCUC_CHECK_BUFFER_SIZES checks that the two agree). No kernel allocates
 * memory.
 *
 * Aliasing. Buffers must not overlap unless a kernel's comment says that its output may alias an
 * input (elementwise, look-up table, requantize, softmax, LayerNorm); pointers that no other argument
 * may alias are `restrict`.
 *
 * Numbers.
 * - Activations are int8, asymmetric per tensor, row-major; 4-D activations are NHWC. Tensors of rank
 *   < 4 are described as 4-D with leading dimensions of 1.
 * - Fixed-point multipliers (`*_mult`, `*_shift`, `multiplier`/`shift`) come from
 *   mcuc.quant.quantize_multiplier: mult in [2^30, 2^31) or 0, shift in [-31, 30]; they are applied
 *   with mcuc_requantize below (TFLite's MultiplyByQuantizedMultiplier).
 * - act_min <= act_max, both in [-128, 127].
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
