/* mcuc_conv.h: int8 kernels of the conv family (conv2d, depthwise conv2d, fully connected).
 *
 * Numerics follow the TFLite int8 specification and are bit-exact with mcuc/reference/conv.py:
 *   acc  = bias[oc] + sum over in-bounds taps of (x - input_zp) * w
 *   y    = mcuc_requantize(acc, multiplier[oc], shift[oc]) + output_zp
 *   out  = clamp(y, act_min, act_max)
 * Out-of-bounds (padding) taps contribute nothing, which equals padding the input with input_zp.
 *
 * Layouts: activations NHWC int8; conv weights OHWI int8 [out_c][kernel_h][kernel_w][in_c / groups],
 * symmetric per output channel (zero point 0); bias int32 [out_c] or NULL (treated as zeros);
 * fully connected weights int8 [out_features][in_features].
 *
 * The portable kernels need no scratch memory. Kernel variants (mcuc_<op>_<variant>_s8) compute the same
 * outputs for the shapes they accept, with DSP (Cortex-M4/M7) and MVE (Cortex-M55) code paths besides the
 * portable one; some read constants the compiler prepared: "folded bias" is
 *   bias_folded[oc] = bias[oc] + input_offset * sum of oc's weights   (input_offset = -input_zp)
 * so their inner loops multiply raw int8 values. A variant that needs scratch has a _get_buffer_size
 * companion.
 * Accumulation is int32: callers keep |bias| + 255 * 128 * taps below 2^31, where taps is
 * kernel_h * kernel_w * in_c / groups (conv) or in_features (fully connected); this holds for
 * taps <= 32767 with |bias| < 2^30. */
#ifndef MCUC_CONV_H
#define MCUC_CONV_H

#include <stdint.h>

#include "mcuc_support.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per-output-channel requantization: real scale in_scale * w_scale[oc] / out_scale is
 * multiplier[oc] * 2^(shift[oc] - 31). Arrays have one entry per output channel;
 * multiplier in [2^30, 2^31) or 0, shift in [-31, 30] (see mcuc_support.h).
 * requant: the same in the form the DSP code paths of the variants apply in five instructions, four int32
 * per channel prepared by the compiler (NULL where no kernel reads it):
 *   {multiplier, low word, high word of 2^30 + 2^(30 - shift), -shift - 1}          for shift < 0
 *   {multiplier, 2^30, 0, -shift - 1}                                               for shift >= 0
 * (see mcuc_requantize_right in src/mcuc_simd.h). */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
    const int32_t *requant;
} mcuc_per_channel_quant_params_t;

/* Geometry and zero points of a 2-D convolution (also used by the depthwise kernel).
 * All fields are plain integers so generated code can emit `static const` initialisers.
 * Ranges:
 *   batch, in_h, in_w, in_c, out_h, out_w, out_c, kernel_h, kernel_w >= 1
 *   stride_h, stride_w, dilation_h, dilation_w >= 1
 *   pad_top, pad_left >= 0 (bottom/right padding is implied by out_h/out_w)
 *   groups >= 1, divides in_c and out_c
 *   out_h = (in_h + pad_top + pad_bottom - dilation_h * (kernel_h - 1) - 1) / stride_h + 1,
 *   out_w likewise, for some pad_bottom, pad_right >= 0
 *   input_zp, output_zp in [-128, 127]
 *   -128 <= act_min <= act_max <= 127 (fused ReLU / ReLU6 bounds in the output's quantized domain) */
struct mcuc_conv_params {
    int32_t batch;
    int32_t in_h;
    int32_t in_w;
    int32_t in_c;
    int32_t out_h;
    int32_t out_w;
    int32_t out_c;
    int32_t kernel_h;
    int32_t kernel_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t dilation_h;
    int32_t dilation_w;
    int32_t pad_top;
    int32_t pad_left;
    int32_t groups;
    int32_t input_zp;
    int32_t output_zp;
    int32_t act_min;
    int32_t act_max;
};

/* conv2d and depthwise conv2d share one parameter layout, struct mcuc_conv_params; each has its own name
 * for it. */
typedef struct mcuc_conv_params mcuc_conv2d_params_t;
typedef struct mcuc_conv_params mcuc_depthwise_conv2d_params_t;

