/* The firmware's framing against test/vectors/frames/frames.json, which the TypeScript codec wrote
 * (test/firmware/frame-vectors.ts): device frames built here from the vector's fields must be the
 * vector's bytes exactly; every vector must decode here to its fields; damaged chunks must be
 * rejected for the same reason the TypeScript decoder gives. Field offsets come from the generated
 * crabwatt_protocol.h, so this also checks the header against the codec. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "frame.h"

typedef struct {
    const char *name;
    size_t offset;
    size_t size;
} field_t;

typedef struct {
    const char *name;
    uint8_t type;
    size_t body_bytes;
    const field_t *fields;
    size_t field_count;
    size_t pair_value_bytes; /* bytes of each of v and i in a tail record (0: no tail) */
} frame_t;

#define F(FRAME, FIELD, name) {name, CW_##FRAME##_##FIELD##_OFFSET, CW_##FRAME##_##FIELD##_SIZE}
#define FRAME(name, FRAME, table) \
    {name, CW_TYPE_##FRAME, CW_##FRAME##_BODY_BYTES, table, sizeof table / sizeof table[0], 0}
#define FRAME_WITH_PAIRS(name, FRAME, table, value_bytes) \
    {name, CW_TYPE_##FRAME, CW_##FRAME##_BODY_BYTES, table, sizeof table / sizeof table[0], value_bytes}

static const field_t identify_fields[] = {
    F(IDENTIFY, DEVICE_ID, "device_id"),
    F(IDENTIFY, BOOT_ID, "boot_id"),
    F(IDENTIFY, BOARD, "board"),
    F(IDENTIFY, ADC_PART, "adc_part"),
    F(IDENTIFY, PROTOCOL_VERSION, "protocol_version"),
    F(IDENTIFY, GATEWARE_VERSION, "gateware_version"),
    F(IDENTIFY, FIRMWARE_VERSION, "firmware_version"),
    F(IDENTIFY, SAMPLE_RATE_NUM, "sample_rate_num"),
    F(IDENTIFY, SAMPLE_RATE_DEN, "sample_rate_den"),
    F(IDENTIFY, CAPTURE_DEPTH, "capture_depth"),
    F(IDENTIFY, CONFIG_SEQ, "config_seq"),
    F(IDENTIFY, MODE, "mode"),
    F(IDENTIFY, CYCLES, "cycles"),
    F(IDENTIFY, FIXED_SAMPLES, "fixed_samples"),
    F(IDENTIFY, MAX_SAMPLES, "max_samples"),
    F(IDENTIFY, ZC_HYSTERESIS, "zc_hysteresis"),
    F(IDENTIFY, V_OFFSET, "v_offset"),
    F(IDENTIFY, I_OFFSET, "i_offset"),
    F(IDENTIFY, V_GAIN, "v_gain"),
    F(IDENTIFY, I_GAIN, "i_gain"),
    F(IDENTIFY, PHASE, "phase"),
    F(IDENTIFY, CALIBRATION_SOURCE, "calibration_source"),
};
static const field_t window_fields[] = {
    F(WINDOW, END_INDEX, "end_index"),
    F(WINDOW, SAMPLES, "samples"),
    F(WINDOW, SUM_V, "sum_v"),
    F(WINDOW, SUM_I, "sum_i"),
    F(WINDOW, SUM_VV, "sum_vv"),
    F(WINDOW, SUM_II, "sum_ii"),
    F(WINDOW, SUM_VI, "sum_vi"),
    F(WINDOW, MIN_V, "min_v"),
    F(WINDOW, MAX_V, "max_v"),
    F(WINDOW, MIN_I, "min_i"),
    F(WINDOW, MAX_I, "max_i"),
    F(WINDOW, ZC_COUNT, "zc_count"),
    F(WINDOW, ZC_FIRST_OFFSET, "zc_first_offset"),
    F(WINDOW, ZC_FIRST_PREV, "zc_first_prev"),
    F(WINDOW, ZC_FIRST_CUR, "zc_first_cur"),
    F(WINDOW, ZC_LAST_OFFSET, "zc_last_offset"),
    F(WINDOW, ZC_LAST_PREV, "zc_last_prev"),
    F(WINDOW, ZC_LAST_CUR, "zc_last_cur"),
    F(WINDOW, FLAGS, "flags"),
    F(WINDOW, CONFIG_SEQ, "config_seq"),
};
static const field_t energy_fields[] = {
    F(ENERGY, END_INDEX, "end_index"),
    F(ENERGY, ENERGY, "energy"),
    F(ENERGY, BOOT_ID, "boot_id"),
};
static const field_t capture_chunk_fields[] = {
    F(CAPTURE_CHUNK, CAPTURE_ID, "capture_id"),
    F(CAPTURE_CHUNK, CHUNK_INDEX, "chunk_index"),
    F(CAPTURE_CHUNK, CHUNK_COUNT, "chunk_count"),
    F(CAPTURE_CHUNK, FIRST_INDEX, "first_index"),
    F(CAPTURE_CHUNK, TRIGGER_INDEX, "trigger_index"),
    F(CAPTURE_CHUNK, CONFIG_SEQ, "config_seq"),
    F(CAPTURE_CHUNK, DECIMATION, "decimation"),
};
static const field_t status_fields[] = {
    F(STATUS, BOOT_ID, "boot_id"),
    F(STATUS, UPTIME_MS, "uptime_ms"),
    F(STATUS, FRAMES_DROPPED, "frames_dropped"),
    F(STATUS, FIFO_OVERFLOWS, "fifo_overflows"),
    F(STATUS, SAMPLES_DROPPED, "samples_dropped"),
    F(STATUS, ADC_ERRORS, "adc_errors"),
    F(STATUS, WATCHDOG_RESETS, "watchdog_resets"),
    F(STATUS, CONFIG_SEQ, "config_seq"),
    F(STATUS, LINK_STALLS, "link_stalls"),
    F(STATUS, UART_RX_OVERRUNS, "uart_rx_overruns"),
    F(STATUS, WAVEFORM_DROPS, "waveform_drops"),
};
static const field_t waveform_fields[] = {
    F(WAVEFORM, FIRST_INDEX, "first_index"),
};
static const field_t ack_fields[] = {
    F(ACK, COMMAND_SEQ, "command_seq"),
    F(ACK, COMMAND_TYPE, "command_type"),
    F(ACK, STATUS, "status"),
    F(ACK, VALUE, "value"),
};
static const field_t cmd_configure_fields[] = {
    F(CMD_CONFIGURE, MODE, "mode"),
    F(CMD_CONFIGURE, CYCLES, "cycles"),
    F(CMD_CONFIGURE, FIXED_SAMPLES, "fixed_samples"),
    F(CMD_CONFIGURE, MAX_SAMPLES, "max_samples"),
    F(CMD_CONFIGURE, ZC_HYSTERESIS, "zc_hysteresis"),
};
static const field_t cmd_calibrate_fields[] = {
    F(CMD_CALIBRATE, V_OFFSET, "v_offset"),
    F(CMD_CALIBRATE, I_OFFSET, "i_offset"),
    F(CMD_CALIBRATE, V_GAIN, "v_gain"),
    F(CMD_CALIBRATE, I_GAIN, "i_gain"),
    F(CMD_CALIBRATE, PHASE, "phase"),
};
static const field_t cmd_capture_fields[] = {
    F(CMD_CAPTURE, PAIRS, "pairs"),
    F(CMD_CAPTURE, TRIGGER, "trigger"),
    F(CMD_CAPTURE, LEVEL, "level"),
    F(CMD_CAPTURE, PRETRIGGER, "pretrigger"),
    F(CMD_CAPTURE, DECIMATION, "decimation"),
    F(CMD_CAPTURE, HYSTERESIS, "hysteresis"),
};
static const field_t cmd_adc_delay_fields[] = {
    F(CMD_ADC_DELAY, READ_DELAY, "read_delay"),
};
static const frame_t frames[] = {
    FRAME("identify", IDENTIFY, identify_fields),
    FRAME("window", WINDOW, window_fields),
    FRAME("energy", ENERGY, energy_fields),
    FRAME_WITH_PAIRS("capture_chunk", CAPTURE_CHUNK, capture_chunk_fields, CW_CAPTURE_CHUNK_PAIR_V_SIZE),
    FRAME("status", STATUS, status_fields),
    FRAME("ack", ACK, ack_fields),
    {"cmd_identify", CW_TYPE_CMD_IDENTIFY, 0, NULL, 0, 0},
    FRAME("cmd_configure", CMD_CONFIGURE, cmd_configure_fields),
    FRAME("cmd_calibrate", CMD_CALIBRATE, cmd_calibrate_fields),
    FRAME("cmd_capture", CMD_CAPTURE, cmd_capture_fields),
    {"cmd_status", CW_TYPE_CMD_STATUS, 0, NULL, 0, 0},
    {"cmd_reboot", CW_TYPE_CMD_REBOOT, 0, NULL, 0, 0},
    FRAME_WITH_PAIRS("waveform", WAVEFORM, waveform_fields, CW_WAVEFORM_PAIR_V_SIZE),
    FRAME("cmd_adc_delay", CMD_ADC_DELAY, cmd_adc_delay_fields),
};

/* --- a reader for the vector file's one-case-per-line format --- */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    if (text && fread(text, 1, (size_t)size, f) != (size_t)size) {
        free(text);
        text = NULL;
    }
    if (text) text[size] = 0;
    fclose(f);
    return text;
}

/* The string value of "key":"..." in line (copied into out), or NULL. */
static const char *string_value(const char *line, const char *key, char *out, size_t cap)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    const char *at = strstr(line, pattern);
    if (!at) return NULL;
    at += strlen(pattern);
    const char *end = strchr(at, '"');
    if (!end || (size_t)(end - at) >= cap) return NULL;
    memcpy(out, at, (size_t)(end - at));
    out[end - at] = 0;
    return out;
}

