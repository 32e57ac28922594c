/* mcuc_pipeline_s8.c: a chain of int8 ops run row by row through rings (see mcuc_pipeline.h). */
#include "mcuc_conv.h"
#include "mcuc_elementwise.h"
#include "mcuc_pipeline.h"
#include "mcuc_pool.h"

#include <stddef.h>
#include <string.h>

typedef struct {
    const mcuc_pipeline_params_t *p;
    int8_t *scratch;
    const int8_t *input;
    mcuc_row_reader_t reader;
    void *reader_ctx;
    int8_t *output;
    int32_t fetched;                          /* rows of the input in its ring so far (sources 1, 2) */
    int32_t made[MCUC_PIPELINE_MAX_STAGES];   /* rows of each stage's output made so far */
} mcuc_pipeline_run_t;

/* Where a new row goes in a ring holding the last min(made, ring_rows) rows: the next free slot, or
 * the last slot once the oldest row has been shifted out. */
static int8_t *mcuc_ring_append(int8_t *ring, int32_t ring_rows, int32_t row_bytes, int32_t made)
{
    if (made < ring_rows) {
        return ring + (size_t)made * (size_t)row_bytes;
    }
    memmove(ring, ring + row_bytes, (size_t)(ring_rows - 1) * (size_t)row_bytes);
    return ring + (size_t)(ring_rows - 1) * (size_t)row_bytes;
}

/* Row ``row`` of a ring that holds the last min(made, ring_rows) rows made. */
static const int8_t *mcuc_ring_row(const int8_t *ring, int32_t ring_rows, int32_t row_bytes, int32_t made,
                                   int32_t row)
{
    const int32_t held = made < ring_rows ? made : ring_rows;
    return ring + (size_t)(row - (made - held)) * (size_t)row_bytes;
}

static void mcuc_pipeline_fetch(mcuc_pipeline_run_t *run, int32_t upto)
{
    const mcuc_pipeline_params_t *p = run->p;
    if (p->source == MCUC_SOURCE_RESIDENT) {
        return;
    }
    while (run->fetched < upto) {
        int8_t *dst = mcuc_ring_append(run->scratch + p->in_ring_offset, p->in_ring_rows, p->in_row_bytes,
                                       run->fetched);
        if (p->source == MCUC_SOURCE_RING) {
            memcpy(dst, run->input + (size_t)run->fetched * (size_t)p->in_row_bytes, (size_t)p->in_row_bytes);
        } else {
            run->reader(run->reader_ctx, run->fetched, 1, dst);
        }
        run->fetched++;
    }
}

/* Row ``row`` of source ``src`` of stage ``s`` (-1: the pipeline input, -2: the stage's constant operand,
 * which broadcasts over rows, k: stage k's output). */
static const int8_t *mcuc_pipeline_source_row(const mcuc_pipeline_run_t *run, const mcuc_pipeline_stage_params_t *s,
                                              int32_t src, int32_t row)
{
    const mcuc_pipeline_params_t *p = run->p;
    if (src == -2) {
        return s->weights;
    }
    if (src < 0) {
        if (p->source == MCUC_SOURCE_RESIDENT) {
            return run->input + (size_t)row * (size_t)p->in_row_bytes;
        }
        return mcuc_ring_row(run->scratch + p->in_ring_offset, p->in_ring_rows, p->in_row_bytes, run->fetched, row);
    }
    const mcuc_pipeline_stage_params_t *from = &p->stages[src];
    return mcuc_ring_row(run->scratch + from->ring_offset, from->ring_rows, from->row_bytes, run->made[src], row);
}

/* One row of a depthwise conv followed by a pointwise conv, one output pixel at a time: the depthwise
 * kernel computes the pixel's channels (out_w 1, the window's columns selected by pad_left) into tmp,
 * the pointwise kernel turns them into the pixel's output channels. */
static void mcuc_pipeline_dw_pw_row(const mcuc_pipeline_stage_params_t *s, const int8_t *in0, int32_t in_rows,
                                    int32_t pad_top, int8_t *tmp, int8_t *dst)
{
    const mcuc_depthwise_conv2d_params_t *full = (const mcuc_depthwise_conv2d_params_t *)s->params;
    mcuc_depthwise_conv2d_params_t dp = *full;
    dp.batch = 1;
    dp.in_h = in_rows;
    dp.out_h = 1;
    dp.out_w = 1;
    dp.pad_top = pad_top;
    mcuc_conv2d_params_t pp = *(const mcuc_conv2d_params_t *)s->params2;
    pp.batch = 1;
    pp.in_h = 1;
    pp.in_w = 1;
    pp.out_h = 1;
    pp.out_w = 1;
    const mcuc_per_channel_quant_params_t *dq = (const mcuc_per_channel_quant_params_t *)s->aux;
    const mcuc_per_channel_quant_params_t *pq = (const mcuc_per_channel_quant_params_t *)s->aux2;
    for (int32_t ox = 0; ox < full->out_w; ++ox) {
        dp.pad_left = full->pad_left - ox * full->stride_w;
        if (s->func == 1) {
            mcuc_depthwise_conv2d_s8(&dp, dq, in0, s->weights, s->bias, tmp);
        } else {
            mcuc_depthwise_conv2d_3x3_s8(&dp, dq, in0, s->weights, s->bias, tmp);
        }
        mcuc_conv2d_s8(&pp, pq, tmp, s->weights2, s->bias2, dst + (size_t)ox * (size_t)pp.out_c);
    }
}

