#include "flash.h"

#include "hal.h"

enum {
    CMD_READ = 0x03,
    CMD_PAGE_PROGRAM = 0x02,
    CMD_READ_STATUS = 0x05,
    CMD_WRITE_ENABLE = 0x06,
    CMD_SECTOR_ERASE = 0x20,
    CMD_UNIQUE_ID = 0x4B,
    CMD_JEDEC_ID = 0x9F,
    CMD_RELEASE_POWER_DOWN = 0xAB,
};
#define STATUS_BUSY 0x01u
#define STATUS_WEL 0x02u
/* foboot or an earlier design may have left the flash in deep power-down: it then needs 3 us after
 * the release (tRES1) before it answers, more than a few JEDEC reads take at any clock we run. */
#define PROBE_TRIES 8u

static void command(uint8_t cmd, uint32_t addr, bool with_addr)
{
    hal_flash_select(true);
    hal_flash_transfer(cmd);
    if (with_addr) {
        hal_flash_transfer((uint8_t)(addr >> 16));
        hal_flash_transfer((uint8_t)(addr >> 8));
        hal_flash_transfer((uint8_t)addr);
    }
}

static uint8_t read_status(void)
{
    command(CMD_READ_STATUS, 0, false);
    uint8_t status = hal_flash_transfer(0xFF);
    hal_flash_select(false);
    return status;
}

bool flash_probe(flash_info_t *info)
{
    command(CMD_RELEASE_POWER_DOWN, 0, false);
    hal_flash_select(false);
    uint8_t maker = 0, capacity = 0;
    for (unsigned k = 0; k < PROBE_TRIES; k++) {
        command(CMD_JEDEC_ID, 0, false);
        maker = hal_flash_transfer(0xFF);
        hal_flash_transfer(0xFF); /* memory type */
        capacity = hal_flash_transfer(0xFF);
        hal_flash_select(false);
        if (maker != 0x00 && maker != 0xFF) {
            break;
        }
    }
    /* 2^capacity bytes: 0x18 is 16 MiB; from 64 KiB to 2 GiB is plausible. */
    if (maker == 0x00 || maker == 0xFF || capacity < 16 || capacity > 31) {
        return false;
    }
    info->size_bytes = 1u << capacity;
    command(CMD_UNIQUE_ID, 0, false);
    for (unsigned k = 0; k < 4; k++) {
        hal_flash_transfer(0xFF); /* dummy bytes */
    }
    uint64_t id = 0;
    for (unsigned k = 0; k < 8; k++) {
        id = id << 8 | hal_flash_transfer(0xFF);
    }
    hal_flash_select(false);
    info->unique_id = id;
    return true;
}

void flash_read(uint32_t addr, uint8_t *data, size_t len)
{
    command(CMD_READ, addr, true);
    for (size_t k = 0; k < len; k++) {
        data[k] = hal_flash_transfer(0xFF);
    }
    hal_flash_select(false);
}

bool flash_busy(void) { return (read_status() & STATUS_BUSY) != 0; }

static bool write_enable(void)
{
    command(CMD_WRITE_ENABLE, 0, false);
    hal_flash_select(false);
    return (read_status() & (STATUS_WEL | STATUS_BUSY)) == STATUS_WEL;
}

bool flash_erase_start(uint32_t addr)
{
    if (!write_enable()) {
        return false;
    }
    command(CMD_SECTOR_ERASE, addr, true);
    hal_flash_select(false);
    return true;
}

bool flash_program_start(uint32_t addr, const uint8_t *data, size_t len)
{
    if (!write_enable()) {
        return false;
    }
    command(CMD_PAGE_PROGRAM, addr, true);
    for (size_t k = 0; k < len; k++) {
        hal_flash_transfer(data[k]);
    }
    hal_flash_select(false);
    return true;
}
