/* mcuc_pixels_s8.c: uint8 camera pixels -> the model's int8 input through a per-channel table. */
#include "mcuc_elementwise.h"

void mcuc_pixels_s8(const mcuc_pixels_params_t *params, const int8_t *table, const int8_t *input, int8_t *output)
{
    const uint8_t *in = (const uint8_t *)input;
    const int32_t pixels = params->pixels;
    const int32_t channels = params->channels;
    if (params->planar) {
        for (int32_t c = 0; c < channels; ++c) {
            const int8_t *t = table + 256 * c;
            for (int32_t i = 0; i < pixels; ++i) {
                output[i * channels + c] = t[in[c * pixels + i]];
            }
        }
        return;
    }
    for (int32_t i = 0; i < pixels; ++i) {
        for (int32_t c = 0; c < channels; ++c) {
            output[i * channels + c] = table[256 * c + in[i * channels + c]];
        }
    }
}
