#include "calstore.h"

#include <string.h>

#include "crabwatt_csr.h"
#include "crabwatt_protocol.h"
#include "crc32c.h"
#include "flash.h"

enum { STEP_IDLE, STEP_ERASE, STEP_ERASING, STEP_PROGRAMMING };

/* The DSP's limit on the phase (docs/dsp.md); a record beyond it is not ours. */
#define PHASE_LIMIT (1023 * 65536)

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }

void calstore_encode(uint8_t out[CALSTORE_RECORD_BYTES], uint32_t generation, const cal_values_t *v)
{
    put32(out, CALSTORE_MAGIC);
    put16(out + 4, CALSTORE_VERSION);
    put16(out + 6, CALSTORE_RECORD_BYTES);
    put32(out + 8, generation);
    put16(out + 12, (uint16_t)v->v_offset);
    put16(out + 14, (uint16_t)v->i_offset);
    put16(out + 16, v->v_gain);
    put16(out + 18, v->i_gain);
    put32(out + 20, (uint32_t)v->phase);
    put32(out + 24, crc32c(out, 24));
}

record_check_t calstore_decode(const uint8_t in[CALSTORE_RECORD_BYTES], uint32_t *generation, cal_values_t *v)
{
    bool blank = true;
    for (unsigned k = 0; k < CALSTORE_RECORD_BYTES; k++) {
        blank = blank && in[k] == 0xFF;
    }
    if (blank) {
        return RECORD_BLANK;
    }
    /* A record of another version is refused even with a good CRC: its fields may mean other things. */
    if (get32(in) != CALSTORE_MAGIC || get16(in + 4) != CALSTORE_VERSION || get16(in + 6) != CALSTORE_RECORD_BYTES ||
        get32(in + 24) != crc32c(in, 24)) {
        return RECORD_BAD;
    }
    cal_values_t r = {
        .v_offset = (int16_t)get16(in + 12),
        .i_offset = (int16_t)get16(in + 14),
        .v_gain = get16(in + 16),
        .i_gain = get16(in + 18),
        .phase = (int32_t)get32(in + 20),
    };
    if (r.phase <= -PHASE_LIMIT || r.phase >= PHASE_LIMIT) {
        return RECORD_BAD;
    }
    *generation = get32(in + 8);
    *v = r;
    return RECORD_VALID;
}

static uint32_t slot_addr(const calstore_t *s, unsigned slot) { return s->area + slot * CW_FLASH_SECTOR_BYTES; }

bool calstore_load(calstore_t *s, uint32_t flash_bytes, cal_values_t *values)
{
    memset(s, 0, sizeof *s);
    if (flash_bytes < 2u * CW_FLASH_USER_BYTES) {
        s->source = CW_CALIBRATION_SOURCE_NO_FLASH;
        return false;
    }
    s->area = flash_bytes - CW_FLASH_USER_BYTES;
    bool bad = false;
    for (unsigned slot = 0; slot < 2; slot++) {
        uint8_t bytes[CALSTORE_RECORD_BYTES];
        uint32_t generation;
        cal_values_t v;
        flash_read(slot_addr(s, slot), bytes, sizeof bytes);
        switch (calstore_decode(bytes, &generation, &v)) {
        case RECORD_VALID:
            /* The newer of two, wrap-around included. */
            if (!s->have_record || (int32_t)(generation - s->generation) > 0) {
                s->have_record = true;
                s->slot = (uint8_t)slot;
                s->generation = generation;
                s->saved = v;
            }
            break;
        case RECORD_BAD:
            bad = true;
            break;
        case RECORD_BLANK:
            break;
        }
    }
    /* A bad sector next to a valid one is a save that was cut short: the valid record stands. */
    if (s->have_record) {
        s->source = CW_CALIBRATION_SOURCE_FLASH;
        *values = s->saved;
        return true;
    }
    s->source = bad ? CW_CALIBRATION_SOURCE_BAD_RECORD : CW_CALIBRATION_SOURCE_DEFAULTS;
    return false;
}

