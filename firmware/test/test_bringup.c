/* cmd_adc_delay: the bring-up scan's access to the ADC capture point. */
#include "app_harness.h"
#include "check.h"
#include "hal_fake.h"

static struct cw_ack adc_delay(uint32_t seq, uint16_t read_delay)
{
    struct cw_cmd_adc_delay c = {.read_delay = read_delay};
    return command(CW_TYPE_CMD_ADC_DELAY, seq, &c, sizeof c, NULL);
}

TEST(bringup_adc_delay_sets_and_reports)
{
    boot();
    fake.adc_errors = 0x12345u;
    struct cw_ack a = adc_delay(1, CW_ADC_DELAY_KEEP);
    CHECK_EQ(a.status, CW_ACK_OK);
    CHECK_EQ(a.value, 43u | CW_ADC_DELAY_SETTLED_BIT | 0x2345u << CW_ADC_DELAY_ERRORS_SHIFT);
    CHECK_EQ(fake.adc_read_delay, 43);

    fake.adc_read_settled = false; /* the PLL is on its way */
    a = adc_delay(2, 200);
    CHECK_EQ(a.status, CW_ACK_OK);
    CHECK_EQ(fake.adc_read_delay, 200);
    CHECK_EQ(a.value, 200u | 0x2345u << CW_ADC_DELAY_ERRORS_SHIFT);
}

TEST(bringup_adc_delay_rejects_bad_arguments)
{
    boot();
    CHECK_EQ(adc_delay(1, 256).status, CW_ACK_BAD_ARGS);
    CHECK_EQ(adc_delay(2, 0xFFFE).status, CW_ACK_BAD_ARGS);
    CHECK_EQ(fake.adc_read_delay, 43);
    uint8_t body[3] = {0};
    CHECK_EQ(command(CW_TYPE_CMD_ADC_DELAY, 3, body, sizeof body, NULL).status, CW_ACK_BAD_LENGTH);
    CHECK_EQ(fake.adc_read_delay, 43);
}
