/* crabwatt wire protocol. GENERATED from server/protocol/definition.ts: do not edit by hand;
 * regenerate with `node server/bin/crabwatt.mjs gen-header` (a host test fails while it differs).
 *
 * Frame on the wire:  COBS( header ‖ body ‖ crc32c(header ‖ body) ) ‖ 0x00   (docs/protocol.md)
 * header: version u8, type u8, seq u32. Every multi-byte value is little-endian; the structs below
 * are packed and assume a little-endian target (rv32im is). i128 values are uint8_t[16] holding the
 * two's complement, least significant byte first. Struct sizes and field offsets are checked by
 * _Static_assert, so a compiler that lays them out differently fails the build. */
#ifndef CRABWATT_PROTOCOL_H
#define CRABWATT_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define CW_PROTOCOL_VERSION 4u
#define CW_HEADER_BYTES 6u
#define CW_CRC_BYTES 4u
/* Largest decoded frame (header + body + CRC); longer runs between delimiters are garbage. */
#define CW_MAX_FRAME_BYTES 1100u
/* Largest COBS-encoded frame, without the delimiter. */
#define CW_MAX_ENCODED_FRAME_BYTES 1105u
/* Largest frames each way, so the device can size its command receiver. */
#define CW_MAX_DEVICE_FRAME_BYTES 1060u
#define CW_MAX_COMMAND_FRAME_BYTES 23u

/* CRC-32C (Castagnoli), reflected; init and final XOR 0xFFFFFFFF; crc of "123456789" is the check. */
#define CW_CRC32C_POLY_REFLECTED 0x82F63B78u
#define CW_CRC32C_CHECK 0xE3069283u

/* USB ids: ours from the pid.codes open-source range; the bootloader is foboot. */
#define CW_USB_VID 0x1209u
#define CW_USB_PID_CRABWATT 0x5AF1u
#define CW_USB_PID_BOOTLOADER 0x5AF0u

/* Frame types; bit 7 set for host-to-device commands. */
#define CW_TYPE_IDENTIFY 0x01u
#define CW_TYPE_WINDOW 0x02u
#define CW_TYPE_ENERGY 0x03u
#define CW_TYPE_CAPTURE_CHUNK 0x04u
#define CW_TYPE_STATUS 0x05u
#define CW_TYPE_ACK 0x06u
#define CW_TYPE_CMD_IDENTIFY 0x81u
#define CW_TYPE_CMD_CONFIGURE 0x82u
#define CW_TYPE_CMD_CALIBRATE 0x83u
#define CW_TYPE_CMD_CAPTURE 0x84u
#define CW_TYPE_CMD_STATUS 0x85u
#define CW_TYPE_CMD_REBOOT 0x86u
#define CW_TYPE_WAVEFORM 0x07u
#define CW_TYPE_CMD_ADC_DELAY 0x87u

/* window_mode: how windows close (docs/dsp.md) */
#define CW_WINDOW_MODE_CYCLES 0u
#define CW_WINDOW_MODE_FIXED 1u

/* identify.adc_part */
#define CW_ADC_PART_SIMULATED 0u
#define CW_ADC_PART_AD7357 1u

/* identify.board */
#define CW_BOARD_SIMULATED 0u
#define CW_BOARD_ORANGECRAB_R0_1 1u
#define CW_BOARD_ORANGECRAB_R0_2 2u
#define CW_BOARD_RTL_TWIN 3u

/* cmd_capture.trigger */
#define CW_CAPTURE_TRIGGER_IMMEDIATE 0u
#define CW_CAPTURE_TRIGGER_V_RISING 1u
#define CW_CAPTURE_TRIGGER_V_FALLING 2u
#define CW_CAPTURE_TRIGGER_I_RISING 3u
#define CW_CAPTURE_TRIGGER_I_FALLING 4u

/* ack.status */
#define CW_ACK_OK 0u
#define CW_ACK_BAD_ARGS 1u
#define CW_ACK_BUSY 2u
#define CW_ACK_UNKNOWN_COMMAND 3u
#define CW_ACK_BAD_LENGTH 4u

/* identify.calibration_source */
#define CW_CALIBRATION_SOURCE_DEFAULTS 0u
#define CW_CALIBRATION_SOURCE_FLASH 1u
#define CW_CALIBRATION_SOURCE_BAD_RECORD 2u
#define CW_CALIBRATION_SOURCE_NO_FLASH 3u
#define CW_CALIBRATION_SOURCE_HOST_SAVED 4u
#define CW_CALIBRATION_SOURCE_HOST_UNSAVED 5u

/* cmd_adc_delay.read_delay and its ack's value */
#define CW_ADC_DELAY_KEEP 65535u
#define CW_ADC_DELAY_MAX 255u
#define CW_ADC_DELAY_VALUE_MASK 255u
#define CW_ADC_DELAY_SETTLED_BIT 256u
#define CW_ADC_DELAY_ERRORS_SHIFT 16u

/* transmit ring room the waveform stream and capture chunks leave to every other frame */
#define CW_TX_RESERVE_STREAM_BYTES 2048u
#define CW_TX_RESERVE_CAPTURE_BYTES 1024u

/* the device's transmit ring */
#define CW_TX_RING_BYTES 8192u

