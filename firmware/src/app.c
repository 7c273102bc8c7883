#include "app.h"

#include <string.h>

#include "bringup.h"
#include "crabwatt_csr.h" /* the result record layout; no register is touched here */
#include "flash.h"

/* A header claiming more words than this cannot be a record start: the reader resynchronises by
 * skipping it, instead of waiting forever for words that will never come. */
#define APP_MAX_RECORD_WORDS 64u
/* Received bytes handled per link and poll. */
#define APP_RX_BYTES_PER_POLL 64u

static void receive(app_t *app);

/* --- configuration --- */

/* The config_seq of the newest configuration: what windows will carry once every commit made so far
 * has reached its sample boundary. The DSP counts commits that are still waiting for a boundary
 * (several may wait for the same one, and the last one's values win), but shows only whether any is
 * waiting; so while one is, the count is the firmware's own. It is exact because the firmware is the
 * only writer of COMMIT, and it is taken afresh from the DSP whenever nothing is waiting. */
static uint16_t config_seq_newest(const app_t *app)
{
    return hal_dsp_commit_pending() ? app->config_seq_committed : hal_dsp_config_seq();
}

/* --- frames out --- */

/* Every generated frame takes a seq, sent or not, so the host sees a drop as a gap. */
static bool emit(app_t *app, uint8_t type, const void *body, size_t body_len, const void *tail,
                 size_t tail_len)
{
    uint32_t seq = app->seq++;
    size_t n = frame_encode(type, seq, body, body_len, tail, tail_len, app->scratch, sizeof app->scratch);
    /* Encoding is most of what a frame costs (a window frame's ~3 700 cycles: 23 bytes' time at 3 Mbaud). */
    links_hear(&app->links);
    if (n == 0 || !ring_put(&app->links.tx, app->scratch, n)) {
        app->frames_dropped++;
        return false;
    }
    return true;
}

static void send_identify(app_t *app)
{
    hal_identity_t id;
    hal_dsp_config_t cfg;
    hal_identity(&id);
    hal_dsp_get_config(&cfg);
    struct cw_identify f = {
        .device_id = app->device_id,
        .boot_id = app->boot_id,
        .board = id.board,
        .adc_part = id.adc_part,
        .protocol_version = CW_PROTOCOL_VERSION,
        .gateware_version = id.gateware_version,
        .firmware_version = FIRMWARE_VERSION,
        .sample_rate_num = id.sample_rate_num,
        .sample_rate_den = id.sample_rate_den,
        .capture_depth = id.capture_depth,
        /* The fields below are the staged (newest) configuration, so the seq is the newest too. */
        .config_seq = config_seq_newest(app),
        .mode = cfg.mode,
        .cycles = cfg.cycles,
        .fixed_samples = cfg.fixed_samples,
        .max_samples = cfg.max_samples,
        .zc_hysteresis = cfg.zc_hysteresis,
        .v_offset = cfg.v_offset,
        .i_offset = cfg.i_offset,
        .v_gain = cfg.v_gain,
        .i_gain = cfg.i_gain,
        .phase = cfg.phase,
        .calibration_source = calstore_source(&app->store),
    };
    emit(app, CW_TYPE_IDENTIFY, &f, sizeof f, NULL, 0);
}

static void send_status(app_t *app)
{
    struct cw_status f = {
        .boot_id = app->boot_id,
        .uptime_ms = hal_uptime_ms(),
        /* The status frame's own drop, if it happens, shows up in the next one. */
        .frames_dropped = app->frames_dropped + app->links.frames_torn,
        .fifo_overflows = hal_result_overflows(),
        .samples_dropped = hal_samples_dropped(),
        .adc_errors = hal_adc_errors(),
        .watchdog_resets = hal_watchdog_resets(),
        .config_seq = config_seq_newest(app),
        .link_stalls = app->links.stalls,
        .uart_rx_overruns = hal_link_rx_overruns(HAL_LINK_UART),
        .waveform_drops = hal_waveform_drops(),
    };
    emit(app, CW_TYPE_STATUS, &f, sizeof f, NULL, 0);
}