static __int128 parse_int(const char *s)
{
    int negative = *s == '-';
    if (negative) s++;
    unsigned __int128 v = 0;
    while (*s >= '0' && *s <= '9') v = v * 10 + (unsigned)(*s++ - '0');
    return (__int128)(negative ? -v : v); /* unsigned negation: -2^127 parses too */
}

static size_t parse_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (; hex[0] && hex[1] && n < cap; hex += 2) {
        unsigned byte;
        if (sscanf(hex, "%2x", &byte) != 1) break;
        out[n++] = (uint8_t)byte;
    }
    return n;
}

static const frame_t *frame_named(const char *name)
{
    for (size_t k = 0; k < sizeof frames / sizeof frames[0]; k++) {
        if (strcmp(frames[k].name, name) == 0) return &frames[k];
    }
    return NULL;
}

static void put_le(uint8_t *p, size_t size, __int128 value)
{
    for (size_t b = 0; b < size; b++) p[b] = (uint8_t)((unsigned __int128)value >> (8 * b));
}

/* Fills body from the line's "fields" object; returns how many fields it set, -1 on an unknown one. */
static int fill_body(const frame_t *fr, const char *line, uint8_t *body)
{
    const char *at = strstr(line, "\"fields\":{");
    if (!at) return -1;
    at += strlen("\"fields\":{");
    int count = 0;
    while (*at == '"') {
        char key[64], value[64];
        const char *key_end = strchr(at + 1, '"');
        if (!key_end || key_end - at - 1 >= (long)sizeof key) return -1;
        memcpy(key, at + 1, (size_t)(key_end - at - 1));
        key[key_end - at - 1] = 0;
        const char *v = key_end + 3; /* past ":" */
        const char *v_end = strchr(v, '"');
        if (!v_end || v_end - v >= (long)sizeof value) return -1;
        memcpy(value, v, (size_t)(v_end - v));
        value[v_end - v] = 0;
        const field_t *field = NULL;
        for (size_t k = 0; k < fr->field_count; k++) {
            if (strcmp(fr->fields[k].name, key) == 0) field = &fr->fields[k];
        }
        if (!field) {
            printf("    %s: field %s is not in crabwatt_protocol.h\n", fr->name, key);
            return -1;
        }
        put_le(body + field->offset, field->size, parse_int(value));
        count++;
        at = v_end + 1;
        if (*at == ',') at++;
    }
    return count;
}

