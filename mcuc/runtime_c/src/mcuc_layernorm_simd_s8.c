/* mcuc_layernorm_simd_s8.c: mcuc_layernorm_s8 bit for bit with the row sums as SIMD dot products, the row's
 * inverse square root in 32-bit steps, and per element one 32x32 high multiply and one 64-bit multiply-add. */
#include "mcuc_norm.h"
#include "mcuc_simd.h"

/* Leading zero bits of x != 0 (CLZ). */
static inline int32_t clz_u32(uint32_t x)
{
#if defined(__GNUC__)
    return __builtin_clz(x);
#else
    int32_t n = 0;
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
#endif
}

/* floor(sqrt(w)) for w in [2^28, 2^30): Newton from the tangent at 2^28, which lies above the root. */
static uint32_t isqrt_u30(uint32_t w)
{
#if defined(__GNUC__) && defined(__ARM_FP) && (__ARM_FP & 4)
    /* the single-precision square root is within 2^-8 of the root: floor it and correct by one */
    float f = (float)w;
    __asm__("vsqrt.f32 %0, %1" : "=t"(f) : "t"(f));
    uint32_t r = (uint32_t)f;
    if (r * r > w) {
        --r;
    } else if ((r + 1) * (r + 1) <= w) {
        ++r;
    }
    return r;
#else
    uint32_t x = (w >> 15) + 8192u;
    for (;;) {
        const uint32_t y = (x + w / x) >> 1;
        if (y >= x) {
            return x;
        }
        x = y;
    }
#endif
}

/* floor(2^62 / r) mod 2^32 for r in [2^30, 2^31) (r = 2^30 gives 2^32, i.e. 0): the quotient of 2^63 by the
 * normalised divisor 2r in two 16-bit digits, each estimated by a 32/16 division and corrected (Hacker's
 * Delight divlu). */
static uint32_t inv_u62(uint32_t r)
{
    if (r == 0x40000000u) {
        return 0;
    }
    const uint32_t v = r << 1;
    const uint32_t vn1 = v >> 16, vn0 = v & 0xFFFFu;
    const uint32_t un32 = 0x80000000u;
    uint32_t q1 = un32 / vn1;
    uint32_t rhat = un32 - q1 * vn1;
    while (q1 >= 0x10000u || q1 * vn0 > (rhat << 16)) {
        --q1;
        rhat += vn1;
        if (rhat >= 0x10000u) {
            break;
        }
    }
    const uint32_t un21 = (un32 << 16) - q1 * v;
    uint32_t q0 = un21 / vn1;
    rhat = un21 - q0 * vn1;
    while (q0 >= 0x10000u || q0 * vn0 > (rhat << 16)) {
        --q0;
        rhat += vn1;
        if (rhat >= 0x10000u) {
            break;
        }
    }
    return (q1 << 16) + q0;
}

/* The row constants of N_c = (D_c * inv + 2^(s-1)) >> s (mcuc_norm.h) from S and Q:
 *   s <= 32: N_c = hi32(D'_c * inv + 2^31) with D'_c = D_c << (32 - s)   (|D'_c| < 2^25), e = -1
 *   s > 32:  N_c = (hi32(D_c * inv) + 2^(e-1)) >> e with e = s - 32
 * inv in (2^31, 2^32] is kept as inv_s = inv - 2^32 (an int32), so hi32(D' * inv) = hi32(D' * inv_s) + D'. */
typedef struct {
    uint32_t n_u; /* row_size << (32 - s), or row_size */
    uint32_t s_u; /* S shifted alike */
    int32_t inv_s;
    int32_t e;    /* -1: the rounded form */
} ln_row_t;

