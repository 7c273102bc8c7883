/* links.c through app.c on the fake hardware: a command burst the firmware hears more slowly than the
 * line brings it, and links whose host stops reading. Time is the fake's millisecond counter, set by
 * the tests, never the clock of the machine running them. */
#include <string.h>

#include "app_harness.h"
#include "check.h"
#include "hal_fake.h"

static struct cw_status last_status(size_t n)
{
    struct cw_status st = {0};
    for (size_t k = 0; k < n; k++) {
        if (sent[k].type == CW_TYPE_STATUS) {
            CHECK_EQ(sent[k].body_len, sizeof st);
            memcpy(&st, sent[k].body, sizeof st);
        }
    }
    return st;
}

/* Hearing and committing a cmd_configure costs the firmware longer than its 25 bytes take on the line
 * (40 bytes arrive meanwhile), as on the twin with a line a little faster than the board's. The UART's
 * 64-byte FIFO drops what finds it full: a firmware that reads it only as fast as it handles commands
 * loses part of a burst whatever else it does; one that moves the FIFO to RAM between commands hears
 * a burst of up to its receive ring whole. */
TEST(links_a_burst_faster_than_the_firmware_handles_it_is_heard_whole)
{
    boot();
    app_poll(&app);
    take_frames(HAL_LINK_UART);
    fake_link_t *uart = &fake.link[HAL_LINK_UART];
    uart->fifo_bytes = 64;
    uart->line_bytes_per_commit = 40;
    const uint32_t first_seq = 100, commands = 40;
    for (uint32_t k = 0; k < commands; k++) {
        struct cw_cmd_configure c = {.mode = CW_WINDOW_MODE_CYCLES, .cycles = (uint16_t)(1 + k), .fixed_samples = 4000,
                                     .max_samples = 400000, .zc_hysteresis = 64};
        send_command(HAL_LINK_UART, CW_TYPE_CMD_CONFIGURE, first_seq + k, &c, sizeof c);
    }
    CHECK(uart->rx_len > 15 * uart->fifo_bytes);
    CHECK(uart->rx_len <= LINKS_UART_RX_RING_BYTES);
    fake_line_advance(HAL_LINK_UART, uart->fifo_bytes); /* the FIFO is full before the firmware looks */
    for (int k = 0; k < 1000 && fake_link_unread(HAL_LINK_UART) > 0; k++) {
        app_poll(&app);
        fake_line_advance(HAL_LINK_UART, 8); /* a poll with little to do is short */
    }
    poll_until_heard(HAL_LINK_UART);
    fake.uptime_ms += APP_STATUS_PERIOD_MS;
    app_poll(&app);

    size_t n = take_frames(HAL_LINK_UART);
    uint32_t acked = 0;
    for (size_t k = 0; k < n; k++) {
        if (sent[k].type != CW_TYPE_ACK) continue;
        struct cw_ack a = ack_of(&sent[k]);
        CHECK_EQ(a.command_seq, first_seq + acked);
        CHECK_EQ(a.status, CW_ACK_OK);
        acked++;
    }
    CHECK_EQ(acked, commands);
    CHECK_EQ(fake.dsp.cycles, commands);
    CHECK_EQ(uart->rx_overruns, 0);
    CHECK_EQ(app.rx_errors, 0);
    CHECK_EQ(last_status(n).uart_rx_overruns, 0);
}

/* What the UART drops is reported, so a host can tell its commands were lost on the line. */
TEST(links_status_reports_the_uarts_receive_overruns)
{
    boot();
    fake.link[HAL_LINK_UART].rx_overruns = 9;
    fake.uptime_ms = APP_STATUS_PERIOD_MS;
    app_poll(&app);
    size_t n = take_frames(HAL_LINK_UART);
    CHECK_EQ(last_status(n).uart_rx_overruns, 9);
}

/* USB is enumerated and took the start of a frame, then its host stopped reading (port closed, host
 * suspended, cable pulled without USB noticing). A host on the UART is answered once USB has taken
 * nothing for LINKS_STALL_MS: the torn frame is abandoned and counted, and when USB is read again it
 * first gets the delimiter that ends the torn frame, so its host loses that frame only. */
