#include "bringup.h"

#include <string.h>

#include "crabwatt_protocol.h"
#include "hal.h"

uint8_t bringup_adc_delay(const uint8_t *body, size_t body_len, uint32_t *value)
{
    struct cw_cmd_adc_delay c;
    if (body_len != sizeof c) {
        return CW_ACK_BAD_LENGTH;
    }
    memcpy(&c, body, sizeof c);
    if (c.read_delay != CW_ADC_DELAY_KEEP && c.read_delay > CW_ADC_DELAY_MAX) {
        return CW_ACK_BAD_ARGS;
    }
    if (c.read_delay != CW_ADC_DELAY_KEEP) {
        hal_adc_read_delay_set((uint8_t)c.read_delay);
    }
    /* Read back after the write, so the answer describes the new setting: SETTLED clears as soon as
     * READ_DELAY's phase differs from the PLL's. */
    *value = (uint32_t)hal_adc_read_delay() | (hal_adc_read_settled() ? CW_ADC_DELAY_SETTLED_BIT : 0u) |
             (hal_adc_errors() & 0xFFFFu) << CW_ADC_DELAY_ERRORS_SHIFT;
    return CW_ACK_OK;
}