static ln_row_t ln_row(int32_t c_n, int32_t s, int32_t q2, int64_t eps_v)
{
    const uint64_t v = (uint64_t)((int64_t)c_n * q2 - (int64_t)s * s + eps_v);
    const uint32_t vh = (uint32_t)(v >> 32);
    const int32_t bits = vh != 0 ? 64 - clz_u32(vh) : 32 - clz_u32((uint32_t)v);
    const int32_t k = bits >= 61 ? 0 : (62 - bits) >> 1;
    const uint64_t w = v << (2 * k); /* [2^60, 2^62) */
    const uint32_t r1 = isqrt_u30((uint32_t)(w >> 32));
    const uint32_t r0 = r1 << 16;
    const uint64_t rem = w - (uint64_t)r0 * r0; /* < (2 r1 + 1) 2^32 */
    /* one Newton step from below lands at most 2 above floor(sqrt(w)) */
    uint32_t r = r0 + (uint32_t)(rem >> 17) / r1;
    while ((uint64_t)r * r > w) {
        --r;
    }
    const int32_t sh = 62 - k - 16;
    ln_row_t row;
    row.inv_s = (int32_t)inv_u62(r);
    if (sh <= 32) {
        row.n_u = (uint32_t)c_n << (32 - sh);
        row.s_u = (uint32_t)s << (32 - sh);
        row.e = -1;
    } else {
        row.n_u = (uint32_t)c_n;
        row.s_u = (uint32_t)s;
        row.e = sh - 32;
    }
    return row;
}

/* x * m + a (one MLA; compilers tend to split it into MUL and SUB). */
static inline int32_t mul_add(int32_t x, uint32_t m, uint32_t a)
{
#if defined(MCUC_DSP)
    int32_t r;
    __asm__("mla %0, %1, %2, %3" : "=r"(r) : "r"(x), "r"(m), "r"(a));
    return r;
#else
    return (int32_t)((uint32_t)x * m + a);
#endif
}

/* hi32(a * b) + acc (SMMLA), and the same rounded (SMMLAR). */
static inline int32_t mulhi_add(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((((int64_t)a * b) >> 32) + acc);
}

static inline int32_t mulhi_round_add(int32_t a, int32_t b, int32_t acc)
{
#if defined(MCUC_DSP)
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
#else
    return (int32_t)((((int64_t)a * b + ((int64_t)1 << 31)) >> 32) + acc);
#endif
}

/* One output byte in either form of N and for any out_shift (the rows and layers the fast loops do not take):
 * the 64-bit sum shifted whole and clamped. */
static int8_t ln_out_general(int32_t x, const ln_row_t *row, const int32_t *a, int32_t j, int32_t t)
{
    const int32_t d = (int32_t)((uint32_t)x * row->n_u - row->s_u);
    const int32_t n = row->e >= 0 ? mulhi_add(d, row->inv_s, d + (1 << (row->e - 1))) >> row->e
                                  : mulhi_round_add(d, row->inv_s, d);
    const int64_t b = (int64_t)(((uint64_t)(uint32_t)a[5 + 2 * j] << 32) | (uint32_t)a[4 + 2 * j]);
    const int64_t o = ((int64_t)n * a[j] + b) >> t;
    return (int8_t)(o < -128 ? -128 : (o > 127 ? 127 : o));
}

/* The output byte of N at the affine entry (gamma g, bias b with the rounding and out_zp << T folded in). */
/* o saturated to int8 (SSAT). */
static inline int8_t ln_sat(int32_t o)
{
#if defined(MCUC_DSP)
    return (int8_t)__ssat(o, 8);
#else
    return (int8_t)(o < -128 ? -128 : (o > 127 ? 127 : o));
#endif
}

static inline int8_t ln_out(int32_t n, int32_t g, const int32_t *b_words, int32_t t32)
{
#if defined(__GNUC__)
    /* a word-aligned int64 (the low word first): one LDRD */
    typedef int64_t word_aligned_i64 __attribute__((aligned(4), may_alias));
    const int64_t b = *(const word_aligned_i64 *)(const void *)b_words;
#else
    int64_t b;
    memcpy(&b, b_words, sizeof b);
#endif
    const int64_t acc = (int64_t)n * g + b;
    const int32_t o = (int32_t)(acc >> 32) >> t32;
#if defined(MCUC_DSP)
    return (int8_t)__ssat(o, 8);
#else
    return (int8_t)(o < -128 ? -128 : (o > 127 ? 127 : o));
#endif
}

