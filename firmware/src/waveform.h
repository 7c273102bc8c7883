/* The decimated waveform stream (docs/dsp.md, Decimated waveform): samples from the gateware's
 * waveform FIFO cut into `waveform` frames of consecutive samples. A frame ends at
 * WAVEFORM_FRAME_SAMPLES samples or where the gateware dropped samples (the FIFO was full), so a
 * host sees a loss as a jump in first_index; WAVEFORM.DROPS counts it on the device. */
#ifndef CRABWATT_WAVEFORM_H
#define CRABWATT_WAVEFORM_H

#include <stdbool.h>
#include <stdint.h>

#include "crabwatt_protocol.h"

/* Stream samples per frame (4.1 ms of signal): 6 + 8 + 32*8 + 4 bytes before COBS, 9 % overhead. */
#define WAVEFORM_FRAME_SAMPLES 32u
/* Samples taken from the FIFO per poll: the FIFO holds 256 (33 ms), a poll is far shorter. */
#define WAVEFORM_SAMPLES_PER_POLL 64u
/* docs/dsp.md: stream sample j represents 4 Msps sample WAVEFORM_FIRST_INDEX + WAVEFORM_DECIMATION*j. */
#define WAVEFORM_FIRST_INDEX 322u
#define WAVEFORM_DECIMATION 512u
#define WAVEFORM_J_BITS 26u

typedef struct {
    struct cw_waveform head;      /* first_index of the frame being filled */
    struct cw_waveform_pair samples[WAVEFORM_FRAME_SAMPLES];
    uint32_t count;               /* samples in the frame being filled */
    uint64_t next_j;              /* j the next sample continues the frame with */
    bool ready;                   /* a frame is complete: send it, then call waveform_sent() */
    struct cw_waveform_pair carry; /* a sample that did not continue the ready frame */
    uint64_t carry_j;
    bool has_carry;
} waveform_t;                      /* all zero: nothing received yet */

/* Takes samples from the FIFO until a frame is complete (returns true: send w->head and the first
 * w->count samples, then call waveform_sent()) or the FIFO is empty or the poll's share is used. */
bool waveform_poll(waveform_t *w);

/* The ready frame has been handed to the links (or dropped); start the next one. */
void waveform_sent(waveform_t *w);

#endif