/* Shapes and zero points of a fully connected layer.
 * Ranges: rows, in_features, out_features >= 1; input_zp, output_zp in [-128, 127];
 *         -128 <= act_min <= act_max <= 127. */
typedef struct {
    int32_t rows;
    int32_t in_features;
    int32_t out_features;
    int32_t input_zp;
    int32_t output_zp;
    int32_t act_min;
    int32_t act_max;
} mcuc_fully_connected_params_t;

/* General grouped int8 convolution, NHWC in / NHWC out.
 *   params  geometry as documented at mcuc_conv2d_params_t (any groups, strides, dilations, pads)
 *   quant   per-output-channel multiplier/shift, out_c entries each
 *   input   int8 [batch][in_h][in_w][in_c]
 *   weights int8 [out_c][kernel_h][kernel_w][in_c / groups]; output channel oc belongs to group
 *           oc / (out_c / groups) and reads input channels [g * in_c/groups, (g+1) * in_c/groups)
 *   bias    int32 [out_c], or NULL for zeros
 *   output  int8 [batch][out_h][out_w][out_c]; must not overlap input */
void mcuc_conv2d_s8(const mcuc_conv2d_params_t *params,
                    const mcuc_per_channel_quant_params_t *quant,
                    const int8_t *restrict input,
                    const int8_t *restrict weights,
                    const int32_t *restrict bias,
                    int8_t *restrict output);

/* Depthwise int8 convolution: the conv2d case groups == in_c, out_c = in_c * depth_multiplier.
 * Same arguments as mcuc_conv2d_s8, with these extra constraints on params:
 *   groups == in_c, out_c a multiple of in_c (depth_multiplier = out_c / in_c >= 1)
 *   weights int8 [out_c][kernel_h][kernel_w][1]; output channel oc = ic * depth_multiplier + m
 *           reads input channel ic */
void mcuc_depthwise_conv2d_s8(const mcuc_depthwise_conv2d_params_t *params,
                              const mcuc_per_channel_quant_params_t *quant,
                              const int8_t *restrict input,
                              const int8_t *restrict weights,
                              const int32_t *restrict bias,
                              int8_t *restrict output);

/* Depthwise 3x3 int8 convolution specialised for the common MobileNet case: kernel_h == kernel_w
 * == 3, dilation_h == dilation_w == 1, depth multiplier 1 (out_c == in_c == groups). Any strides
 * and pads. Same arguments and results as mcuc_depthwise_conv2d_s8 for those params; interior
 * output pixels run a fully unrolled 9-tap loop without bounds checks.
 *   weights int8 [channels][3][3][1] */
void mcuc_depthwise_conv2d_3x3_s8(const mcuc_depthwise_conv2d_params_t *params,
                                  const mcuc_per_channel_quant_params_t *quant,
                                  const int8_t *restrict input,
                                  const int8_t *restrict weights,
                                  const int32_t *restrict bias,
                                  int8_t *restrict output);

/* Weights in quad layout: the OHWI weights as rows [out_c][k] (k = kernel_h * kernel_w * in_c / groups, or
 * in_features) re-laid in quads of output channels and 16-column chunks, k16 = k rounded up to 16:
 *   int8 [(out_c + 3) / 4][k16 / 16][4][16], element [c / 4][j / 16][c % 4][j % 16] = w[c][j]
 *   (0 for j >= k and for the missing channels of the last quad). */

/* Pointwise conv variant: kernel_h == kernel_w == 1, groups == 1, pad_top == pad_left == 0 and no bottom or
 * right padding (out_h = (in_h - 1) / stride_h + 1, likewise out_w); any strides. A GEMM of the pixels by the
 * weights: MVE takes two pixels x four channels per block (VMLADAV), DSP one pixel x four channels (SMLAD).
 *   weights quad layout (k = in_c)
 *   bias    folded bias, int32 [out_c] (not NULL) */
void mcuc_conv2d_1x1_s8(const mcuc_conv2d_params_t *params,
                        const mcuc_per_channel_quant_params_t *quant,
                        const int8_t *restrict input,
                        const int8_t *restrict weights,
                        const int32_t *restrict bias,
                        int8_t *restrict output);

