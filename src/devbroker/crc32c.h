// CRC-32C (Castagnoli), as used by Kafka record batches (magic 2).

#ifndef DEVBROKER_CRC32C_H_
#define DEVBROKER_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace devbroker {

// Returns the CRC-32C of data[0, size). Thread-safe (pure function).
uint32_t Crc32c(const void* data, size_t size);

}  // namespace devbroker

#endif  // DEVBROKER_CRC32C_H_