static void mcuc_pipeline_run_row(const mcuc_pipeline_stage_params_t *s, const int8_t *in0, const int8_t *in1,
                                  int32_t in_rows, int32_t pad_top, int8_t *tmp, int8_t *dst)
{
    switch (s->kind) {
    case MCUC_STAGE_DW_PW:
        mcuc_pipeline_dw_pw_row(s, in0, in_rows, pad_top, tmp, dst);
        break;
    case MCUC_STAGE_CONV: {
        mcuc_conv2d_params_t rp = *(const mcuc_conv2d_params_t *)s->params;
        rp.batch = 1;
        rp.in_h = in_rows;
        rp.out_h = 1;
        rp.pad_top = pad_top;
        const mcuc_per_channel_quant_params_t *quant = (const mcuc_per_channel_quant_params_t *)s->aux;
        if (s->func == 0) {
            mcuc_conv2d_s8(&rp, quant, in0, s->weights, s->bias, dst);
        } else if (s->func == 1) {
            mcuc_depthwise_conv2d_s8(&rp, quant, in0, s->weights, s->bias, dst);
        } else {
            mcuc_depthwise_conv2d_3x3_s8(&rp, quant, in0, s->weights, s->bias, dst);
        }
        break;
    }
    case MCUC_STAGE_POOL: {
        mcuc_avgpool_params_t rp = *(const mcuc_avgpool_params_t *)s->params;
        rp.batches = 1;
        rp.in_h = in_rows;
        rp.out_h = 1;
        rp.pad_top = pad_top;
        if (s->func == 0) {
            mcuc_avgpool_s8(&rp, in0, dst);
        } else {
            mcuc_maxpool_s8(&rp, in0, dst);
        }
        break;
    }
    case MCUC_STAGE_BINARY: {
        const mcuc_broadcast_params_t *shape = (const mcuc_broadcast_params_t *)s->aux;
        if (s->func == 0) {
            mcuc_add_s8((const mcuc_add_params_t *)s->params, shape, in0, in1, dst);
        } else if (s->func == 1) {
            mcuc_sub_s8((const mcuc_sub_params_t *)s->params, shape, in0, in1, dst);
        } else {
            mcuc_mul_s8((const mcuc_mul_params_t *)s->params, shape, in0, in1, dst);
        }
        break;
    }
    case MCUC_STAGE_LUT:
        mcuc_lut_s8((const mcuc_lut_params_t *)s->params, s->weights, in0, dst);
        break;
    default: /* MCUC_STAGE_REQUANTIZE */
        mcuc_requantize_s8((const mcuc_requantize_params_t *)s->params, in0, dst);
        break;
    }
}

/* Make rows of stage ``index`` until it has made ``upto`` of them. */
static void mcuc_pipeline_make(mcuc_pipeline_run_t *run, int32_t index, int32_t upto)
{
    const mcuc_pipeline_params_t *p = run->p;
    const mcuc_pipeline_stage_params_t *s = &p->stages[index];
    while (run->made[index] < upto) {
        const int32_t r = run->made[index];
        const int32_t top = r * s->stride_h - s->pad_top;
        const int32_t lo = top > 0 ? top : 0;
        int32_t hi = 0;
        for (int32_t k = 0; k < s->n_in; ++k) {
            const int32_t src = s->in[k];
            if (src == -2) {
                continue;
            }
            const int32_t src_h = src < 0 ? p->in_h : p->stages[src].out_h;
            hi = top + s->window_h < src_h ? top + s->window_h : src_h;
            if (src < 0) {
                mcuc_pipeline_fetch(run, hi);
            } else {
                mcuc_pipeline_make(run, src, hi);
            }
        }
        /* every input of a stage has the same rows (pointwise stages read same-shape inputs) */
        const int8_t *in0 = mcuc_pipeline_source_row(run, s, s->in[0], lo);
        const int8_t *in1 = s->n_in > 1 ? mcuc_pipeline_source_row(run, s, s->in[1], lo) : NULL;
        int8_t *dst = s->ring_rows == 0
                          ? run->output + (size_t)r * (size_t)s->row_bytes
                          : mcuc_ring_append(run->scratch + s->ring_offset, s->ring_rows, s->row_bytes, r);
        mcuc_pipeline_run_row(s, in0, in1, hi - lo, lo - top, run->scratch + s->tmp_offset, dst);
        run->made[index] = r + 1;
    }
}

int32_t mcuc_pipeline_s8_get_buffer_size(const mcuc_pipeline_params_t *params)
{
    int32_t end = params->source == MCUC_SOURCE_RESIDENT ? 0
                                                          : params->in_ring_offset + params->in_ring_rows * params->in_row_bytes;
    for (int32_t i = 0; i < params->n_stages; ++i) {
        const mcuc_pipeline_stage_params_t *s = &params->stages[i];
        const int32_t stage_end = s->ring_offset + s->ring_rows * s->row_bytes;
        end = stage_end > end ? stage_end : end;
        if (s->kind == MCUC_STAGE_DW_PW) {
            const int32_t tmp_end = s->tmp_offset + ((const mcuc_depthwise_conv2d_params_t *)s->params)->out_c;
            end = tmp_end > end ? tmp_end : end;
        }
    }
    return (end + 3) & ~3;
}

void mcuc_pipeline_s8(const mcuc_pipeline_params_t *params, int8_t *scratch, const int8_t *input,
                      mcuc_row_reader_t reader, void *reader_ctx, int8_t *output)
{
    mcuc_pipeline_run_t run;
    run.p = params;
    run.scratch = scratch;
    run.input = input;
    run.reader = reader;
    run.reader_ctx = reader_ctx;
    run.output = output;
    run.fetched = 0;
    for (int32_t i = 0; i < params->n_stages; ++i) {
        run.made[i] = 0;
    }
    const int32_t last = params->n_stages - 1;
    mcuc_pipeline_make(&run, last, params->stages[last].out_h);
}
