/* A model of a W25Q128JV-like SPI NOR flash at the byte level, shared by the native tests' fake HAL
 * and the RTL twin's harness (hdl/twin/harness.cpp, which drives it bit by bit from the SPI pins).
 * It knows what the firmware uses: JEDEC ID (0x9F), unique ID (0x4B: 4 dummy bytes, 8 ID bytes),
 * READ (0x03), WRITE ENABLE (0x06), READ STATUS 1 (0x05: bit 0 busy, bit 1 write enable latch), PAGE
 * PROGRAM (0x02: bits only go 1 -> 0, the address wraps within its 256-byte page), SECTOR ERASE
 * (0x20: 4 KiB to 0xFF) and RELEASE POWER-DOWN (0xAB). As the part does, it ignores every command
 * but READ STATUS while busy, and a program or erase without the write enable latch. Written to
 * compile as C11 and C++17. */
#ifndef CRABWATT_FLASH_MODEL_H
#define CRABWATT_FLASH_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FLASH_MODEL_JEDEC_MAKER 0xEFu /* Winbond */
#define FLASH_MODEL_JEDEC_TYPE 0x40u
#define FLASH_MODEL_ERASE_US 45000u   /* typical 4 KiB sector erase */
#define FLASH_MODEL_PROGRAM_US 700u   /* typical page program */

typedef struct {
    uint8_t *mem;         /* size_bytes, owned by the caller */
    uint32_t size_bytes;  /* a power of two */
    uint64_t unique_id;
    bool absent;          /* nobody home: every byte reads 0xFF */
    /* the command in progress */
    bool selected;
    uint8_t cmd;
    uint32_t count;       /* bytes received since selection */
    uint32_t addr;
    uint8_t page[256];    /* a page program's data, written at deselection */
    uint32_t page_len;
    /* state */
    bool wel;
    uint32_t busy_us;
    /* what happened, for tests */
    uint32_t erases, programs, ignored;
} flash_model_t;

/* Blank (0xFF) memory, idle. */
void flash_model_init(flash_model_t *f, uint8_t *mem, uint32_t size_bytes, uint64_t unique_id);
void flash_model_select(flash_model_t *f, bool selected);
/* The byte the flash drives during the next byte slot (depends only on what came before it). */
uint8_t flash_model_out(const flash_model_t *f);
/* The byte the host drove during that slot. */
void flash_model_in(flash_model_t *f, uint8_t byte);
/* Time passes: an erase or program completes. */
void flash_model_elapse_us(flash_model_t *f, uint32_t us);

#ifdef __cplusplus
}
#endif

#endif
