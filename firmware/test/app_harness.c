#include "app_harness.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hal_fake.h"

app_t app;
sent_frame_t sent[MAX_SENT];
size_t read_pos[HAL_LINK_COUNT];

void boot(void)
{
    fake_reset();
    memset(read_pos, 0, sizeof read_pos);
    fake.entropy = 0x5EEDu;
    app_init(&app, 0xB0071D01u);
}

size_t take_frames(int link)
{
    fake_link_t *l = &fake.link[link];
    size_t count = 0;
    size_t start = read_pos[link];
    static uint8_t chunk[FRAME_MAX_WIRE_BYTES];
    for (size_t k = start; k < l->tx_len; k++) {
        if (l->tx[k] != 0) {
            continue;
        }
        size_t len = k - start;
        if (len == 0) { /* an idle delimiter, as the host decoder ignores it */
            start = k + 1;
            continue;
        }
        CHECK(len <= sizeof chunk);
        if (len > sizeof chunk || count == MAX_SENT) {
            abort();
        }
        memcpy(chunk, l->tx + start, len);
        frame_view_t v;
        CHECK_EQ(frame_decode(chunk, len, &v), FRAME_OK);
        sent[count].type = v.type;
        sent[count].seq = v.seq;
        sent[count].body_len = v.body_len;
        memcpy(sent[count].body, v.body, v.body_len);
        count++;
        start = k + 1;
    }
    read_pos[link] = start;
    return count;
}

void send_command(int link, uint8_t type, uint32_t seq, const void *body, size_t len)
{
    uint8_t wire[FRAME_MAX_WIRE_BYTES];
    size_t n = frame_encode(type, seq, body, len, NULL, 0, wire, sizeof wire);
    CHECK(n > 0);
    fake_link_receive(link, wire, n);
}

/* Bytes the host sent on a link that the firmware has not handled yet. */
static size_t unhandled(int link)
{
    return fake_link_unread(link) + (link == HAL_LINK_UART ? ring_used(&app.links.uart_rx) : 0);
}

void poll_until_heard(int link)
{
    for (int k = 0; k < 1000 && unhandled(link) > 0; k++) app_poll(&app);
    CHECK_EQ(unhandled(link), 0);
    app_poll(&app);
}

struct cw_ack ack_of(const sent_frame_t *f)
{
    struct cw_ack a;
    CHECK_EQ(f->type, CW_TYPE_ACK);
    CHECK_EQ(f->body_len, sizeof a);
    memcpy(&a, f->body, sizeof a);
    return a;
}

struct cw_ack command(uint8_t type, uint32_t seq, const void *body, size_t len, size_t *before)
{
    take_frames(HAL_LINK_UART);
    send_command(HAL_LINK_UART, type, seq, body, len);
    poll_until_heard(HAL_LINK_UART);
    size_t n = take_frames(HAL_LINK_UART);
    size_t at = 0;
    while (at < n && sent[at].type != CW_TYPE_ACK) at++;
    CHECK(at < n);
    if (before) *before = at;
    struct cw_ack a = ack_of(&sent[at < n ? at : 0]);
    CHECK_EQ(a.command_seq, seq);
    CHECK_EQ(a.command_type, type);
    return a;
}