/* Convolution variant for groups == 1 (any kernel, strides, dilations, pads), fastest on MVE cores: for four
 * output pixels at a time, their receptive fields are copied into scratch as im2col rows of k16 int8
 * (padding taps hold input_zp, columns past k are 0) and multiplied by the weights as in mcuc_conv2d_1x1_s8.
 *   scratch mcuc_conv2d_im2col_s8_get_buffer_size(params) bytes = 4 * k16
 *   weights quad layout (k = kernel_h * kernel_w * in_c)
 *   bias    folded bias, int32 [out_c] */
int32_t mcuc_conv2d_im2col_s8_get_buffer_size(const mcuc_conv2d_params_t *params);
void mcuc_conv2d_im2col_s8(const mcuc_conv2d_params_t *params,
                           const mcuc_per_channel_quant_params_t *quant,
                           int8_t *restrict scratch,
                           const int8_t *restrict input,
                           const int8_t *restrict weights,
                           const int32_t *restrict bias,
                           int8_t *restrict output);

/* Convolution variant for groups == 1 (any kernel, strides, dilations, pads), fastest on DSP cores: for two
 * output pixels at a time, their receptive fields are copied into scratch as im2col rows of
 * kpad = kernel_h * kernel_w * in_c rounded up to a multiple of 4 (padding taps hold input_zp), widened to
 * int16 pairs and multiplied by two output channels at a time with SMLAD.
 *   scratch mcuc_conv2d_wide_s8_get_buffer_size(params) bytes, word aligned = 6 * kpad
 *   weights the OHWI weights flattened to [out_c][kpad] (zero padded) and re-laid in output-channel pairs:
 *           int8 [(out_c + 1) / 2][kpad / 4][2][4], element [c / 2][j / 4][c % 2][j % 4] = w[c][j]
 *           (0 for j >= kh * kw * in_c and for the missing partner of an odd last channel)
 *   bias    folded bias, int32 [out_c] */
int32_t mcuc_conv2d_wide_s8_get_buffer_size(const mcuc_conv2d_params_t *params);
void mcuc_conv2d_wide_s8(const mcuc_conv2d_params_t *params,
                         const mcuc_per_channel_quant_params_t *quant,
                         int8_t *restrict scratch,
                         const int8_t *restrict input,
                         const int8_t *restrict weights,
                         const int32_t *restrict bias,
                         int8_t *restrict output);

/* Depthwise variant for depth multiplier 1 (out_c == in_c == groups; any kernel, strides, dilations, pads),
 * vectorised over groups of four channels: MVE a group per VMUL, DSP a group per SXTB16 pair with
 * SMLABB/SMLATT; 3x3, 5x5 and 7x7 windows inside the image run fully unrolled.
 *   weights int8 [(channels + 3) / 4][kernel_h * kernel_w][4]: the taps of four channels side by side,
 *           element [c / 4][ky * kernel_w + kx][c % 4] = w[c][ky][kx] (0 for the missing channels)
 *   bias    folded bias, int32 [channels] (taps in the padding count as input_zp) */
void mcuc_depthwise_conv2d_simd_s8(const mcuc_depthwise_conv2d_params_t *params,
                                   const mcuc_per_channel_quant_params_t *quant,
                                   const int8_t *restrict input,
                                   const int8_t *restrict weights,
                                   const int32_t *restrict bias,
                                   int8_t *restrict output);

/* Depthwise variant for depth multiplier 1, dilation 1, kernel_h <= 16 and stride_w 1 or 2, fastest on DSP
 * and MVE cores: one channel at a time, its input rows widened to int16 (the padding as input_zp) in a
 * scratch ring of kernel_h rows; DSP multiplies pairs of taps per SMLAD, MVE four output pixels per VMLA.
 *   scratch mcuc_depthwise_conv2d_rows_s8_get_buffer_size(params) bytes, word aligned
 *   weights as mcuc_depthwise_conv2d_s8: int8 [channels][kernel_h][kernel_w][1]
 *   bias    folded bias, int32 [channels] */