/* window.flags bits (docs/dsp.md) */
#define CW_WINDOW_FLAG_CLIP_V 0x0001u
#define CW_WINDOW_FLAG_CLIP_I 0x0002u
#define CW_WINDOW_FLAG_SAT_V 0x0004u
#define CW_WINDOW_FLAG_SAT_I 0x0008u
#define CW_WINDOW_FLAG_PARTIAL 0x0010u
#define CW_WINDOW_FLAG_TIMEOUT 0x0020u
#define CW_WINDOW_FLAG_CONFIG 0x0040u
#define CW_WINDOW_FLAG_ZC_OVERFLOW 0x0080u

/* identify (device-to-host): Who the device is and how it samples. Sent at boot and in answer to cmd_identify. */
#define CW_IDENTIFY_BODY_BYTES 61u
struct cw_identify {
    uint64_t device_id; /* unique id: the 64-bit unique ID of the board's configuration flash (SPI command 0x4B), random for simulations */
    uint32_t boot_id; /* changes at every device reset: a new value opens a new energy epoch */
    uint8_t  board; /* BOARD enum */
    uint8_t  adc_part; /* ADC_PART enum */
    uint8_t  protocol_version; /* PROTOCOL_VERSION the firmware was built with */
    uint32_t gateware_version; /* major << 16 | minor << 8 | patch */
    uint32_t firmware_version; /* major << 16 | minor << 8 | patch */
    uint32_t sample_rate_num; /* sample rate numerator, Hz */
    uint32_t sample_rate_den; /* sample rate denominator (rate = num / den) */
    uint16_t capture_depth; /* sample pairs the capture buffer holds */
    uint16_t config_seq; /* configuration commits so far */
    uint8_t  mode; /* WINDOW_MODE: 0 whole cycles, 1 fixed sample count */
    uint16_t cycles; /* K, cycles per window in CYCLES mode (1..1000) */
    uint32_t fixed_samples; /* N, samples per window in FIXED mode (1..2^24) */
    uint32_t max_samples; /* M, timeout of a CYCLES window in samples (1..2^24) */
    uint16_t zc_hysteresis; /* zero-crossing arming threshold, ADC LSB (0..32767) */
    int16_t  v_offset; /* voltage offset, quarter-LSB of the centred ADC code */
    int16_t  i_offset; /* current offset, quarter-LSB of the centred ADC code */
    uint16_t v_gain; /* voltage gain, Q2.14 (16384 = 1.0) */
    uint16_t i_gain; /* current gain, Q2.14 (16384 = 1.0) */
    int32_t  phase; /* delay of current vs voltage in 1/65536 sample; negative delays voltage */
    uint8_t  calibration_source; /* CALIBRATION_SOURCE: where the calibration above came from, and whether it is saved */
} __attribute__((packed));
_Static_assert(sizeof(struct cw_identify) == 61, "struct cw_identify must match the wire layout");
_Static_assert(offsetof(struct cw_identify, device_id) == 0, "cw_identify.device_id offset");
_Static_assert(offsetof(struct cw_identify, boot_id) == 8, "cw_identify.boot_id offset");
_Static_assert(offsetof(struct cw_identify, board) == 12, "cw_identify.board offset");
_Static_assert(offsetof(struct cw_identify, adc_part) == 13, "cw_identify.adc_part offset");
_Static_assert(offsetof(struct cw_identify, protocol_version) == 14, "cw_identify.protocol_version offset");
_Static_assert(offsetof(struct cw_identify, gateware_version) == 15, "cw_identify.gateware_version offset");
_Static_assert(offsetof(struct cw_identify, firmware_version) == 19, "cw_identify.firmware_version offset");
_Static_assert(offsetof(struct cw_identify, sample_rate_num) == 23, "cw_identify.sample_rate_num offset");
_Static_assert(offsetof(struct cw_identify, sample_rate_den) == 27, "cw_identify.sample_rate_den offset");
_Static_assert(offsetof(struct cw_identify, capture_depth) == 31, "cw_identify.capture_depth offset");
_Static_assert(offsetof(struct cw_identify, config_seq) == 33, "cw_identify.config_seq offset");
_Static_assert(offsetof(struct cw_identify, mode) == 35, "cw_identify.mode offset");
_Static_assert(offsetof(struct cw_identify, cycles) == 36, "cw_identify.cycles offset");
_Static_assert(offsetof(struct cw_identify, fixed_samples) == 38, "cw_identify.fixed_samples offset");
_Static_assert(offsetof(struct cw_identify, max_samples) == 42, "cw_identify.max_samples offset");
_Static_assert(offsetof(struct cw_identify, zc_hysteresis) == 46, "cw_identify.zc_hysteresis offset");
_Static_assert(offsetof(struct cw_identify, v_offset) == 48, "cw_identify.v_offset offset");
_Static_assert(offsetof(struct cw_identify, i_offset) == 50, "cw_identify.i_offset offset");
_Static_assert(offsetof(struct cw_identify, v_gain) == 52, "cw_identify.v_gain offset");
_Static_assert(offsetof(struct cw_identify, i_gain) == 54, "cw_identify.i_gain offset");
_Static_assert(offsetof(struct cw_identify, phase) == 56, "cw_identify.phase offset");
_Static_assert(offsetof(struct cw_identify, calibration_source) == 60, "cw_identify.calibration_source offset");
#define CW_IDENTIFY_DEVICE_ID_OFFSET 0u
#define CW_IDENTIFY_DEVICE_ID_SIZE 8u
#define CW_IDENTIFY_BOOT_ID_OFFSET 8u
#define CW_IDENTIFY_BOOT_ID_SIZE 4u
#define CW_IDENTIFY_BOARD_OFFSET 12u
#define CW_IDENTIFY_BOARD_SIZE 1u
#define CW_IDENTIFY_ADC_PART_OFFSET 13u
#define CW_IDENTIFY_ADC_PART_SIZE 1u
#define CW_IDENTIFY_PROTOCOL_VERSION_OFFSET 14u
#define CW_IDENTIFY_PROTOCOL_VERSION_SIZE 1u
#define CW_IDENTIFY_GATEWARE_VERSION_OFFSET 15u
#define CW_IDENTIFY_GATEWARE_VERSION_SIZE 4u
#define CW_IDENTIFY_FIRMWARE_VERSION_OFFSET 19u
#define CW_IDENTIFY_FIRMWARE_VERSION_SIZE 4u
#define CW_IDENTIFY_SAMPLE_RATE_NUM_OFFSET 23u
#define CW_IDENTIFY_SAMPLE_RATE_NUM_SIZE 4u
#define CW_IDENTIFY_SAMPLE_RATE_DEN_OFFSET 27u
#define CW_IDENTIFY_SAMPLE_RATE_DEN_SIZE 4u
#define CW_IDENTIFY_CAPTURE_DEPTH_OFFSET 31u
#define CW_IDENTIFY_CAPTURE_DEPTH_SIZE 2u
#define CW_IDENTIFY_CONFIG_SEQ_OFFSET 33u
#define CW_IDENTIFY_CONFIG_SEQ_SIZE 2u
#define CW_IDENTIFY_MODE_OFFSET 35u
#define CW_IDENTIFY_MODE_SIZE 1u
#define CW_IDENTIFY_CYCLES_OFFSET 36u
#define CW_IDENTIFY_CYCLES_SIZE 2u
#define CW_IDENTIFY_FIXED_SAMPLES_OFFSET 38u
#define CW_IDENTIFY_FIXED_SAMPLES_SIZE 4u
#define CW_IDENTIFY_MAX_SAMPLES_OFFSET 42u
#define CW_IDENTIFY_MAX_SAMPLES_SIZE 4u
#define CW_IDENTIFY_ZC_HYSTERESIS_OFFSET 46u
#define CW_IDENTIFY_ZC_HYSTERESIS_SIZE 2u
#define CW_IDENTIFY_V_OFFSET_OFFSET 48u
#define CW_IDENTIFY_V_OFFSET_SIZE 2u
#define CW_IDENTIFY_I_OFFSET_OFFSET 50u
#define CW_IDENTIFY_I_OFFSET_SIZE 2u
#define CW_IDENTIFY_V_GAIN_OFFSET 52u
#define CW_IDENTIFY_V_GAIN_SIZE 2u
#define CW_IDENTIFY_I_GAIN_OFFSET 54u
#define CW_IDENTIFY_I_GAIN_SIZE 2u
#define CW_IDENTIFY_PHASE_OFFSET 56u
#define CW_IDENTIFY_PHASE_SIZE 4u
#define CW_IDENTIFY_CALIBRATION_SOURCE_OFFSET 60u
#define CW_IDENTIFY_CALIBRATION_SOURCE_SIZE 1u