/* Fills the tail from "pairs":[[v,i],...], each value value_bytes wide; returns the tail's bytes. */
static size_t fill_pairs(const char *line, size_t value_bytes, uint8_t *tail, size_t cap)
{
    const char *at = strstr(line, "\"pairs\":[");
    if (!at) return 0;
    at += strlen("\"pairs\":[");
    size_t n = 0;
    while (*at == '[' && n + 2 * value_bytes <= cap) {
        char *end;
        long v = strtol(at + 1, &end, 10);
        long i = strtol(end + 1, &end, 10);
        put_le(tail + n, value_bytes, v);
        put_le(tail + n + value_bytes, value_bytes, i);
        n += 2 * value_bytes;
        at = end + 1; /* past ']' */
        if (*at == ',') at++;
    }
    return n;
}

static const char *vectors_path(void)
{
    const char *path = getenv("CRABWATT_FRAME_VECTORS");
    return path ? path : "../test/vectors/frames/frames.json";
}

TEST(vectors_frames_match_the_typescript_codec_byte_for_byte)
{
    char *text = read_file(vectors_path());
    if (!text) {
        printf("    cannot read %s (set CRABWATT_FRAME_VECTORS)\n", vectors_path());
        CHECK(text != NULL);
        return;
    }
    int cases = 0;
    int seen_type[256] = {0};
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char name[32], seq_text[16], hex[2 * FRAME_MAX_WIRE_BYTES + 2];
        if (strncmp(line, "{\"name\":", 8) != 0) continue;
        CHECK(string_value(line, "name", name, sizeof name) != NULL);
        CHECK(string_value(line, "seq", seq_text, sizeof seq_text) != NULL);
        CHECK(string_value(line, "hex", hex, sizeof hex) != NULL);
        const frame_t *fr = frame_named(name);
        if (!fr) {
            printf("    frame %s is not in crabwatt_protocol.h\n", name);
            CHECK(fr != NULL);
            continue;
        }
        cases++;
        seen_type[fr->type] = 1;
        uint32_t seq = (uint32_t)parse_int(seq_text);
        uint8_t body[CW_MAX_FRAME_BYTES] = {0};
        uint8_t tail[CW_MAX_FRAME_BYTES];
        int set = fill_body(fr, line, body);
        CHECK_EQ(set, fr->field_count); /* every field of the header, no more */
        size_t tail_len = fr->pair_value_bytes ? fill_pairs(line, fr->pair_value_bytes, tail, sizeof tail) : 0;
        uint8_t want[FRAME_MAX_WIRE_BYTES];
        size_t want_len = parse_hex(hex, want, sizeof want);

        /* C encodes what TypeScript encoded. */
        uint8_t got[FRAME_MAX_WIRE_BYTES];
        size_t got_len = frame_encode(fr->type, seq, body, fr->body_bytes, tail, tail_len, got, sizeof got);
        CHECK_EQ(got_len, want_len);
        if (got_len != want_len || memcmp(got, want, got_len) != 0) {
            printf("    %s seq %u: bytes differ from the vector\n", name, seq);
            CHECK(0);
        }

        /* C decodes what TypeScript encoded (delimiter stripped). */
        frame_view_t view;
        CHECK_EQ(frame_decode(want, want_len - 1, &view), FRAME_OK);
        CHECK_EQ(view.type, fr->type);
        CHECK_EQ(view.seq, seq);
        CHECK_EQ(view.body_len, fr->body_bytes + tail_len);
        CHECK(memcmp(view.body, body, fr->body_bytes) == 0);
        CHECK(memcmp(view.body + fr->body_bytes, tail, tail_len) == 0);
    }
    free(text);
    CHECK(cases >= 50);
    for (size_t k = 0; k < sizeof frames / sizeof frames[0]; k++) CHECK(seen_type[frames[k].type]);
}

TEST(vectors_damaged_chunks_are_rejected_for_the_same_reason)
{
    char *text = read_file(vectors_path());
    CHECK(text != NULL);
    if (!text) return;
    int cases = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char error[16], hex[256];
        if (strncmp(line, "{\"error\":", 9) != 0) continue;
        CHECK(string_value(line, "error", error, sizeof error) != NULL);
        CHECK(string_value(line, "hex", hex, sizeof hex) != NULL);
        uint8_t chunk[128];
        size_t len = parse_hex(hex, chunk, sizeof chunk);
        CHECK(len > 0 && chunk[len - 1] == 0);
        frame_view_t view;
        frame_status_t st = frame_decode(chunk, len - 1, &view);
        frame_status_t want = strcmp(error, "crc") == 0       ? FRAME_ERR_CRC
                              : strcmp(error, "version") == 0 ? FRAME_ERR_VERSION
                              : strcmp(error, "short") == 0   ? FRAME_ERR_SHORT
                                                              : FRAME_ERR_COBS;
        CHECK_EQ(st, want);
        cases++;
    }
    free(text);
    CHECK(cases >= 4);
}
