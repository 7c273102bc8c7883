/* SoC self-test: exercises the bus, RAM, the multiplier, .data initialisation and the UART, and
 * answers over the UART so the Verilator harness and hdl/tests/test_soc_twin.py can check it.
 * Protocol: prints "selftest: <result>\n" lines, then echoes every received byte, upper-cased. */
#include <stdint.h>
#include "crabwatt_csr.h"

static volatile uint32_t counter = 12345;   /* in .data: checks the start-up copy from ROM */
static uint32_t zeroed[8];                  /* in .bss */

static void put(char c) {
    while (CW_UART_TX_FREE == 0) {}
    CW_UART_TX = (uint8_t)c;
}

static void puts_(const char *s) { while (*s) put(*s++); }

static void puthex(uint32_t v) {
    for (int i = 28; i >= 0; i -= 4) put("0123456789abcdef"[(v >> i) & 0xF]);
}

static int check(const char *name, uint32_t got, uint32_t want) {
    puts_("selftest: "); puts_(name); puts_(got == want ? " ok " : " FAIL ");
    puthex(got); put('\n');
    return got == want;
}

int main(void) {
    int ok = 1;
    CW_SYS_SCRATCH = 0xA5A55A5Au;
    ok &= check("scratch", CW_SYS_SCRATCH, 0xA5A55A5Au);
    ok &= check("data", counter, 12345);
    uint32_t z = 0;
    for (int i = 0; i < 8; i++) z |= zeroed[i];
    ok &= check("bss", z, 0);
    volatile uint32_t a = 123457, b = 987651;
    ok &= check("mul", a * b, 123457u * 987651u);
    ok &= check("div", b / 7u, 987651u / 7u);
    ok &= check("version", CW_IDENT_GATEWARE_VERSION, CW_GATEWARE_VERSION);
    ok &= check("v_gain", CW_DSP_V_GAIN, 16384);
    CW_DSP_PHASE = 0xFFFF0000u;     /* signed register: reads back sign-extended */
    ok &= check("phase", CW_DSP_PHASE, 0xFFFF0000u);
    uint32_t t0 = CW_SYS_CYCLES_LO;
    ok &= check("cycles", CW_SYS_CYCLES_LO - t0 > 0, 1);
    puts_(ok ? "selftest: PASS\n" : "selftest: FAILED\n");
    for (;;) {
        uint32_t rx = CW_UART_RX;
        if (rx & CW_UART_RX_VALID_MASK) {
            CW_UART_RX_POP = 1;
            char c = (char)(rx & 0xFF);
            put(c >= 'a' && c <= 'z' ? c - 32 : c);
        }
    }
}