static void send_ack(app_t *app, uint32_t command_seq, uint8_t command_type, uint8_t status, uint32_t value)
{
    struct cw_ack f = {
        .command_seq = command_seq,
        .command_type = command_type,
        .status = status,
        .value = value,
    };
    emit(app, CW_TYPE_ACK, &f, sizeof f, NULL, 0);
}

/* --- DSP results --- */

static int16_t low_i16(uint32_t word) { return (int16_t)(uint16_t)word; }
static int16_t high_i16(uint32_t word) { return (int16_t)(uint16_t)(word >> 16); }
static uint64_t words_u64(const uint32_t *w, unsigned lo) { return (uint64_t)w[lo + 1] << 32 | w[lo]; }

static void forward_window(app_t *app, const uint32_t *w)
{
    uint32_t zc_flags = w[CW_WINDOW_WORD_ZC_COUNT_FLAGS];
    uint32_t first = w[CW_WINDOW_WORD_ZC_FIRST_PREV_CUR];
    uint32_t last = w[CW_WINDOW_WORD_ZC_LAST_PREV_CUR];
    uint64_t end_index = words_u64(w, CW_WINDOW_WORD_END_INDEX_LO);
    struct cw_window win = {
        .end_index = end_index,
        .samples = w[CW_WINDOW_WORD_SAMPLES],
        .sum_v = (int64_t)words_u64(w, CW_WINDOW_WORD_SUM_V_LO),
        .sum_i = (int64_t)words_u64(w, CW_WINDOW_WORD_SUM_I_LO),
        .sum_vv = words_u64(w, CW_WINDOW_WORD_SUM_VV_LO),
        .sum_ii = words_u64(w, CW_WINDOW_WORD_SUM_II_LO),
        .sum_vi = (int64_t)words_u64(w, CW_WINDOW_WORD_SUM_VI_LO),
        .min_v = low_i16(w[CW_WINDOW_WORD_MIN_MAX_V]),
        .max_v = high_i16(w[CW_WINDOW_WORD_MIN_MAX_V]),
        .min_i = low_i16(w[CW_WINDOW_WORD_MIN_MAX_I]),
        .max_i = high_i16(w[CW_WINDOW_WORD_MIN_MAX_I]),
        .zc_count = (uint16_t)zc_flags,
        .zc_first_offset = w[CW_WINDOW_WORD_ZC_FIRST_OFFSET],
        .zc_first_prev = low_i16(first),
        .zc_first_cur = high_i16(first),
        .zc_last_offset = w[CW_WINDOW_WORD_ZC_LAST_OFFSET],
        .zc_last_prev = low_i16(last),
        .zc_last_cur = high_i16(last),
        .flags = (uint16_t)(zc_flags >> 16),
        .config_seq = (uint16_t)((w[CW_WINDOW_WORD_HEADER] & CW_RECORD_HEADER_CONFIG_SEQ_MASK) >>
                                 CW_RECORD_HEADER_CONFIG_SEQ_SHIFT),
    };
    emit(app, CW_TYPE_WINDOW, &win, sizeof win, NULL, 0);

    /* Every window carries its energy snapshot: one lost window frame then costs the host that
     * window's detail, never energy, since the next snapshot is absolute. */
    struct cw_energy e = {.end_index = end_index, .boot_id = app->boot_id};
    uint32_t e2 = w[CW_WINDOW_WORD_ENERGY_2];
    uint8_t sign_fill = (e2 & 0x80000000u) ? 0xFF : 0x00;
    const uint32_t limbs[3] = {w[CW_WINDOW_WORD_ENERGY_0], w[CW_WINDOW_WORD_ENERGY_1], e2};
    for (unsigned b = 0; b < sizeof e.energy; b++) {
        e.energy[b] = b < 12 ? (uint8_t)(limbs[b / 4] >> (8 * (b % 4))) : sign_fill;
    }
    emit(app, CW_TYPE_ENERGY, &e, sizeof e, NULL, 0);
}

