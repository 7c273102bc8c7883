/* Device entry: peripherals, watchdog, boot id, then the application loop forever. */
#include <stdint.h>

#include "app.h"
#include "crabwatt_csr.h"
#include "hal.h"

/* Longest a loop iteration may take before the watchdog resets the CPU. An iteration normally takes
 * tens of microseconds; the slowest (a full capture chunk) 1.4 ms at 48 MHz (firmware/README.md). */
#define WATCHDOG_TIMEOUT_MS 250u
#define BOOT_MAGIC 0xC0B0C0B0u

/* Counts boots between power cycles. Block RAM keeps its contents over a watchdog reset, so this
 * makes two consecutive boot ids differ even where the hardware offers no entropy (the RTL twin). */
static struct {
    uint32_t magic;
    uint32_t boots;
} boot_record __attribute__((section(".noinit")));

static app_t app;

/* murmur3's finaliser: spreads every input bit over the whole word. */
static uint32_t mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x85EBCA6Bu;
    x ^= x >> 13;
    x *= 0xC2B2AE35u;
    x ^= x >> 16;
    return x;
}

static uint32_t make_boot_id(void)
{
    if (boot_record.magic != BOOT_MAGIC) {
        boot_record.magic = BOOT_MAGIC;
        boot_record.boots = 0;
    }
    boot_record.boots++;
    uint32_t id = mix32(hal_boot_entropy() ^ mix32(boot_record.boots));
    return id != 0 ? id : 1u; /* 0 reads as "no boot yet" to a host */
}

void trap_handler(uint32_t mcause, uint32_t mepc) __attribute__((noreturn));
void trap_handler(uint32_t mcause, uint32_t mepc)
{
    (void)mcause;
    (void)mepc;
    /* The quickest way back to a working device: let the watchdog reset the CPU now, also when the
     * trap came before main() started it. The host sees a new boot_id and the reset count. */
    CW_SYS_WDT_TIMEOUT_MS = 1u;
    for (;;) {
    }
}

int main(void)
{
    hal_init();
    hal_watchdog_start(WATCHDOG_TIMEOUT_MS);
    app_init(&app, make_boot_id());
    for (;;) {
        app_poll(&app);
    }
}
