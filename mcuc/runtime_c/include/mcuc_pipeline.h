/* mcuc_pipeline.h: row pipelines, a chain of int8 ops run together row by row (mcuc/ops/pipeline.py).
 *
 * Each stage is one op of the chain with the parameters of its ordinary kernel. To make row r of a
 * stage, the pipeline first makes, input by input, the rows of each input that row r reads, then
 * calls the stage's kernel for one output row on that window of input rows: spatial stages (conv,
 * depthwise, pooling) with in_h set to the window's rows, pad_top to the padding rows above it and
 * out_h to 1; pointwise stages (add, sub, mul, look-up table, requantize) on one row. Every row is
 * computed once, with the kernels' own arithmetic, so the output equals the ops run one after
 * another, bit for bit.
 *
 * Rows of an inner tensor live in a ring in the scratch buffer: ring_rows rows, the last ones made,
 * oldest first, shifted up by one row when a new row arrives at a full ring. The compiler sizes each
 * ring by replaying this order (mcuc.ops.pipeline.row_plan), so every window read is still there. The
 * last stage writes its rows into the output tensor. The pipeline input is read where it lies
 * (source 0), copied row by row into a ring as first needed (source 1: the output may then overwrite
 * the input sooner), or fetched from the application through a row reader (source 2: streamed input,
 * never whole in memory).
 *
 * Scratch: mcuc_pipeline_s8_get_buffer_size bytes, 4-byte aligned. output may equal input when the
 * compiler has found that rows of the output are written behind every later read of the input. */
#ifndef MCUC_PIPELINE_H
#define MCUC_PIPELINE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MCUC_PIPELINE_MAX_STAGES 64

enum { MCUC_STAGE_CONV = 0, MCUC_STAGE_POOL = 1, MCUC_STAGE_BINARY = 2, MCUC_STAGE_LUT = 3,
       MCUC_STAGE_REQUANTIZE = 4, MCUC_STAGE_DW_PW = 5 };
enum { MCUC_SOURCE_RESIDENT = 0, MCUC_SOURCE_RING = 1, MCUC_SOURCE_STREAM = 2 };

/* One op of the chain.
 * kind/func: CONV 0 mcuc_conv2d_s8, 1 mcuc_depthwise_conv2d_s8, 2 mcuc_depthwise_conv2d_3x3_s8
 * (params: mcuc_conv2d_params_t of the whole tensors, aux: mcuc_per_channel_quant_params_t, weights, bias);
 * POOL 0 avgpool, 1 maxpool (params: mcuc_avgpool_params_t of the whole tensors); BINARY 0 add, 1 sub,
 * 2 mul (params: the kernel's params, aux: mcuc_broadcast_params_t of one row); LUT (params:
 * mcuc_lut_params_t of one row, weights: the table); REQUANTIZE (params: mcuc_requantize_params_t of one row);
 * DW_PW: a depthwise conv (func 1 or 2; params..bias as CONV) and the pointwise conv reading it (params2..bias2:
 * mcuc_conv2d_s8 with a 1x1 kernel), run pixel by pixel so that one pixel of the depthwise output, at
 * tmp_offset in the scratch buffer, is all of it that ever exists.
 * in[0..n_in-1]: -1 the pipeline input, k the output of stage k (k < this stage); BINARY stages list
 * both operands in order, -2 for a constant one (weights, broadcasting over rows).
 * Output row r reads rows [r * stride_h - pad_top, + window_h) of each input, clipped to the input.
 * ring_offset/ring_rows: the ring of this stage's output in the scratch buffer (ring_rows 0: the
 * last stage, which writes the pipeline output). */
typedef struct {
    int32_t kind;
    int32_t func;
    const void *params;
    const void *aux;
    const int8_t *weights;
    const int32_t *bias;
    const void *params2;
    const void *aux2;
    const int8_t *weights2;
    const int32_t *bias2;
    int32_t n_in;
    int32_t in[2];
    int32_t out_h;
    int32_t row_bytes;
    int32_t stride_h;
    int32_t pad_top;
    int32_t window_h;
    int32_t ring_offset;
    int32_t ring_rows;
    int32_t tmp_offset;
} mcuc_pipeline_stage_params_t;

/* The chain (stages in order, the last one writes the output) and how it reads its input:
 * in_h rows of in_row_bytes bytes; source as above; in_ring_offset/in_ring_rows: the input's ring
 * (sources 1 and 2). */
typedef struct {
    int32_t n_stages;
    const mcuc_pipeline_stage_params_t *stages;
    int32_t source;
    int32_t in_h;
    int32_t in_row_bytes;
    int32_t in_ring_offset;
    int32_t in_ring_rows;
} mcuc_pipeline_params_t;

/* Streamed input: write rows [first, first + count) of the pipeline input to dst (count * in_row_bytes
 * bytes). The rows are asked for once each, in order. (model.h declares the same type.) */
#ifndef MCUC_ROW_READER_DEFINED
#define MCUC_ROW_READER_DEFINED
typedef void (*mcuc_row_reader_t)(void *ctx, int32_t first, int32_t count, int8_t *dst);
#endif

/* Bytes of scratch the pipeline needs: the end of its last ring. */
int32_t mcuc_pipeline_s8_get_buffer_size(const mcuc_pipeline_params_t *params);

/* Run the pipeline. input: the pipeline input (sources 0 and 1; NULL for source 2); reader/reader_ctx:
 * the row reader (source 2; NULL otherwise); output: the last stage's output tensor. */
void mcuc_pipeline_s8(const mcuc_pipeline_params_t *params, int8_t *scratch, const int8_t *input,
                      mcuc_row_reader_t reader, void *reader_ctx, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* MCUC_PIPELINE_H */