/* Never waits: a record only partly visible is left for the next poll; whatever the FIFO holds
 * is drained whether or not the link has room for the frames it makes. */
static void drain_results(app_t *app)
{
    for (unsigned n = 0; n < APP_RECORDS_PER_POLL; n++) {
        size_t level = hal_result_level();
        if (level == 0) {
            return;
        }
        uint32_t header = hal_result_peek();
        uint32_t words = (header & CW_RECORD_HEADER_WORDS_MASK) >> CW_RECORD_HEADER_WORDS_SHIFT;
        uint32_t kind = (header & CW_RECORD_HEADER_KIND_MASK) >> CW_RECORD_HEADER_KIND_SHIFT;
        if (words == 0 || words > APP_MAX_RECORD_WORDS) {
            hal_result_pop();
            app->records_skipped++;
            continue;
        }
        if (level < words) {
            return;
        }
        if (kind == CW_RECORD_KIND_WINDOW && words == CW_WINDOW_RECORD_WORDS) {
            uint32_t w[CW_WINDOW_RECORD_WORDS];
            for (unsigned k = 0; k < CW_WINDOW_RECORD_WORDS; k++) {
                w[k] = hal_result_peek();
                hal_result_pop();
            }
            forward_window(app, w);
            /* A window costs ~7 000 cycles; the UART's 64-byte receive FIFO fills in ~10 000 at
             * 3 Mbaud and 48 MHz and drops what comes after, so it is emptied between records. */
            receive(app);
        } else {
            for (unsigned k = 0; k < words; k++) {
                hal_result_pop();
            }
            app->records_skipped += words;
        }
    }
}

/* --- commands --- */

/* Stages cfg and commits it; returns the config_seq the windows computed with it will carry. A
 * commit while another still waits for its boundary is fine: the staging registers were read back
 * with the waiting configuration in them, so the newer commit carries both changes. */
static uint16_t commit(app_t *app, const hal_dsp_config_t *cfg)
{
    uint16_t seq = (uint16_t)(config_seq_newest(app) + 1u);
    hal_dsp_apply(cfg);
    app->config_seq_committed = seq;
    return seq;
}

static uint8_t configure(app_t *app, const struct cw_cmd_configure *c, uint32_t *value)
{
    if (c->mode > CW_WINDOW_MODE_FIXED || c->cycles < 1 || c->cycles > 1000 || c->fixed_samples < 1 ||
        c->fixed_samples > (1u << 24) || c->max_samples < 1 || c->max_samples > (1u << 24) ||
        c->zc_hysteresis > 32767) {
        return CW_ACK_BAD_ARGS;
    }
    hal_dsp_config_t cfg;
    hal_dsp_get_config(&cfg);
    cfg.mode = c->mode;
    cfg.cycles = c->cycles;
    cfg.fixed_samples = c->fixed_samples;
    cfg.max_samples = c->max_samples;
    cfg.zc_hysteresis = c->zc_hysteresis;
    *value = commit(app, &cfg);
    return CW_ACK_OK;
}

static uint8_t calibrate(app_t *app, const struct cw_cmd_calibrate *c, uint32_t *value)
{
    const int32_t phase_limit = 1023 * 65536;
    if (c->phase <= -phase_limit || c->phase >= phase_limit) {
        return CW_ACK_BAD_ARGS;
    }
    hal_dsp_config_t cfg;
    hal_dsp_get_config(&cfg);
    cfg.v_offset = c->v_offset;
    cfg.i_offset = c->i_offset;
    cfg.v_gain = c->v_gain;
    cfg.i_gain = c->i_gain;
    cfg.phase = c->phase;
    *value = commit(app, &cfg);
    const cal_values_t values = {
        .v_offset = c->v_offset, .i_offset = c->i_offset, .v_gain = c->v_gain, .i_gain = c->i_gain, .phase = c->phase};
    calstore_save(&app->store, &values, hal_uptime_ms());
    return CW_ACK_OK;
}

