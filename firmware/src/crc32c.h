/* CRC-32C (Castagnoli), as the wire protocol uses it: reflected polynomial 0x82F63B78,
 * initial value and final XOR 0xFFFFFFFF. The check value of "123456789" is 0xE3069283. */
#ifndef CRABWATT_CRC32C_H
#define CRABWATT_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#define CRC32C_INIT 0xFFFFFFFFu

/* Streaming form: crc = crc32c_update(CRC32C_INIT, ...) repeatedly, then crc32c_final(crc). */
uint32_t crc32c_update(uint32_t crc, const uint8_t *data, size_t len);

static inline uint32_t crc32c_final(uint32_t crc) { return crc ^ 0xFFFFFFFFu; }

static inline uint32_t crc32c(const uint8_t *data, size_t len)
{
    return crc32c_final(crc32c_update(CRC32C_INIT, data, len));
}

/* The 256-entry table, exposed so the native tests can check it against the bitwise definition. */
extern const uint32_t crc32c_table[256];

#endif