#if defined(MCUC_MVE)
/* Four output values of the channel quad at a (lanes past the row read zero padding): N by VRMULH, the 64-bit
 * multiply-add as VMUL/VMULH with the carry of the low words, the shift by out_shift - 32, then saturation to
 * int8 by a saturating shift up and back. */
static inline int32x4_t ln_mve(int32x4_t xv, const int32_t *a, uint32x4_t n_u, uint32_t neg_s, int32x4_t inv_s,
                               int32_t t32)
{
    const int32x4_t d = vreinterpretq_s32_u32(vmlasq_n_u32(vreinterpretq_u32_s32(xv), n_u, neg_s));
    const int32x4_t n = vaddq_s32(vrmulhq_s32(d, inv_s), d);
    const int32x4_t g = vldrwq_s32(a);
    const int32x4x2_t b = vld2q_s32(a + 4);
    const uint32x4_t lo_p = vreinterpretq_u32_s32(vmulq_s32(n, g));
    const uint32x4_t lo = vaddq_u32(lo_p, vreinterpretq_u32_s32(b.val[0]));
    /* the carry of the low words is lo < b_lo: b_lo - lo saturated at 0, then at most 1 (no predicate) */
    const uint32x4_t carry = vminq_u32(vqsubq_u32(vreinterpretq_u32_s32(b.val[0]), lo), vdupq_n_u32(1));
    const int32x4_t hi = vaddq_s32(vaddq_s32(vmulhq_s32(n, g), b.val[1]), vreinterpretq_s32_u32(carry));
    return vshrq_n_s32(vqshlq_n_s32(vshlq_r_s32(hi, -t32), 24), 24);
}
#endif