/* The board's identity from the flash (device_id, USB serial number), and the flash's calibration
 * record, applied before the first whole window: the samples since reset (the boot's few
 * milliseconds) close as a short window with the CONFIG flag, as at any commit. */
static void restore_calibration(app_t *app)
{
    flash_info_t flash = {0};
    hal_identity_t id;
    hal_identity(&id);
    bool present = flash_probe(&flash);
    app->device_id = present ? flash.unique_id : id.device_id;
    hal_usb_serial_number(app->device_id);
    cal_values_t values;
    if (!calstore_load(&app->store, present ? flash.size_bytes : 0, &values)) {
        return;
    }
    hal_dsp_config_t cfg;
    hal_dsp_get_config(&cfg);
    cfg.v_offset = values.v_offset;
    cfg.i_offset = values.i_offset;
    cfg.v_gain = values.v_gain;
    cfg.i_gain = values.i_gain;
    cfg.phase = values.phase;
    commit(app, &cfg);
}

/* After cmd_reboot: once its ack has left the ring and no calibration is half saved, the link gets
 * APP_REBOOT_DRAIN_MS to send it, then PROGRAMN. */
static void reboot_when_quiet(app_t *app)
{
    if (!app->reboot_pending || !calstore_idle(&app->store) || ring_used(&app->links.tx) > 0) {
        return;
    }
    uint32_t now_ms = hal_uptime_ms();
    if (!app->reboot_draining) {
        app->reboot_draining = true;
        app->reboot_ms = now_ms;
    } else if (now_ms - app->reboot_ms >= APP_REBOOT_DRAIN_MS) {
        hal_reboot();
    }
}

/* One capture at a time: a second request while one is armed or still being sent gets BUSY. */
static uint8_t capture(app_t *app, const struct cw_cmd_capture *c, uint32_t *value)
{
    hal_identity_t id;
    hal_identity(&id);
    if (c->pairs < 1 || c->pairs > id.capture_depth || c->trigger > CW_CAPTURE_TRIGGER_I_FALLING ||
        c->pretrigger >= c->pairs || c->decimation < 1 || c->hysteresis > 32767) {
        return CW_ACK_BAD_ARGS;
    }
    if (app->capture.active) {
        return CW_ACK_BUSY;
    }
    const hal_capture_settings_t settings = {
        .pairs = c->pairs,
        .pretrigger = c->pretrigger,
        .decimation = c->decimation,
        .trigger = c->trigger,
        .level = c->level,
        .hysteresis = c->hysteresis,
    };
    hal_capture_arm(&settings);
    if (app->next_capture_id == 0) {
        app->next_capture_id = 1; /* 0 never names a capture */
    }
    /* The trigger cannot fire before the pretrigger has filled (pretrigger·D samples, up to a minute
     * at D = 65535), so the auto-trigger time starts from there. Whole samples per ms, rounded
     * down, makes the wait a little longer, never shorter; 32 bits hold 4095 · 65535 samples. */
    uint32_t samples_per_ms = id.sample_rate_num / (1000u * id.sample_rate_den);
    if (samples_per_ms == 0) {
        samples_per_ms = 1;
    }
    uint32_t fill_samples = (uint32_t)c->pretrigger * c->decimation;
    app->capture = (app_capture_t){
        .active = true,
        .forced = c->trigger == CW_CAPTURE_TRIGGER_IMMEDIATE,
        .armed_ms = hal_uptime_ms(),
        .auto_trigger_ms = APP_CAPTURE_AUTO_TRIGGER_MS + (fill_samples + samples_per_ms - 1u) / samples_per_ms,
        .id = app->next_capture_id++,
        .settings = settings,
        .chunk_count = (uint16_t)((c->pairs + APP_CHUNK_PAIRS - 1u) / APP_CHUNK_PAIRS),
    };
    *value = app->capture.id;
    return CW_ACK_OK;
}