/* window (device-to-host): One measurement window: the exact integer sums of docs/dsp.md. */
#define CW_WINDOW_BODY_BYTES 82u
struct cw_window {
    uint64_t end_index; /* sample index of the first sample after the window */
    uint32_t samples; /* samples in the window */
    int64_t  sum_v; /* Σ v */
    int64_t  sum_i; /* Σ i */
    uint64_t sum_vv; /* Σ v² */
    uint64_t sum_ii; /* Σ i² */
    int64_t  sum_vi; /* Σ v·i */
    int16_t  min_v; /* smallest calibrated v */
    int16_t  max_v; /* largest calibrated v */
    int16_t  min_i; /* smallest calibrated i */
    int16_t  max_i; /* largest calibrated i */
    uint16_t zc_count; /* negative-to-positive crossings of v in the window */
    uint32_t zc_first_offset; /* first crossing, samples after the window start */
    int16_t  zc_first_prev; /* v before the first crossing */
    int16_t  zc_first_cur; /* v at the first crossing */
    uint32_t zc_last_offset; /* last crossing, samples after the window start */
    int16_t  zc_last_prev; /* v before the last crossing */
    int16_t  zc_last_cur; /* v at the last crossing */
    uint16_t flags; /* WINDOW_FLAG bits */
    uint16_t config_seq; /* configuration the window was computed with */
} __attribute__((packed));
_Static_assert(sizeof(struct cw_window) == 82, "struct cw_window must match the wire layout");
_Static_assert(offsetof(struct cw_window, end_index) == 0, "cw_window.end_index offset");
_Static_assert(offsetof(struct cw_window, samples) == 8, "cw_window.samples offset");
_Static_assert(offsetof(struct cw_window, sum_v) == 12, "cw_window.sum_v offset");
_Static_assert(offsetof(struct cw_window, sum_i) == 20, "cw_window.sum_i offset");
_Static_assert(offsetof(struct cw_window, sum_vv) == 28, "cw_window.sum_vv offset");
_Static_assert(offsetof(struct cw_window, sum_ii) == 36, "cw_window.sum_ii offset");
_Static_assert(offsetof(struct cw_window, sum_vi) == 44, "cw_window.sum_vi offset");
_Static_assert(offsetof(struct cw_window, min_v) == 52, "cw_window.min_v offset");
_Static_assert(offsetof(struct cw_window, max_v) == 54, "cw_window.max_v offset");
_Static_assert(offsetof(struct cw_window, min_i) == 56, "cw_window.min_i offset");
_Static_assert(offsetof(struct cw_window, max_i) == 58, "cw_window.max_i offset");
_Static_assert(offsetof(struct cw_window, zc_count) == 60, "cw_window.zc_count offset");
_Static_assert(offsetof(struct cw_window, zc_first_offset) == 62, "cw_window.zc_first_offset offset");
_Static_assert(offsetof(struct cw_window, zc_first_prev) == 66, "cw_window.zc_first_prev offset");
_Static_assert(offsetof(struct cw_window, zc_first_cur) == 68, "cw_window.zc_first_cur offset");
_Static_assert(offsetof(struct cw_window, zc_last_offset) == 70, "cw_window.zc_last_offset offset");
_Static_assert(offsetof(struct cw_window, zc_last_prev) == 74, "cw_window.zc_last_prev offset");
_Static_assert(offsetof(struct cw_window, zc_last_cur) == 76, "cw_window.zc_last_cur offset");
_Static_assert(offsetof(struct cw_window, flags) == 78, "cw_window.flags offset");
_Static_assert(offsetof(struct cw_window, config_seq) == 80, "cw_window.config_seq offset");
#define CW_WINDOW_END_INDEX_OFFSET 0u
#define CW_WINDOW_END_INDEX_SIZE 8u
#define CW_WINDOW_SAMPLES_OFFSET 8u
#define CW_WINDOW_SAMPLES_SIZE 4u
#define CW_WINDOW_SUM_V_OFFSET 12u
#define CW_WINDOW_SUM_V_SIZE 8u
#define CW_WINDOW_SUM_I_OFFSET 20u
#define CW_WINDOW_SUM_I_SIZE 8u
#define CW_WINDOW_SUM_VV_OFFSET 28u
#define CW_WINDOW_SUM_VV_SIZE 8u
#define CW_WINDOW_SUM_II_OFFSET 36u
#define CW_WINDOW_SUM_II_SIZE 8u
#define CW_WINDOW_SUM_VI_OFFSET 44u
#define CW_WINDOW_SUM_VI_SIZE 8u
#define CW_WINDOW_MIN_V_OFFSET 52u
#define CW_WINDOW_MIN_V_SIZE 2u
#define CW_WINDOW_MAX_V_OFFSET 54u
#define CW_WINDOW_MAX_V_SIZE 2u
#define CW_WINDOW_MIN_I_OFFSET 56u
#define CW_WINDOW_MIN_I_SIZE 2u
#define CW_WINDOW_MAX_I_OFFSET 58u
#define CW_WINDOW_MAX_I_SIZE 2u
#define CW_WINDOW_ZC_COUNT_OFFSET 60u
#define CW_WINDOW_ZC_COUNT_SIZE 2u
#define CW_WINDOW_ZC_FIRST_OFFSET_OFFSET 62u
#define CW_WINDOW_ZC_FIRST_OFFSET_SIZE 4u
#define CW_WINDOW_ZC_FIRST_PREV_OFFSET 66u
#define CW_WINDOW_ZC_FIRST_PREV_SIZE 2u
#define CW_WINDOW_ZC_FIRST_CUR_OFFSET 68u
#define CW_WINDOW_ZC_FIRST_CUR_SIZE 2u
#define CW_WINDOW_ZC_LAST_OFFSET_OFFSET 70u
#define CW_WINDOW_ZC_LAST_OFFSET_SIZE 4u
#define CW_WINDOW_ZC_LAST_PREV_OFFSET 74u
#define CW_WINDOW_ZC_LAST_PREV_SIZE 2u
#define CW_WINDOW_ZC_LAST_CUR_OFFSET 76u
#define CW_WINDOW_ZC_LAST_CUR_SIZE 2u
#define CW_WINDOW_FLAGS_OFFSET 78u
#define CW_WINDOW_FLAGS_SIZE 2u
#define CW_WINDOW_CONFIG_SEQ_OFFSET 80u
#define CW_WINDOW_CONFIG_SEQ_SIZE 2u