void mcuc_layernorm_simd_s8(const mcuc_layernorm_params_t *params, const int32_t *affine, const int8_t *input,
                            int8_t *output)
{
    const int32_t c_n = params->row_size;
    const int32_t t32 = params->out_shift - 32;
    for (int32_t r = 0; r < params->rows; ++r) {
        const int8_t *x = input + (int32_t)r * c_n;
        int8_t *y = output + (int32_t)r * c_n;
        int32_t s = 0;
        int32_t q2 = 0;
        int32_t c = 0;
#if defined(MCUC_MVE)
        for (; c + 16 <= c_n; c += 16) {
            const int8x16_t v = vldrbq_s8(x + c);
            s = vaddvaq_s8(s, v);
            q2 = vmladavaq_s8(q2, v, v);
        }
        if (c < c_n) {
            const int8x16_t v = vldrbq_z_s8(x + c, vctp8q((uint32_t)(c_n - c)));
            s = vaddvaq_s8(s, v);
            q2 = vmladavaq_s8(q2, v, v);
            c = c_n;
        }
#elif defined(MCUC_DSP)
#define MCUC_LN_SUMS(w)                                                                                  \
    do {                                                                                                 \
        const int32_t ev_ = mcuc_sxtb16(w), od_ = mcuc_sxtb16_ror8(w);                                   \
        q2 = mcuc_smlad(ev_, ev_, q2);                                                                   \
        q2 = mcuc_smlad(od_, od_, q2);                                                                   \
        s = mcuc_smlad(ev_, 0x00010001, s);                                                              \
        s = mcuc_smlad(od_, 0x00010001, s);                                                              \
    } while (0)
        for (; c + 8 <= c_n; c += 8) {
            const uint32_t w0 = mcuc_read_u32(x + c), w1 = mcuc_read_u32(x + c + 4);
            MCUC_LN_SUMS(w0);
            MCUC_LN_SUMS(w1);
        }
        if (c + 4 <= c_n) {
            const uint32_t w0 = mcuc_read_u32(x + c);
            MCUC_LN_SUMS(w0);
            c += 4;
        }
#undef MCUC_LN_SUMS
#endif
        for (; c < c_n; ++c) {
            s += x[c];
            q2 += (int32_t)x[c] * x[c];
        }
        const ln_row_t row = ln_row(c_n, s, q2, params->eps_v);
        if (row.e >= 0 || t32 < 0) {
            for (c = 0; c < c_n; ++c) {
                y[c] = ln_out_general(x[c], &row, affine + 12 * (c >> 2), c & 3, params->out_shift);
            }
            continue;
        }
        c = 0;
#if defined(MCUC_MVE)
        {
            const uint32x4_t n_u = vdupq_n_u32(row.n_u);
            const int32x4_t inv_s = vdupq_n_s32(row.inv_s);
            const uint32_t neg_s = (uint32_t)0 - row.s_u;
            for (; c + 4 <= c_n; c += 4) {
                vstrbq_s32(y + c, ln_mve(vldrbq_s32(x + c), affine + 3 * c, n_u, neg_s, inv_s, t32));
            }
            if (c < c_n) {
                const mve_pred16_t p = vctp32q((uint32_t)(c_n - c));
                vstrbq_p_s32(y + c, ln_mve(vldrbq_z_s32(x + c, p), affine + 3 * c, n_u, neg_s, inv_s, t32), p);
            }
        }
#else
        const int32_t inv_s = row.inv_s;
        const uint32_t neg_s = (uint32_t)0 - row.s_u;
#if defined(MCUC_DSP) && defined(__GNUC__)
        /* hi32(n * g + the bias at byte offset off of a): the bias words by one LDRD into the SMLAL accumulators
         * (compilers split a word-aligned int64 load in two) */
#define MCUC_LN_HI(off, n, g, hi)                                                                        \
    do {                                                                                                 \
        int32_t lo_;                                                                                     \
        __asm__("ldrd %0, %1, [%4, #" #off "]\n\tsmlal %0, %1, %2, %3"                                   \
                : "=&r"(lo_), "=&r"(hi)                                                                  \
                : "r"(n), "r"(g), "r"(a), "m"(a[(off) / 4]), "m"(a[(off) / 4 + 1]));                     \
    } while (0)
#else
#define MCUC_LN_HI(off, n, g, hi)                                                                        \
    do {                                                                                                 \
        int64_t b_;                                                                                      \
        memcpy(&b_, a + (off) / 4, sizeof b_);                                                           \
        hi = (int32_t)(((int64_t)(n) * (g) + b_) >> 32);                                                 \
    } while (0)
#endif
        /* element i of the step: gamma at word gi of a, its bias at byte offset off */
#define MCUC_LN_STEP(i, gi, off)                                                                         \
    do {                                                                                                 \
        const int32_t d_ = mul_add(x[c + (i)], row.n_u, neg_s);                                          \
        const int32_t n_ = mulhi_round_add(d_, inv_s, d_);                                               \
        int32_t hi_;                                                                                     \
        MCUC_LN_HI(off, n_, a[(gi)], hi_);                                                               \
        y[c + (i)] = ln_sat(hi_ >> t32);                                                                 \
    } while (0)
        /* two channel quads per step */
        for (; c + 8 <= c_n; c += 8) {
            const int32_t *a = affine + 3 * c;
            MCUC_LN_STEP(0, 0, 16);
            MCUC_LN_STEP(1, 1, 24);
            MCUC_LN_STEP(2, 2, 32);
            MCUC_LN_STEP(3, 3, 40);
            MCUC_LN_STEP(4, 12, 64);
            MCUC_LN_STEP(5, 13, 72);
            MCUC_LN_STEP(6, 14, 80);
            MCUC_LN_STEP(7, 15, 88);
        }
        if (c + 4 <= c_n) {
            const int32_t *a = affine + 3 * c;
            MCUC_LN_STEP(0, 0, 16);
            MCUC_LN_STEP(1, 1, 24);
            MCUC_LN_STEP(2, 2, 32);
            MCUC_LN_STEP(3, 3, 40);
            c += 4;
        }
#undef MCUC_LN_STEP
#undef MCUC_LN_HI
        for (; c < c_n; ++c) {
            const int32_t *a = affine + 3 * (c & ~3);
            const int32_t j = c & 3;
            const int32_t d = (int32_t)((uint32_t)x[c] * row.n_u - row.s_u);
            y[c] = ln_out(mulhi_round_add(d, row.inv_s, d), a[j], a + 4 + 2 * j, t32);
        }
#endif
    }
}