static void handle_command(app_t *app, const frame_view_t *cmd)
{
    uint8_t status;
    uint32_t value = 0;
    switch (cmd->type) {
    case CW_TYPE_CMD_IDENTIFY:
        status = cmd->body_len == 0 ? CW_ACK_OK : CW_ACK_BAD_LENGTH;
        /* The answer goes before the ack, so a host that waits for the ack has it already. */
        if (status == CW_ACK_OK) send_identify(app);
        break;
    case CW_TYPE_CMD_STATUS:
        status = cmd->body_len == 0 ? CW_ACK_OK : CW_ACK_BAD_LENGTH;
        if (status == CW_ACK_OK) send_status(app);
        break;
    case CW_TYPE_CMD_CONFIGURE: {
        struct cw_cmd_configure c;
        status = CW_ACK_BAD_LENGTH;
        if (cmd->body_len == sizeof c) {
            memcpy(&c, cmd->body, sizeof c);
            status = configure(app, &c, &value);
        }
        break;
    }
    case CW_TYPE_CMD_CALIBRATE: {
        struct cw_cmd_calibrate c;
        status = CW_ACK_BAD_LENGTH;
        if (cmd->body_len == sizeof c) {
            memcpy(&c, cmd->body, sizeof c);
            status = calibrate(app, &c, &value);
        }
        break;
    }
    case CW_TYPE_CMD_REBOOT:
        status = cmd->body_len == 0 ? CW_ACK_OK : CW_ACK_BAD_LENGTH;
        app->reboot_pending = app->reboot_pending || status == CW_ACK_OK;
        break;
    case CW_TYPE_CMD_ADC_DELAY:
        status = bringup_adc_delay(cmd->body, cmd->body_len, &value);
        break;
    case CW_TYPE_CMD_CAPTURE: {
        struct cw_cmd_capture c;
        status = CW_ACK_BAD_LENGTH;
        if (cmd->body_len == sizeof c) {
            memcpy(&c, cmd->body, sizeof c);
            status = capture(app, &c, &value);
        }
        break;
    }
    default:
        status = CW_ACK_UNKNOWN_COMMAND;
        break;
    }
    send_ack(app, cmd->seq, cmd->type, status, value);
}

_Static_assert(sizeof(struct cw_cmd_configure) <= FRAME_RX_KEEP_BYTES - CW_HEADER_BYTES &&
                   sizeof(struct cw_cmd_calibrate) <= FRAME_RX_KEEP_BYTES - CW_HEADER_BYTES &&
                   sizeof(struct cw_cmd_capture) <= FRAME_RX_KEEP_BYTES - CW_HEADER_BYTES,
               "the receiver keeps every command body whole");

static void receive(app_t *app)
{
    links_hear(&app->links);
    for (int link = 0; link < HAL_LINK_COUNT; link++) {
        for (unsigned n = 0; n < APP_RX_BYTES_PER_POLL; n++) {
            int byte = links_rx(&app->links, link);
            if (byte < 0) {
                break;
            }
            frame_view_t cmd;
            int status = frame_rx_push(&app->rx[link], (uint8_t)byte, &cmd);
            if (status < 0) {
                continue;
            }
            if (status != FRAME_OK) {
                /* Not answerable: a damaged frame's seq cannot be trusted, and a host speaking
                 * another protocol version could not read our ack. */
                app->rx_errors++;
                continue;
            }
            /* Answers go where commands come from, so a host on either link is heard. */
            links_heard_from(&app->links, link);
            handle_command(app, &cmd);
            /* Hearing and answering a command costs about as long as its bytes take on the line. */
            links_hear(&app->links);
        }
    }
}

/* --- capture --- */