TEST(links_a_usb_host_that_stops_reading_mid_frame_is_given_up_for_the_uart)
{
    boot();
    app_poll(&app);
    take_frames(HAL_LINK_UART);
    fake.usb_up = true;
    fake.link[HAL_LINK_USB].tx_free = 10;
    fake.uptime_ms = 1000;
    app_poll(&app); /* the periodic status goes to USB, which takes 10 bytes of it */
    CHECK_EQ(fake.link[HAL_LINK_USB].tx_len, 10);

    send_command(HAL_LINK_UART, CW_TYPE_CMD_STATUS, 7, NULL, 0);
    for (uint32_t ms = 1000; ms < 1000 + LINKS_STALL_MS; ms += 10) {
        fake.uptime_ms = ms;
        app_poll(&app);
    }
    CHECK_EQ(take_frames(HAL_LINK_UART), 0); /* still waiting for the torn frame's end */
    CHECK_EQ(app.links.stalls, 0);

    fake.uptime_ms = 1000 + LINKS_STALL_MS;
    app_poll(&app);
    app_poll(&app);
    size_t n = take_frames(HAL_LINK_UART);
    CHECK_EQ(n, 2);
    CHECK_EQ(sent[0].type, CW_TYPE_STATUS);
    CHECK_EQ(ack_of(&sent[1]).command_seq, 7);
    CHECK_EQ(fake.link[HAL_LINK_USB].tx_len, 10);

    fake.uptime_ms = 1000 + LINKS_STALL_MS + APP_STATUS_PERIOD_MS;
    app_poll(&app);
    n = take_frames(HAL_LINK_UART);
    CHECK_EQ(n, 1);
    struct cw_status st = last_status(n);
    CHECK_EQ(st.link_stalls, 1);
    CHECK_EQ(st.frames_dropped, 1); /* the torn frame */

    /* USB's host reads again: the torn frame is ended; frames stay with the host that spoke. */
    fake.link[HAL_LINK_USB].tx_free = 1u << 16;
    app_poll(&app);
    const fake_link_t *usb = &fake.link[HAL_LINK_USB];
    CHECK_EQ(usb->tx_len, 11);
    CHECK_EQ(usb->tx[10], 0);
    uint8_t torn[10];
    memcpy(torn, usb->tx, sizeof torn);
    frame_view_t v;
    CHECK(frame_decode(torn, sizeof torn, &v) != FRAME_OK);
    fake.uptime_ms += APP_STATUS_PERIOD_MS;
    app_poll(&app);
    CHECK_EQ(take_frames(HAL_LINK_UART), 1);
    CHECK_EQ(usb->tx_len, 11);
}

/* No host has spoken: frames go to USB while it is enumerated, but not forever when nobody reads it. */
TEST(links_frames_go_to_the_uart_while_usb_is_enumerated_but_never_read)
{
    boot();
    app_poll(&app);
    take_frames(HAL_LINK_UART);
    fake.usb_up = true;
    fake.link[HAL_LINK_USB].tx_free = 0;
    fake.uptime_ms = 1000;
    app_poll(&app);
    fake.uptime_ms = 1000 + LINKS_STALL_MS - 1;
    app_poll(&app);
    CHECK_EQ(take_frames(HAL_LINK_UART), 0);

    fake.uptime_ms = 1000 + LINKS_STALL_MS;
    app_poll(&app);
    app_poll(&app);
    CHECK_EQ(take_frames(HAL_LINK_UART), 1); /* the status that waited for USB */
    fake.uptime_ms = 2000 + LINKS_STALL_MS;
    app_poll(&app);
    size_t n = take_frames(HAL_LINK_UART);
    CHECK_EQ(n, 1);
    struct cw_status st = last_status(n);
    CHECK_EQ(st.link_stalls, 1);
    CHECK_EQ(st.frames_dropped, 0); /* nothing was torn: USB never took a byte */

    /* Its host reads again: frames go back to USB, whole. */
    fake.link[HAL_LINK_USB].tx_free = 1u << 16;
    app_poll(&app);
    fake.uptime_ms = 3000 + LINKS_STALL_MS;
    app_poll(&app);
    CHECK_EQ(take_frames(HAL_LINK_USB), 1);
    CHECK_EQ(take_frames(HAL_LINK_UART), 0);
}

/* With nowhere else to go, a stalled UART keeps its frame: frames wait, whole ones are dropped when
 * the ring is full (and counted), and nothing on the wire is torn. */
TEST(links_a_stalled_uart_with_usb_down_tears_nothing)
{
    boot();
    app_poll(&app);
    take_frames(HAL_LINK_UART);
    fake.link[HAL_LINK_UART].tx_free = 10;
    fake.uptime_ms = 1000;
    app_poll(&app);
    for (uint32_t ms = 1000; ms <= 1000 + 10 * LINKS_STALL_MS; ms += 100) {
        fake.uptime_ms = ms;
        app_poll(&app);
    }
    CHECK_EQ(app.links.stalls, 1);
    CHECK_EQ(app.links.frames_torn, 0);
    fake.link[HAL_LINK_UART].tx_free = 1u << 16;
    app_poll(&app);
    size_t n = take_frames(HAL_LINK_UART); /* every frame decodes */
    CHECK(n >= 5);
    CHECK_EQ(fake.link[HAL_LINK_USB].tx_len, 0);
}
