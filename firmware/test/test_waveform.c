/* The decimated waveform: app.c sends the gateware's stream samples in `waveform` frames of 32
 * consecutive samples, ends a frame where the gateware dropped samples, and reports the drops in
 * status. */
#include <string.h>

#include "app.h"
#include "app_harness.h"
#include "check.h"
#include "hal_fake.h"

static int32_t v_of(uint64_t j) { return (int32_t)(j * 977u % 524288u) - 262144; }
static int32_t i_of(uint64_t j) { return 262143 - (int32_t)(j * 31u % 524288u); }

static void produce(uint64_t n)
{
    for (uint64_t k = 0; k < n; k++) {
        uint64_t j = fake.wave.count;
        fake_waveform_produce(v_of(j), i_of(j));
    }
}

/* Checks a waveform frame: `count` consecutive samples from stream sample j0. */
static void check_frame(const sent_frame_t *f, uint64_t j0, size_t count)
{
    CHECK_EQ(f->type, CW_TYPE_WAVEFORM);
    CHECK_EQ(f->body_len, sizeof(struct cw_waveform) + count * sizeof(struct cw_waveform_pair));
    struct cw_waveform head;
    memcpy(&head, f->body, sizeof head);
    CHECK_EQ(head.first_index, 322u + 512u * j0);
    for (size_t k = 0; k < count; k++) {
        struct cw_waveform_pair s;
        memcpy(&s, f->body + sizeof head + k * sizeof s, sizeof s);
        CHECK_EQ(s.v, v_of(j0 + k));
        CHECK_EQ(s.i, i_of(j0 + k));
    }
}

static size_t take_waveforms(sent_frame_t *out, size_t cap)
{
    size_t n = take_frames(HAL_LINK_UART), kept = 0;
    for (size_t k = 0; k < n && kept < cap; k++) {
        if (sent[k].type == CW_TYPE_WAVEFORM) out[kept++] = sent[k];
    }
    return kept;
}

static sent_frame_t frames[64];

TEST(waveform_frames_of_32_consecutive_samples)
{
    boot();
    app_poll(&app);
    (void)take_frames(HAL_LINK_UART);
    produce(70);
    for (int k = 0; k < 10; k++) app_poll(&app);
    size_t n = take_waveforms(frames, 64);
    CHECK_EQ(n, 2);
    check_frame(&frames[0], 0, 32);
    check_frame(&frames[1], 32, 32);
    CHECK_EQ(fake.wave.head - fake.wave.tail, 0); /* the last 6 wait in the firmware for their frame */
}

TEST(waveform_ends_a_frame_at_a_gateware_drop_and_counts_it)
{
    boot();
    app_poll(&app);
    (void)take_frames(HAL_LINK_UART);
    produce(20);
    app_poll(&app);                 /* 20 samples wait for their frame */
    produce(256 + 40);              /* the FIFO keeps j 20..275, drops 276..315 */
    CHECK_EQ(fake.wave.drops, 40);
    for (int k = 0; k < 40; k++) app_poll(&app);
    produce(32);                    /* j 316..347 */
    for (int k = 0; k < 10; k++) app_poll(&app);
    size_t n = take_waveforms(frames, 64);
    /* 0..275 in frames of 32 (8 whole, then 20 samples alone at the gap), then 316..347. */
    CHECK_EQ(n, 10);
    for (size_t k = 0; k < 8; k++) check_frame(&frames[k], 32 * k, 32);
    check_frame(&frames[8], 256, 20);
    check_frame(&frames[9], 316, 32);

    fake.uptime_ms += 1000;
    app_poll(&app);
    size_t m = take_frames(HAL_LINK_UART);
    CHECK(m >= 1);
    struct cw_status st;
    CHECK_EQ(sent[m - 1].type, CW_TYPE_STATUS);
    memcpy(&st, sent[m - 1].body, sizeof st);
    CHECK_EQ(st.waveform_drops, 40);
}
