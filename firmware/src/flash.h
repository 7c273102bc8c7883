/* The configuration SPI flash (a W25Q128JV on the OrangeCrab r0.2), spoken to one byte at a time
 * through hal_flash_select()/hal_flash_transfer(): its size and unique ID, reads, and the two slow
 * operations (sector erase, page program) as start-and-poll steps so the main loop never waits for
 * them. Runs natively against firmware/test/flash_model.c. */
#ifndef CRABWATT_FLASH_H
#define CRABWATT_FLASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FLASH_PAGE_BYTES 256u

typedef struct {
    uint32_t size_bytes; /* from the JEDEC ID's capacity byte (2^n) */
    uint64_t unique_id;  /* the 64-bit factory unique ID (command 0x4B), first byte most significant */
} flash_info_t;

/* Wakes the flash and reads its identity; false when it does not answer (no flash, or a JEDEC ID
 * that gives no size). */
bool flash_probe(flash_info_t *info);
void flash_read(uint32_t addr, uint8_t *data, size_t len);
/* Write-in-progress: an erase or program has not finished. */
bool flash_busy(void);
/* Start erasing the 4 KiB sector at addr / programming len bytes (within one page) at addr. False
 * when the flash did not take the write enable (busy, or write-protected). */
bool flash_erase_start(uint32_t addr);
bool flash_program_start(uint32_t addr, const uint8_t *data, size_t len);

#endif
