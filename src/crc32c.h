/* CRC32C, the checksum of journal records. */
#ifndef CRC32C_H
#define CRC32C_H
#include <stddef.h>
#include <stdint.h>

/* Continues crc (0 to start) over data[0..len). */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

#endif