int32_t mcuc_depthwise_conv2d_rows_s8_get_buffer_size(const mcuc_depthwise_conv2d_params_t *params);
void mcuc_depthwise_conv2d_rows_s8(const mcuc_depthwise_conv2d_params_t *params,
                                   const mcuc_per_channel_quant_params_t *quant,
                                   int8_t *restrict scratch,
                                   const int8_t *restrict input,
                                   const int8_t *restrict weights,
                                   const int32_t *restrict bias,
                                   int8_t *restrict output);

/* Depthwise variant for depth multiplier 1, dilation 1, kernel_h and kernel_w <= 16 and in_c <= 9362, fastest
 * on MVE cores: one channel at a time, its input rows copied as int8 (the padding as input_zp) into a scratch
 * ring of kernel_h rows; each output pixel is one VMLADAVA dot product of 16 input bytes and a zero-padded
 * weight row per kernel row, four pixels per weight load. The portable path reads the input directly.
 *   scratch mcuc_depthwise_conv2d_dot_s8_get_buffer_size(params) bytes
 *   weights as mcuc_depthwise_conv2d_s8: int8 [channels][kernel_h][kernel_w][1]
 *   bias    folded bias, int32 [channels] */
/* Output pixels of one channel whose int32 sums mcuc_depthwise_conv2d_dot_s8 keeps to requantize together. */
#define MCUC_DW_DOT_BATCH_PIXELS 128
int32_t mcuc_depthwise_conv2d_dot_s8_get_buffer_size(const mcuc_depthwise_conv2d_params_t *params);
void mcuc_depthwise_conv2d_dot_s8(const mcuc_depthwise_conv2d_params_t *params,
                                  const mcuc_per_channel_quant_params_t *quant,
                                  int8_t *restrict scratch,
                                  const int8_t *restrict input,
                                  const int8_t *restrict weights,
                                  const int32_t *restrict bias,
                                  int8_t *restrict output);

/* Fully connected (matrix times transposed weights) int8 layer.
 *   params  shapes as documented at mcuc_fully_connected_params_t
 *   quant   per-output-channel multiplier/shift, out_features entries each (a per-tensor
 *           layer passes arrays filled with the same value)
 *   input   int8 [rows][in_features]
 *   weights int8 [out_features][in_features]
 *   bias    int32 [out_features], or NULL for zeros
 *   output  int8 [rows][out_features]; must not overlap input */
void mcuc_fully_connected_s8(const mcuc_fully_connected_params_t *params,
                             const mcuc_per_channel_quant_params_t *quant,
                             const int8_t *restrict input,
                             const int8_t *restrict weights,
                             const int32_t *restrict bias,
                             int8_t *restrict output);

/* Fully connected variant on the SIMD GEMM core of mcuc_conv2d_1x1_s8: same arguments as
 * mcuc_fully_connected_s8 except
 *   weights quad layout (k = in_features)
 *   bias    folded bias, int32 [out_features] (not NULL) */
void mcuc_fully_connected_simd_s8(const mcuc_fully_connected_params_t *params,
                                  const mcuc_per_channel_quant_params_t *quant,
                                  const int8_t *restrict input,
                                  const int8_t *restrict weights,
                                  const int32_t *restrict bias,
                                  int8_t *restrict output);

/* Fully connected variant for rows >= 2, fastest on DSP cores: two rows at a time widened to int16 pairs in
 * scratch, multiplied by two output channels at a time with SMLAD (as mcuc_conv2d_wide_s8).
 *   scratch mcuc_fully_connected_wide_s8_get_buffer_size(params) bytes, word aligned = 6 * kpad,
 *           kpad = in_features rounded up to a multiple of 4
 *   weights int8 [(out_features + 1) / 2][kpad / 4][2][4], the pair layout of mcuc_conv2d_wide_s8
 *   bias    folded bias, int32 [out_features] */
int32_t mcuc_fully_connected_wide_s8_get_buffer_size(const mcuc_fully_connected_params_t *params);
void mcuc_fully_connected_wide_s8(const mcuc_fully_connected_params_t *params,
                                  const mcuc_per_channel_quant_params_t *quant,
                                  int8_t *restrict scratch,
                                  const int8_t *restrict input,
                                  const int8_t *restrict weights,
                                  const int32_t *restrict bias,
                                  int8_t *restrict output);

#ifdef __cplusplus
}
#endif

#endif /* MCUC_CONV_H */
