/* qemu_insn_plugin.c: QEMU TCG plugin that counts executed guest instructions and records the count
 * each time the firmware calls its profile mark function (mcuc_profile_mark).
 *
 * Arguments (qemu-system-arm -plugin PATH,mark=ADDR,mark_end=ADDR,out=FILE):
 *   mark, mark_end  address range [mark, mark_end) of mcuc_profile_mark (Thumb bit cleared); the
 *                   instructions of that function are not counted, so a mark costs only its call
 *                   site in the caller
 *   out             file written at exit: "instructions N" (whole run), then "mark C" per mark call
 *                   with C the instructions executed before that call
 *
 * Counting is an inline 64-bit add in front of every translated instruction (single vCPU, no
 * interrupts in the firmware): the result depends only on the ELF and its input, not on the host.
 *
 * Only the subset of QEMU's plugin API (include/qemu/qemu-plugin.h, API version 1, QEMU >= 4.2)
 * that this file calls is declared here, so building it needs no QEMU headers.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MCUC_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op,
                                                void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

MCUC_PLUGIN_EXPORT int qemu_plugin_version = 1;
MCUC_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv);

static uint64_t insn_count;
static uint64_t mark_lo;
static uint64_t mark_hi;
static const char *out_path;
static uint64_t *marks;
static size_t n_marks;
static size_t cap_marks;
static bool out_of_memory;

static void on_mark(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    if (n_marks == cap_marks) {
        size_t cap = cap_marks ? 2 * cap_marks : 4096;
        uint64_t *grown = realloc(marks, cap * sizeof(*marks));
        if (grown == NULL) {
            out_of_memory = true;
            return;
        }
        marks = grown;
        cap_marks = cap;
    }
    marks[n_marks++] = insn_count;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t i;
    size_t n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    for (i = 0; i < n; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t addr = qemu_plugin_insn_vaddr(insn);
        if (addr == mark_lo) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        if (addr >= mark_lo && addr < mark_hi) {
            continue;
        }
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &insn_count, 1);
    }
}

static void write_counts(qemu_plugin_id_t id, void *userdata)
{
    size_t i;
    FILE *f = fopen(out_path, "w");
    (void)id;
    (void)userdata;
    if (f == NULL) {
        fprintf(stderr, "mcuc insn plugin: cannot write %s\n", out_path);
        return;
    }
    fprintf(f, "instructions %" PRIu64 "\n", insn_count);
    if (out_of_memory) {
        fprintf(f, "error out of memory recording marks\n");
    }
    for (i = 0; i < n_marks; ++i) {
        fprintf(f, "mark %" PRIu64 "\n", marks[i]);
    }
    fclose(f);
}

int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    int i;
    if (info->version.min > 1 || info->version.cur < 1) {
        fprintf(stderr, "mcuc insn plugin: QEMU plugin API %d..%d does not include version 1\n",
                info->version.min, info->version.cur);
        return -1;
    }
    for (i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "mark=", 5) == 0) {
            mark_lo = strtoull(argv[i] + 5, NULL, 0);
        } else if (strncmp(argv[i], "mark_end=", 9) == 0) {
            mark_hi = strtoull(argv[i] + 9, NULL, 0);
        } else if (strncmp(argv[i], "out=", 4) == 0) {
            out_path = argv[i] + 4;
        } else {
            fprintf(stderr, "mcuc insn plugin: unknown argument '%s'\n", argv[i]);
            return -1;
        }
    }
    if (out_path == NULL) {
        fprintf(stderr, "mcuc insn plugin: needs out=FILE\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, write_counts, NULL);
    return 0;
}
