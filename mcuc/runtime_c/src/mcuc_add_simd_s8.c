/* mcuc_add_simd_s8.c: int8 addition (and subtraction) of two same-shape tensors through per-input tables of
 * the rescaled values, one requantization per element; MVE path (gathers, four lanes) and a C path. */
#include "mcuc_elementwise.h"
#include "mcuc_internal.h"
#include "mcuc_simd.h"

void mcuc_add_simd_s8(const mcuc_add_params_t *params, const int32_t *tables, const int32_t *requant,
                      const int8_t *in1, const int8_t *in2, int8_t *output, int32_t size)
{
    const int32_t zp = params->out_offset;
    const int32_t lo = params->act_min;
    const int32_t hi = params->act_max;
    int32_t i = 0;
#if defined(MCUC_MVE)
    const int32x4_t mult = vdupq_n_s32(params->out_mult);
    const int32x4_t left = vdupq_n_s32(0);
    const int32x4_t right = vdupq_n_s32(params->out_shift);
    (void)requant; /* the lanes requantize from out_mult/out_shift */
    for (; i < size; i += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)(size - i));
        /* Both reads before the store: output may alias in1 or in2 element for element. */
        const uint32x4_t q1 = vreinterpretq_u32_s32(vaddq_n_s32(vldrbq_z_s32(in1 + i, p), 128));
        const uint32x4_t q2 = vreinterpretq_u32_s32(vaddq_n_s32(vldrbq_z_s32(in2 + i, p), 384));
        const int32x4_t acc = vaddq_s32(vldrwq_gather_shifted_offset_z_s32(tables, q1, p),
                                        vldrwq_gather_shifted_offset_z_s32(tables, q2, p));
        int32x4_t y = vaddq_n_s32(mcuc_requantize_mve(acc, mult, left, right), zp);
        y = vminq_s32(vmaxq_s32(y, vdupq_n_s32(lo)), vdupq_n_s32(hi));
        vstrbq_p_s32(output + i, y, p);
    }
#else
    const int32_t *t1 = tables + 128; /* indexed by the int8 value itself */
    const int32_t *t2 = tables + 384;
    for (; i < size; ++i) {
        output[i] = mcuc_output_table_s8(t1[in1[i]] + t2[in2[i]], requant, zp, lo, hi);
    }
#endif
}
