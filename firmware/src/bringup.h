/* The commands of the bring-up procedure (`crabwatt bringup`, docs/hardware-setup.md): kept out of
 * app.c, which dispatches to them. */
#ifndef CRABWATT_BRINGUP_H
#define CRABWATT_BRINGUP_H

#include <stddef.h>
#include <stdint.h>

/* cmd_adc_delay: sets ADC.READ_DELAY unless asked to keep it, and answers with the ack value of
 * CW_ADC_DELAY_* (the capture point, SETTLED, the adc_errors counter's low half). Returns the ack
 * status. */
uint8_t bringup_adc_delay(const uint8_t *body, size_t body_len, uint32_t *value);

#endif
