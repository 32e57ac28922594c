/* mcuc_pixels_s8.c: uint8 camera pixels -> the model's int8 input through a per-channel table. */
#include "mcuc_nn.h"

void mcuc_pixels_s8(const int8_t *input, int8_t *output, int32_t pixels, int32_t channels, int32_t planar,
                    const int8_t *table)
{
    const uint8_t *in = (const uint8_t *)input;
    if (planar) {
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