/* energy (device-to-host): Snapshot of the never-wrapping energy accumulator E (Σ v·i since reset), taken at a window end. */
#define CW_ENERGY_BODY_BYTES 28u
struct cw_energy {
    uint64_t end_index; /* the accumulator holds every sample before this index */
    uint8_t  energy[16]; /* E, sign-extended from the 96-bit accumulator; i128, little-endian two's complement */
    uint32_t boot_id; /* boot the accumulator belongs to */
} __attribute__((packed));
_Static_assert(sizeof(struct cw_energy) == 28, "struct cw_energy must match the wire layout");
_Static_assert(offsetof(struct cw_energy, end_index) == 0, "cw_energy.end_index offset");
_Static_assert(offsetof(struct cw_energy, energy) == 8, "cw_energy.energy offset");
_Static_assert(offsetof(struct cw_energy, boot_id) == 24, "cw_energy.boot_id offset");
#define CW_ENERGY_END_INDEX_OFFSET 0u
#define CW_ENERGY_END_INDEX_SIZE 8u
#define CW_ENERGY_ENERGY_OFFSET 8u
#define CW_ENERGY_ENERGY_SIZE 16u
#define CW_ENERGY_BOOT_ID_OFFSET 24u
#define CW_ENERGY_BOOT_ID_SIZE 4u

