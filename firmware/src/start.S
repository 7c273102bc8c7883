/* Reset entry for VexRiscv: set up gp and sp, route traps, copy .data, clear .bss, run main. */
    /* mtvec, mcause and mepc are Zicsr instructions; VexRiscv has them, the rv32im multilib name does not. */
    .option arch, +zicsr

    .section .text.start, "ax"
    .global _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    la sp, __stack_top
    la t0, trap_entry
    csrw mtvec, t0

    la a0, __data_start
    la a1, __data_end
    la a2, __data_load
1:  bgeu a0, a1, 2f
    lw t0, 0(a2)
    sw t0, 0(a0)
    addi a0, a0, 4
    addi a2, a2, 4
    j 1b
2:
    la a0, __bss_start
    la a1, __bss_end
3:  bgeu a0, a1, 4f
    sw zero, 0(a0)
    addi a0, a0, 4
    j 3b
4:
    call main
5:  j 5b

/* Any exception (the firmware enables no interrupt): the stack may be what broke, so take a fresh
 * one before entering C. trap_handler() never returns. */
    .section .text.trap, "ax"
    .balign 4
trap_entry:
    la sp, __stack_top
    csrr a0, mcause
    csrr a1, mepc
    j trap_handler