static void send_capture(app_t *app)
{
    app_capture_t *c = &app->capture;
    if (!c->active) {
        return;
    }
    if (!c->done) {
        if (!hal_capture_done(&c->info)) {
            if (!c->forced && hal_uptime_ms() - c->armed_ms >= c->auto_trigger_ms) {
                /* Re-arming restarts the recording, so the pretrigger refills (pretrigger·D samples)
                 * before the immediate trigger; same pairs, same decimation. */
                hal_capture_settings_t now = c->settings;
                now.trigger = CW_CAPTURE_TRIGGER_IMMEDIATE;
                now.level = 0;
                now.hysteresis = 0;
                hal_capture_arm(&now);
                c->forced = true;
            }
            return;
        }
        c->done = true;
    }
    /* Chunks wait for room rather than being dropped: the capture buffer holds them, and waiting
     * here costs the DSP nothing. The reserve keeps live frames flowing meanwhile. */
    if (ring_free(&app->links.tx) < FRAME_MAX_WIRE_BYTES + APP_CAPTURE_RESERVE_BYTES) {
        return;
    }
    uint32_t first = (uint32_t)c->next_chunk * APP_CHUNK_PAIRS;
    uint32_t count = c->settings.pairs - first < APP_CHUNK_PAIRS ? c->settings.pairs - first : APP_CHUNK_PAIRS;
    hal_capture_read((uint16_t)first, (uint16_t)count, app->pairs);
    links_hear(&app->links);
    struct cw_capture_chunk f = {
        .capture_id = c->id,
        .chunk_index = c->next_chunk,
        .chunk_count = c->chunk_count,
        /* Pair k of the capture is sample first_index + k·D (docs/protocol.md "Captures"). */
        .first_index = c->info.first_index + (uint64_t)first * c->settings.decimation,
        .trigger_index = c->info.trigger_index,
        .config_seq = c->info.config_seq,
        .decimation = c->settings.decimation,
    };
    emit(app, CW_TYPE_CAPTURE_CHUNK, &f, sizeof f, app->pairs, count * 2u * sizeof app->pairs[0]);
    if (++c->next_chunk == c->chunk_count) {
        c->active = false;
    }
}

/* --- the loop --- */

void app_init(app_t *app, uint32_t boot_id)
{
    memset(app, 0, sizeof *app);
    links_init(&app->links);
    for (int link = 0; link < HAL_LINK_COUNT; link++) {
        frame_rx_init(&app->rx[link]);
    }
    app->boot_id = boot_id;
    app->next_capture_id = 1;
    app->last_status_ms = hal_uptime_ms();
    restore_calibration(app);
    /* A lone delimiter first (docs/protocol.md, idle delimiters): bytes already on the line before this
     * boot end there as a chunk of their own instead of gluing onto our identify frame. */
    static const uint8_t delimiter = 0x00;
    (void)ring_put(&app->links.tx, &delimiter, 1);
    send_identify(app);
    send_status(app);
}

void app_poll(app_t *app)
{
    hal_watchdog_kick();
    links_choose(&app->links);
    receive(app);
    drain_results(app);
    if (waveform_poll(&app->waveform)) {
        /* The stream leaves CW_TX_RESERVE_STREAM_BYTES to every other frame: with a host (or a link) slower
           than the stream, waveform frames are the ones dropped (counted, seq taken), never an identify,
           an ack, a window or a capture chunk. */
        if (ring_free(&app->links.tx) >= CW_TX_RESERVE_STREAM_BYTES + FRAME_MAX_WIRE_BYTES) {
            emit(app, CW_TYPE_WAVEFORM, &app->waveform.head, sizeof app->waveform.head, app->waveform.samples,
                 app->waveform.count * sizeof app->waveform.samples[0]);
        } else {
            app->seq++;
            app->frames_dropped++;
        }
        waveform_sent(&app->waveform);
    }
    send_capture(app);
    uint32_t now_ms = hal_uptime_ms();
    calstore_poll(&app->store, now_ms);
    if (now_ms - app->last_status_ms >= APP_STATUS_PERIOD_MS) {
        app->last_status_ms = now_ms;
        send_status(app);
    }
    links_pump(&app->links);
    reboot_when_quiet(app);
}