/* capture_chunk (device-to-host): Part of a raw waveform capture: calibrated sample pairs, one every `decimation` samples. */
#define CW_CAPTURE_CHUNK_BODY_BYTES 26u
struct cw_capture_chunk {
    uint16_t capture_id; /* which capture (the ack of cmd_capture names it) */
    uint16_t chunk_index; /* position of this chunk */
    uint16_t chunk_count; /* chunks in the whole capture */
    uint64_t first_index; /* sample index of the first pair of this chunk */
    uint64_t trigger_index; /* sample index of the trigger (a captured pair) */
    uint16_t config_seq; /* configuration the samples were calibrated with */
    uint16_t decimation; /* D, samples between two pairs: pair k of the chunk is sample first_index + k·D */
} __attribute__((packed));
_Static_assert(sizeof(struct cw_capture_chunk) == 26, "struct cw_capture_chunk must match the wire layout");
_Static_assert(offsetof(struct cw_capture_chunk, capture_id) == 0, "cw_capture_chunk.capture_id offset");
_Static_assert(offsetof(struct cw_capture_chunk, chunk_index) == 2, "cw_capture_chunk.chunk_index offset");
_Static_assert(offsetof(struct cw_capture_chunk, chunk_count) == 4, "cw_capture_chunk.chunk_count offset");
_Static_assert(offsetof(struct cw_capture_chunk, first_index) == 6, "cw_capture_chunk.first_index offset");
_Static_assert(offsetof(struct cw_capture_chunk, trigger_index) == 14, "cw_capture_chunk.trigger_index offset");
_Static_assert(offsetof(struct cw_capture_chunk, config_seq) == 22, "cw_capture_chunk.config_seq offset");
_Static_assert(offsetof(struct cw_capture_chunk, decimation) == 24, "cw_capture_chunk.decimation offset");
#define CW_CAPTURE_CHUNK_CAPTURE_ID_OFFSET 0u
#define CW_CAPTURE_CHUNK_CAPTURE_ID_SIZE 2u
#define CW_CAPTURE_CHUNK_CHUNK_INDEX_OFFSET 2u
#define CW_CAPTURE_CHUNK_CHUNK_INDEX_SIZE 2u
#define CW_CAPTURE_CHUNK_CHUNK_COUNT_OFFSET 4u
#define CW_CAPTURE_CHUNK_CHUNK_COUNT_SIZE 2u
#define CW_CAPTURE_CHUNK_FIRST_INDEX_OFFSET 6u
#define CW_CAPTURE_CHUNK_FIRST_INDEX_SIZE 8u
#define CW_CAPTURE_CHUNK_TRIGGER_INDEX_OFFSET 14u
#define CW_CAPTURE_CHUNK_TRIGGER_INDEX_SIZE 8u
#define CW_CAPTURE_CHUNK_CONFIG_SEQ_OFFSET 22u
#define CW_CAPTURE_CHUNK_CONFIG_SEQ_SIZE 2u
#define CW_CAPTURE_CHUNK_DECIMATION_OFFSET 24u
#define CW_CAPTURE_CHUNK_DECIMATION_SIZE 2u
/* sample pairs, oldest first: up to 256 records follow the body, to the CRC */
#define CW_CAPTURE_CHUNK_PAIRS_MAX_COUNT 256u
#define CW_CAPTURE_CHUNK_PAIR_BYTES 4u
struct cw_capture_chunk_pair {
    int16_t v; /* calibrated voltage sample */
    int16_t i; /* calibrated current sample */
} __attribute__((packed));
_Static_assert(sizeof(struct cw_capture_chunk_pair) == 4, "struct cw_capture_chunk_pair must match the wire layout");
_Static_assert(offsetof(struct cw_capture_chunk_pair, v) == 0, "cw_capture_chunk_pair.v offset");
_Static_assert(offsetof(struct cw_capture_chunk_pair, i) == 2, "cw_capture_chunk_pair.i offset");
#define CW_CAPTURE_CHUNK_PAIR_V_OFFSET 0u
#define CW_CAPTURE_CHUNK_PAIR_V_SIZE 2u
#define CW_CAPTURE_CHUNK_PAIR_I_OFFSET 2u
#define CW_CAPTURE_CHUNK_PAIR_I_SIZE 2u

