#include "waveform.h"

#include "hal.h"

/* j from its low bits: the sample is at most 256 (the FIFO's depth) behind `count`, far less than
 * 2^26, and j < count. */
static uint64_t extend_j(uint32_t j_low, uint64_t count)
{
    const uint64_t mask = (1ull << WAVEFORM_J_BITS) - 1u;
    return count - ((count - j_low) & mask);
}

static void append(waveform_t *w, struct cw_waveform_pair s, uint64_t j)
{
    if (w->count == 0) {
        w->head.first_index = WAVEFORM_FIRST_INDEX + (uint64_t)WAVEFORM_DECIMATION * j;
    }
    w->samples[w->count++] = s;
    w->next_j = j + 1;
    w->ready = w->count == WAVEFORM_FRAME_SAMPLES;
}

bool waveform_poll(waveform_t *w)
{
    if (w->ready) {
        return true;
    }
    if (w->has_carry) {
        w->has_carry = false;
        append(w, w->carry, w->carry_j);
    }
    uint64_t count = hal_waveform_count();
    for (unsigned n = 0; n < WAVEFORM_SAMPLES_PER_POLL && !w->ready && hal_waveform_level() > 0; n++) {
        int32_t v, i;
        uint32_t j_low;
        hal_waveform_peek(&v, &i, &j_low);
        struct cw_waveform_pair s = {.v = v, .i = i};
        hal_waveform_pop();
        uint64_t j = extend_j(j_low, count);
        if (w->count > 0 && j != w->next_j) {
            /* The gateware dropped samples: what we have goes out alone, this one starts the next frame. */
            w->carry = s;
            w->carry_j = j;
            w->has_carry = true;
            w->ready = true;
            break;
        }
        append(w, s, j);
    }
    return w->ready;
}

void waveform_sent(waveform_t *w)
{
    w->count = 0;
    w->ready = false;
}