void calstore_save(calstore_t *s, const cal_values_t *values, uint32_t now_ms)
{
    if (s->area == 0) {
        s->source = CW_CALIBRATION_SOURCE_HOST_UNSAVED;
        return;
    }
    if (s->have_record && memcmp(&s->saved, values, sizeof *values) == 0 && s->step == STEP_IDLE) {
        s->pending = false;
        s->source = CW_CALIBRATION_SOURCE_HOST_SAVED;
        return;
    }
    /* A save under way finishes first (its sector is half written); this one follows it. */
    s->wanted = *values;
    s->pending = true;
    s->source = CW_CALIBRATION_SOURCE_HOST_UNSAVED;
    if (s->step == STEP_IDLE) {
        s->step = STEP_ERASE;
        s->step_ms = now_ms;
    }
}

/* Whether the flash is still busy, asked at most once per millisecond (see calstore_poll). */
static bool still_busy(calstore_t *s, uint32_t now_ms)
{
    if (now_ms == s->polled_ms) {
        return true;
    }
    s->polled_ms = now_ms;
    return flash_busy();
}

static void give_up(calstore_t *s)
{
    s->failures++;
    s->pending = false;
    s->step = STEP_IDLE;
}

void calstore_poll(calstore_t *s, uint32_t now_ms)
{
    unsigned target = s->have_record ? s->slot ^ 1u : 0u;
    switch (s->step) {
    case STEP_IDLE:
        return;
    case STEP_ERASE:
        if (!flash_erase_start(slot_addr(s, target))) {
            if (now_ms - s->step_ms >= CALSTORE_STEP_LIMIT_MS) {
                give_up(s);
            }
            return;
        }
        s->step = STEP_ERASING;
        s->step_ms = now_ms;
        s->polled_ms = now_ms;
        return;
    case STEP_ERASING: {
        if (still_busy(s, now_ms)) {
            if (now_ms - s->step_ms >= CALSTORE_STEP_LIMIT_MS) {
                give_up(s);
            }
            return;
        }
        uint8_t bytes[CALSTORE_RECORD_BYTES];
        s->writing = s->wanted;
        calstore_encode(bytes, s->generation + 1u, &s->writing);
        if (!flash_program_start(slot_addr(s, target), bytes, sizeof bytes)) {
            give_up(s);
            return;
        }
        s->step = STEP_PROGRAMMING;
        s->step_ms = now_ms;
        s->polled_ms = now_ms;
        return;
    }
    case STEP_PROGRAMMING: {
        if (still_busy(s, now_ms)) {
            if (now_ms - s->step_ms >= CALSTORE_STEP_LIMIT_MS) {
                give_up(s);
            }
            return;
        }
        uint8_t want[CALSTORE_RECORD_BYTES], got[CALSTORE_RECORD_BYTES];
        calstore_encode(want, s->generation + 1u, &s->writing);
        flash_read(slot_addr(s, target), got, sizeof got);
        s->step = STEP_IDLE;
        if (memcmp(want, got, sizeof want) != 0) {
            give_up(s);
            return;
        }
        s->have_record = true;
        s->slot = (uint8_t)target;
        s->generation++;
        s->saved = s->writing;
        /* Another calibration came while this one was being written: save that one too. */
        if (memcmp(&s->saved, &s->wanted, sizeof s->wanted) == 0) {
            s->pending = false;
            s->source = CW_CALIBRATION_SOURCE_HOST_SAVED;
        } else {
            s->step = STEP_ERASE;
            s->step_ms = now_ms;
        }
        return;
    }
    default:
        give_up(s);
        return;
    }
}

bool calstore_idle(const calstore_t *s) { return s->step == STEP_IDLE; }
uint8_t calstore_source(const calstore_t *s) { return s->source; }