/* status (device-to-host): Health counters, sent once a second and in answer to cmd_status. */
#define CW_STATUS_BODY_BYTES 38u
struct cw_status {
    uint32_t boot_id; /* as in identify */
    uint32_t uptime_ms; /* milliseconds since reset */
    uint32_t frames_dropped; /* frames not sent whole because the link was full (their seq numbers are skipped) */
    uint32_t fifo_overflows; /* windows lost because the result FIFO was full */
    uint32_t samples_dropped; /* ADC samples lost between capture and DSP */
    uint32_t adc_errors; /* ADC frames with a bad leading-zero pattern */
    uint16_t watchdog_resets; /* resets caused by the watchdog */
    uint16_t config_seq; /* configuration commits so far */
    uint32_t link_stalls; /* times a link took no byte for 500 ms while frames waited: frames went to the other link, and a frame torn there was ended with a delimiter and counted in frames_dropped */
    uint16_t uart_rx_overruns; /* bytes the UART dropped because its receive FIFO was full (saturates at 65535) */
    uint32_t waveform_drops; /* decimated waveform samples lost in the device (the gateware FIFO was full; saturates): the host sees them as a jump in the waveform frames' first_index */
} __attribute__((packed));
_Static_assert(sizeof(struct cw_status) == 38, "struct cw_status must match the wire layout");
_Static_assert(offsetof(struct cw_status, boot_id) == 0, "cw_status.boot_id offset");
_Static_assert(offsetof(struct cw_status, uptime_ms) == 4, "cw_status.uptime_ms offset");
_Static_assert(offsetof(struct cw_status, frames_dropped) == 8, "cw_status.frames_dropped offset");
_Static_assert(offsetof(struct cw_status, fifo_overflows) == 12, "cw_status.fifo_overflows offset");
_Static_assert(offsetof(struct cw_status, samples_dropped) == 16, "cw_status.samples_dropped offset");
_Static_assert(offsetof(struct cw_status, adc_errors) == 20, "cw_status.adc_errors offset");
_Static_assert(offsetof(struct cw_status, watchdog_resets) == 24, "cw_status.watchdog_resets offset");
_Static_assert(offsetof(struct cw_status, config_seq) == 26, "cw_status.config_seq offset");
_Static_assert(offsetof(struct cw_status, link_stalls) == 28, "cw_status.link_stalls offset");
_Static_assert(offsetof(struct cw_status, uart_rx_overruns) == 32, "cw_status.uart_rx_overruns offset");
_Static_assert(offsetof(struct cw_status, waveform_drops) == 34, "cw_status.waveform_drops offset");
#define CW_STATUS_BOOT_ID_OFFSET 0u
#define CW_STATUS_BOOT_ID_SIZE 4u
#define CW_STATUS_UPTIME_MS_OFFSET 4u
#define CW_STATUS_UPTIME_MS_SIZE 4u
#define CW_STATUS_FRAMES_DROPPED_OFFSET 8u
#define CW_STATUS_FRAMES_DROPPED_SIZE 4u
#define CW_STATUS_FIFO_OVERFLOWS_OFFSET 12u
#define CW_STATUS_FIFO_OVERFLOWS_SIZE 4u
#define CW_STATUS_SAMPLES_DROPPED_OFFSET 16u
#define CW_STATUS_SAMPLES_DROPPED_SIZE 4u
#define CW_STATUS_ADC_ERRORS_OFFSET 20u
#define CW_STATUS_ADC_ERRORS_SIZE 4u
#define CW_STATUS_WATCHDOG_RESETS_OFFSET 24u
#define CW_STATUS_WATCHDOG_RESETS_SIZE 2u
#define CW_STATUS_CONFIG_SEQ_OFFSET 26u
#define CW_STATUS_CONFIG_SEQ_SIZE 2u
#define CW_STATUS_LINK_STALLS_OFFSET 28u
#define CW_STATUS_LINK_STALLS_SIZE 4u
#define CW_STATUS_UART_RX_OVERRUNS_OFFSET 32u
#define CW_STATUS_UART_RX_OVERRUNS_SIZE 2u
#define CW_STATUS_WAVEFORM_DROPS_OFFSET 34u
#define CW_STATUS_WAVEFORM_DROPS_SIZE 4u

/* ack (device-to-host): Answer to every host command. */
#define CW_ACK_BODY_BYTES 10u
struct cw_ack {
    uint32_t command_seq; /* seq of the command answered */
    uint8_t  command_type; /* type of the command answered */
    uint8_t  status; /* ACK_STATUS */
    uint32_t value; /* command-specific result (cmd_capture: capture_id; cmd_configure: config_seq) */
} __attribute__((packed));
_Static_assert(sizeof(struct cw_ack) == 10, "struct cw_ack must match the wire layout");
_Static_assert(offsetof(struct cw_ack, command_seq) == 0, "cw_ack.command_seq offset");
_Static_assert(offsetof(struct cw_ack, command_type) == 4, "cw_ack.command_type offset");
_Static_assert(offsetof(struct cw_ack, status) == 5, "cw_ack.status offset");
_Static_assert(offsetof(struct cw_ack, value) == 6, "cw_ack.value offset");
#define CW_ACK_COMMAND_SEQ_OFFSET 0u
#define CW_ACK_COMMAND_SEQ_SIZE 4u
#define CW_ACK_COMMAND_TYPE_OFFSET 4u
#define CW_ACK_COMMAND_TYPE_SIZE 1u
#define CW_ACK_STATUS_OFFSET 5u
#define CW_ACK_STATUS_SIZE 1u
#define CW_ACK_VALUE_OFFSET 6u
#define CW_ACK_VALUE_SIZE 4u

/* cmd_identify (host-to-device): Ask for an identify frame. */
#define CW_CMD_IDENTIFY_BODY_BYTES 0u
/* no body: the frame is the header and the CRC */

