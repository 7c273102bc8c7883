/* The calibration record in the configuration flash's user area (the last CW_FLASH_USER_BYTES of
 * the flash: two 4 KiB sectors). A record is 28 bytes, little-endian:
 *
 *   magic u32 "CWCL", version u16 (1), length u16 (28), generation u32,
 *   v_offset i16, i_offset i16, v_gain u16, i_gain u16, phase i32, crc32c u32 (of the 24 bytes before)
 *
 * Saves alternate between the two sectors with a growing generation, so a save cut short (power
 * lost mid-erase) leaves the previous record; at boot the valid record with the newest generation
 * wins. A save is a sequence of steps (erase, wait, program, wait, read back) done one per poll:
 * an erase takes up to 400 ms, longer than the watchdog allows the loop to stop for. */
#ifndef CRABWATT_CALSTORE_H
#define CRABWATT_CALSTORE_H

#include <stdbool.h>
#include <stdint.h>

#define CALSTORE_MAGIC 0x4C435743u /* "CWCL" */
#define CALSTORE_VERSION 1u
#define CALSTORE_RECORD_BYTES 28u
/* Past this an erase or program that still says busy is given up (W25Q128JV: sector erase 400 ms
 * at most, page program 3 ms) and the save counts as failed. */
#define CALSTORE_STEP_LIMIT_MS 1000u

typedef struct {
    int16_t v_offset;
    int16_t i_offset;
    uint16_t v_gain;
    uint16_t i_gain;
    int32_t phase;
} cal_values_t;

typedef struct {
    uint32_t area;       /* address of the user area's first sector; 0: no flash */
    bool have_record;    /* `saved` is what the flash holds, in sector `slot` */
    uint8_t slot;
    uint32_t generation;
    cal_values_t saved;
    bool pending;        /* `wanted` is to be saved */
    cal_values_t wanted;
    cal_values_t writing; /* what the save under way writes */
    uint8_t step;
    uint32_t step_ms;    /* when the current step began */
    uint32_t polled_ms;  /* when the flash was last asked whether it is still busy */
    uint8_t source;      /* CW_CALIBRATION_SOURCE_* of the calibration in effect */
    uint32_t failures;   /* saves given up */
} calstore_t;

/* Reads the user area of a flash of flash_bytes (0: none). Returns true and fills `values` when a
 * valid record was found; source() then says FLASH, else DEFAULTS, BAD_RECORD or NO_FLASH. */
bool calstore_load(calstore_t *s, uint32_t flash_bytes, cal_values_t *values);
/* The host set `values` (already applied): save them unless the flash holds them already. */
void calstore_save(calstore_t *s, const cal_values_t *values, uint32_t now_ms);
/* One step of a save under way; returns at once. While the flash erases or programs it is asked at
 * most once a millisecond: the loop passes far more often, and each status read is two SPI bytes. */
void calstore_poll(calstore_t *s, uint32_t now_ms);
/* No save under way (a reboot waits for this). */
bool calstore_idle(const calstore_t *s);
uint8_t calstore_source(const calstore_t *s);

/* The record's bytes, and whether bytes hold a valid one (exposed for the tests). */
void calstore_encode(uint8_t out[CALSTORE_RECORD_BYTES], uint32_t generation, const cal_values_t *v);
typedef enum { RECORD_VALID, RECORD_BLANK, RECORD_BAD } record_check_t;
record_check_t calstore_decode(const uint8_t in[CALSTORE_RECORD_BYTES], uint32_t *generation, cal_values_t *v);

#endif
