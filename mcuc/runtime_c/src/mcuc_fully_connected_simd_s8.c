/* mcuc_fully_connected_simd_s8.c: fully connected int8 layer on the SIMD GEMM core (DSP / MVE paths). */
#include "mcuc_conv.h"
#include "mcuc_simd.h"

void mcuc_fully_connected_simd_s8(const mcuc_fully_connected_params_t *params,
                                  const mcuc_per_channel_quant_params_t *quant,
                                  const int8_t *restrict input,
                                  const int8_t *restrict weights,
                                  const int32_t *restrict bias,
                                  int8_t *restrict output)
{
    mcuc_gemm_s8(input, params->in_features, params->rows, weights, params->in_features, params->out_features, bias,
                 quant, params->output_zp, params->act_min, params->act_max, output);
}