/* cmd_configure (host-to-device): Set the window rules; committed with the calibration at a sample boundary (docs/dsp.md). */
#define CW_CMD_CONFIGURE_BODY_BYTES 13u
struct cw_cmd_configure {
    uint8_t  mode; /* WINDOW_MODE: 0 whole cycles, 1 fixed sample count */
    uint16_t cycles; /* K, cycles per window in CYCLES mode (1..1000) */
    uint32_t fixed_samples; /* N, samples per window in FIXED mode (1..2^24) */
    uint32_t max_samples; /* M, timeout of a CYCLES window in samples (1..2^24) */
    uint16_t zc_hysteresis; /* zero-crossing arming threshold, ADC LSB (0..32767) */
} __attribute__((packed));
_Static_assert(sizeof(struct cw_cmd_configure) == 13, "struct cw_cmd_configure must match the wire layout");
_Static_assert(offsetof(struct cw_cmd_configure, mode) == 0, "cw_cmd_configure.mode offset");
_Static_assert(offsetof(struct cw_cmd_configure, cycles) == 1, "cw_cmd_configure.cycles offset");
_Static_assert(offsetof(struct cw_cmd_configure, fixed_samples) == 3, "cw_cmd_configure.fixed_samples offset");
_Static_assert(offsetof(struct cw_cmd_configure, max_samples) == 7, "cw_cmd_configure.max_samples offset");
_Static_assert(offsetof(struct cw_cmd_configure, zc_hysteresis) == 11, "cw_cmd_configure.zc_hysteresis offset");
#define CW_CMD_CONFIGURE_MODE_OFFSET 0u
#define CW_CMD_CONFIGURE_MODE_SIZE 1u
#define CW_CMD_CONFIGURE_CYCLES_OFFSET 1u
#define CW_CMD_CONFIGURE_CYCLES_SIZE 2u
#define CW_CMD_CONFIGURE_FIXED_SAMPLES_OFFSET 3u
#define CW_CMD_CONFIGURE_FIXED_SAMPLES_SIZE 4u
#define CW_CMD_CONFIGURE_MAX_SAMPLES_OFFSET 7u
#define CW_CMD_CONFIGURE_MAX_SAMPLES_SIZE 4u
#define CW_CMD_CONFIGURE_ZC_HYSTERESIS_OFFSET 11u
#define CW_CMD_CONFIGURE_ZC_HYSTERESIS_SIZE 2u

/* cmd_calibrate (host-to-device): Set offsets, gains and phase; committed at a sample boundary (docs/dsp.md). */
#define CW_CMD_CALIBRATE_BODY_BYTES 12u
struct cw_cmd_calibrate {
    int16_t  v_offset; /* voltage offset, quarter-LSB of the centred ADC code */
    int16_t  i_offset; /* current offset, quarter-LSB of the centred ADC code */
    uint16_t v_gain; /* voltage gain, Q2.14 (16384 = 1.0) */
    uint16_t i_gain; /* current gain, Q2.14 (16384 = 1.0) */
    int32_t  phase; /* delay of current vs voltage in 1/65536 sample; negative delays voltage */
} __attribute__((packed));
_Static_assert(sizeof(struct cw_cmd_calibrate) == 12, "struct cw_cmd_calibrate must match the wire layout");
_Static_assert(offsetof(struct cw_cmd_calibrate, v_offset) == 0, "cw_cmd_calibrate.v_offset offset");
_Static_assert(offsetof(struct cw_cmd_calibrate, i_offset) == 2, "cw_cmd_calibrate.i_offset offset");
_Static_assert(offsetof(struct cw_cmd_calibrate, v_gain) == 4, "cw_cmd_calibrate.v_gain offset");
_Static_assert(offsetof(struct cw_cmd_calibrate, i_gain) == 6, "cw_cmd_calibrate.i_gain offset");
_Static_assert(offsetof(struct cw_cmd_calibrate, phase) == 8, "cw_cmd_calibrate.phase offset");
#define CW_CMD_CALIBRATE_V_OFFSET_OFFSET 0u
#define CW_CMD_CALIBRATE_V_OFFSET_SIZE 2u
#define CW_CMD_CALIBRATE_I_OFFSET_OFFSET 2u
#define CW_CMD_CALIBRATE_I_OFFSET_SIZE 2u
#define CW_CMD_CALIBRATE_V_GAIN_OFFSET 4u
#define CW_CMD_CALIBRATE_V_GAIN_SIZE 2u
#define CW_CMD_CALIBRATE_I_GAIN_OFFSET 6u
#define CW_CMD_CALIBRATE_I_GAIN_SIZE 2u
#define CW_CMD_CALIBRATE_PHASE_OFFSET 8u
#define CW_CMD_CALIBRATE_PHASE_SIZE 4u

