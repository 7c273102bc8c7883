#include "flash_model.h"

#include <string.h>

enum {
    CMD_PAGE_PROGRAM = 0x02,
    CMD_READ = 0x03,
    CMD_READ_STATUS = 0x05,
    CMD_WRITE_ENABLE = 0x06,
    CMD_SECTOR_ERASE = 0x20,
    CMD_UNIQUE_ID = 0x4B,
    CMD_JEDEC_ID = 0x9F,
    CMD_RELEASE_POWER_DOWN = 0xAB,
};

static uint8_t log2_size(uint32_t size)
{
    uint8_t n = 0;
    while ((1u << n) < size) {
        n++;
    }
    return n;
}

void flash_model_init(flash_model_t *f, uint8_t *mem, uint32_t size_bytes, uint64_t unique_id)
{
    memset(f, 0, sizeof *f);
    f->mem = mem;
    f->size_bytes = size_bytes;
    f->unique_id = unique_id;
    memset(mem, 0xFF, size_bytes);
}

static bool has_address(uint8_t cmd)
{
    return cmd == CMD_READ || cmd == CMD_PAGE_PROGRAM || cmd == CMD_SECTOR_ERASE;
}

void flash_model_select(flash_model_t *f, bool selected)
{
    if (f->selected && !selected && f->count >= 1) {
        /* Program and erase start when CS# goes high after a whole command (W25Q128JV 8.2.14, 8.2.16). */
        if (f->cmd == CMD_PAGE_PROGRAM && f->count >= 4 && f->busy_us == 0) {
            if (f->wel) {
                uint32_t page = f->addr & ~0xFFu & (f->size_bytes - 1u);
                for (uint32_t k = 0; k < f->page_len; k++) {
                    uint32_t at = page | ((f->addr + k) & 0xFFu);
                    f->mem[at] &= f->page[k];
                }
                f->programs++;
                f->busy_us = FLASH_MODEL_PROGRAM_US;
            } else {
                f->ignored++;
            }
            f->wel = false;
        } else if (f->cmd == CMD_SECTOR_ERASE && f->count == 4 && f->busy_us == 0) {
            if (f->wel) {
                uint32_t sector = f->addr & ~0xFFFu & (f->size_bytes - 1u);
                memset(f->mem + sector, 0xFF, 0x1000);
                f->erases++;
                f->busy_us = FLASH_MODEL_ERASE_US;
            } else {
                f->ignored++;
            }
            f->wel = false;
        } else if (f->cmd == CMD_WRITE_ENABLE && f->busy_us == 0) {
            f->wel = true;
        }
    }
    f->selected = selected;
    f->count = 0;
    f->page_len = 0;
}

uint8_t flash_model_out(const flash_model_t *f)
{
    if (f->absent || !f->selected || f->count == 0) {
        return 0xFF;
    }
    uint32_t n = f->count; /* index of this byte in the command */
    if (f->cmd == CMD_READ_STATUS) {
        return (uint8_t)((f->busy_us ? 0x01u : 0u) | (f->wel ? 0x02u : 0u));
    }
    if (f->busy_us) {
        return 0xFF;
    }
    switch (f->cmd) {
    case CMD_JEDEC_ID:
        return n == 1 ? FLASH_MODEL_JEDEC_MAKER : n == 2 ? FLASH_MODEL_JEDEC_TYPE : n == 3 ? log2_size(f->size_bytes) : 0xFF;
    case CMD_UNIQUE_ID:
        return n >= 5 && n < 13 ? (uint8_t)(f->unique_id >> (8 * (12 - n))) : 0xFF;
    case CMD_READ:
        return n >= 4 ? f->mem[(f->addr + n - 4) & (f->size_bytes - 1u)] : 0xFF;
    default:
        return 0xFF;
    }
}

void flash_model_in(flash_model_t *f, uint8_t byte)
{
    if (!f->selected) {
        return;
    }
    if (f->count == 0) {
        f->cmd = byte;
    } else if (has_address(f->cmd) && f->count <= 3) {
        f->addr = (f->addr << 8 | byte) & 0xFFFFFFu;
    } else if (f->cmd == CMD_PAGE_PROGRAM && f->page_len < sizeof f->page) {
        f->page[f->page_len++] = byte;
    }
    f->count++;
}

void flash_model_elapse_us(flash_model_t *f, uint32_t us)
{
    f->busy_us = us >= f->busy_us ? 0 : f->busy_us - us;
}
