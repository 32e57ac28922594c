/* startup.c: Cortex-M startup shared by every mcuc firmware board: vector table, reset handler,
 * FPU enable, .data copy / .bss zeroing, (with MCUC_STACK_PAINT) the free stack painted with that word
 * for the runner's high-water measurement, and (with MCUC_SEMIHOSTING) argv from the debugger or QEMU.
 *
 * Only the 16 architectural exception vectors are provided: the generated firmware enables no
 * interrupts, so device IRQ vectors are never taken. Every fault ends in mcuc_fault_handler, which
 * under semihosting reports the fault and exits (QEMU returns a non-zero status) and otherwise
 * stops in a loop where a debugger can inspect it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Symbols defined by boards/common/sections.ld. */
extern uint32_t __data_load__;
extern uint32_t __data_start__;
extern uint32_t __data_end__;
extern uint32_t __bss_start__;
extern uint32_t __bss_end__;
extern uint32_t __stack_top__;

int main(int argc, char **argv);
void mcuc_reset_handler(void);
void mcuc_fault_handler(void);
void __libc_init_array(void);
void _init(void);
void _fini(void);

/* newlib's constructor/destructor walkers call these; crti.o is not linked (-nostartfiles). */
void _init(void)
{
}

void _fini(void)
{
}

#define MCUC_SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

__attribute__((section(".vectors"), used)) const uintptr_t mcuc_vectors[16] = {
    (uintptr_t)&__stack_top__,      /* initial main stack pointer */
    (uintptr_t)mcuc_reset_handler,  /* reset */
    (uintptr_t)mcuc_fault_handler,  /* NMI */
    (uintptr_t)mcuc_fault_handler,  /* HardFault */
    (uintptr_t)mcuc_fault_handler,  /* MemManage */
    (uintptr_t)mcuc_fault_handler,  /* BusFault */
    (uintptr_t)mcuc_fault_handler,  /* UsageFault */
    (uintptr_t)mcuc_fault_handler,  /* SecureFault (v8-M), reserved otherwise */
    0u, 0u, 0u,                     /* reserved */
    (uintptr_t)mcuc_fault_handler,  /* SVCall */
    (uintptr_t)mcuc_fault_handler,  /* DebugMonitor */
    0u,                             /* reserved */
    (uintptr_t)mcuc_fault_handler,  /* PendSV */
    (uintptr_t)mcuc_fault_handler,  /* SysTick */
};

#if defined(MCUC_SEMIHOSTING)
#define MCUC_SYS_WRITE0 0x04
#define MCUC_SYS_GET_CMDLINE 0x15
#define MCUC_SYS_EXIT 0x18
#define MCUC_ADP_STOPPED_RUNTIME_ERROR 0x20023
#define MCUC_MAX_ARGS 8

void initialise_monitor_handles(void);

/* One semihosting call (Arm semihosting spec: op in r0, parameter block in r1, result in r0). */
static int32_t mcuc_semihost(int32_t op, void *arg)
{
    register int32_t r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static char mcuc_cmdline[256];
static char *mcuc_argv[MCUC_MAX_ARGS + 1];

/* Split the semihosting command line (QEMU: -semihosting-config arg=...) into argv in place. */
static int mcuc_semihost_args(void)
{
    struct { char *buf; int32_t len; } block = { mcuc_cmdline, (int32_t)sizeof(mcuc_cmdline) - 1 };
    int argc = 0;
    char *p = mcuc_cmdline;
    if (mcuc_semihost(MCUC_SYS_GET_CMDLINE, &block) != 0) {
        mcuc_argv[0] = NULL;
        return 0;
    }
    mcuc_cmdline[block.len] = '\0';
    while (*p != '\0' && argc < MCUC_MAX_ARGS) {
        while (*p == ' ') {
            *p++ = '\0';
        }
        if (*p == '\0') {
            break;
        }
        mcuc_argv[argc++] = p;
        while (*p != '\0' && *p != ' ') {
            ++p;
        }
    }
    mcuc_argv[argc] = NULL;
    return argc;
}
#endif

void mcuc_fault_handler(void)
{
#if defined(MCUC_SEMIHOSTING)
    static const char message[] = "mcuc: fault exception (hard fault, bus fault or unexpected interrupt)\n";
    uint32_t exit_block[2] = { MCUC_ADP_STOPPED_RUNTIME_ERROR, 1u };
    mcuc_semihost(MCUC_SYS_WRITE0, (void *)message);
    mcuc_semihost(MCUC_SYS_EXIT, exit_block);
#endif
    for (;;) {
    }
}

__attribute__((noreturn)) void mcuc_reset_handler(void)
{
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* Full access to CP10/CP11 (FPU and MVE) before any floating-point or vector instruction. */
    MCUC_SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
#if defined(MCUC_STACK_PAINT)
    {
        /* Paint the free stack below this frame; the runner later finds the lowest overwritten word. */
        extern uint32_t __stack_limit__;
        volatile uint32_t *p = &__stack_limit__;
        uint32_t *sp;
        __asm__ volatile("mov %0, sp" : "=r"(sp));
        while (p < sp) {
            *p++ = MCUC_STACK_PAINT;
        }
    }
#endif
    memcpy(&__data_start__, &__data_load__, (size_t)((char *)&__data_end__ - (char *)&__data_start__));
    memset(&__bss_start__, 0, (size_t)((char *)&__bss_end__ - (char *)&__bss_start__));
    __libc_init_array();
#if defined(MCUC_SEMIHOSTING)
    initialise_monitor_handles();
    int argc = mcuc_semihost_args();
    exit(main(argc, mcuc_argv));
#else
    static char *no_args[1] = { NULL };
    exit(main(0, no_args));
#endif
}