/* cmd_capture (host-to-device): Arm a raw capture. */
#define CW_CMD_CAPTURE_BODY_BYTES 11u
struct cw_cmd_capture {
    uint16_t pairs; /* sample pairs to capture (1..capture_depth) */
    uint8_t  trigger; /* CAPTURE_TRIGGER */
    int16_t  level; /* trigger level, ADC LSB */
    uint16_t pretrigger; /* pairs kept from before the trigger (< pairs) */
    uint16_t decimation; /* D, keep every D-th sample pair (1..65535; 1 = every sample) */
    uint16_t hysteresis; /* trigger hysteresis, ADC LSB (0..32767): the channel must go beyond level ∓ hysteresis before a crossing counts */
} __attribute__((packed));
_Static_assert(sizeof(struct cw_cmd_capture) == 11, "struct cw_cmd_capture must match the wire layout");
_Static_assert(offsetof(struct cw_cmd_capture, pairs) == 0, "cw_cmd_capture.pairs offset");
_Static_assert(offsetof(struct cw_cmd_capture, trigger) == 2, "cw_cmd_capture.trigger offset");
_Static_assert(offsetof(struct cw_cmd_capture, level) == 3, "cw_cmd_capture.level offset");
_Static_assert(offsetof(struct cw_cmd_capture, pretrigger) == 5, "cw_cmd_capture.pretrigger offset");
_Static_assert(offsetof(struct cw_cmd_capture, decimation) == 7, "cw_cmd_capture.decimation offset");
_Static_assert(offsetof(struct cw_cmd_capture, hysteresis) == 9, "cw_cmd_capture.hysteresis offset");
#define CW_CMD_CAPTURE_PAIRS_OFFSET 0u
#define CW_CMD_CAPTURE_PAIRS_SIZE 2u
#define CW_CMD_CAPTURE_TRIGGER_OFFSET 2u
#define CW_CMD_CAPTURE_TRIGGER_SIZE 1u
#define CW_CMD_CAPTURE_LEVEL_OFFSET 3u
#define CW_CMD_CAPTURE_LEVEL_SIZE 2u
#define CW_CMD_CAPTURE_PRETRIGGER_OFFSET 5u
#define CW_CMD_CAPTURE_PRETRIGGER_SIZE 2u
#define CW_CMD_CAPTURE_DECIMATION_OFFSET 7u
#define CW_CMD_CAPTURE_DECIMATION_SIZE 2u
#define CW_CMD_CAPTURE_HYSTERESIS_OFFSET 9u
#define CW_CMD_CAPTURE_HYSTERESIS_SIZE 2u

/* cmd_status (host-to-device): Ask for a status frame. */
#define CW_CMD_STATUS_BODY_BYTES 0u
/* no body: the frame is the header and the CRC */

/* cmd_reboot (host-to-device): Reconfigure the FPGA from flash (PROGRAMN): after the ack and any calibration save, foboot starts again (r0.1: it stays in DFU; r0.2: it starts this bitstream, or stays in DFU while the button is held). */
#define CW_CMD_REBOOT_BODY_BYTES 0u
/* no body: the frame is the header and the CRC */

/* waveform (device-to-host): A block of the decimated waveform stream (docs/dsp.md, Decimated waveform): consecutive stream samples at fs/512, sent continuously. */
#define CW_WAVEFORM_BODY_BYTES 8u
struct cw_waveform {
    uint64_t first_index; /* the 4 Msps sample index n_j the first sample represents (n_j = 322 + 512·j); the next frame continues at first_index + 512·count unless samples were lost */
} __attribute__((packed));
_Static_assert(sizeof(struct cw_waveform) == 8, "struct cw_waveform must match the wire layout");
_Static_assert(offsetof(struct cw_waveform, first_index) == 0, "cw_waveform.first_index offset");
#define CW_WAVEFORM_FIRST_INDEX_OFFSET 0u
#define CW_WAVEFORM_FIRST_INDEX_SIZE 8u
/* stream samples, oldest first, 512 input samples apart: up to 64 records follow the body, to the CRC */
#define CW_WAVEFORM_PAIRS_MAX_COUNT 64u
#define CW_WAVEFORM_PAIR_BYTES 8u
struct cw_waveform_pair {
    int32_t v; /* decimated voltage, q (19-bit signed) */
    int32_t i; /* decimated current, q (19-bit signed) */
} __attribute__((packed));
_Static_assert(sizeof(struct cw_waveform_pair) == 8, "struct cw_waveform_pair must match the wire layout");
_Static_assert(offsetof(struct cw_waveform_pair, v) == 0, "cw_waveform_pair.v offset");
_Static_assert(offsetof(struct cw_waveform_pair, i) == 4, "cw_waveform_pair.i offset");
#define CW_WAVEFORM_PAIR_V_OFFSET 0u
#define CW_WAVEFORM_PAIR_V_SIZE 4u
#define CW_WAVEFORM_PAIR_I_OFFSET 4u
#define CW_WAVEFORM_PAIR_I_SIZE 4u

/* cmd_adc_delay (host-to-device): Set or read the ADC capture point, ADC.READ_DELAY (docs/soc.md), for the bring-up scan (`crabwatt bringup`). The ack's value: ADC_DELAY layout (READ_DELAY, SETTLED, adc_errors). Not saved: a reset returns the gateware's default (43), so the host sets it again on connect. */
#define CW_CMD_ADC_DELAY_BODY_BYTES 2u
struct cw_cmd_adc_delay {
    uint16_t read_delay; /* capture point in 1/64 SCLK periods (0..255), or ADC_DELAY.KEEP (0xFFFF) to only ask */
} __attribute__((packed));
_Static_assert(sizeof(struct cw_cmd_adc_delay) == 2, "struct cw_cmd_adc_delay must match the wire layout");
_Static_assert(offsetof(struct cw_cmd_adc_delay, read_delay) == 0, "cw_cmd_adc_delay.read_delay offset");
#define CW_CMD_ADC_DELAY_READ_DELAY_OFFSET 0u
#define CW_CMD_ADC_DELAY_READ_DELAY_SIZE 2u

#endif /* CRABWATT_PROTOCOL_H */
