// Kafka wire-format primitives: a bounds-checked reader and an appending
// writer for the big-endian fixed-width, varint, string, bytes, array,
// compact (flexible-version) and tagged-field encodings.

#ifndef DEVBROKER_WIRE_H_
#define DEVBROKER_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace devbroker {

// Reads Kafka primitive types from a borrowed byte range.
//
// Thread-safety: not thread-safe; one instance per parse.
// Contract: every read is bounds-checked. The first failing read (truncated
// input, negative or oversized length, malformed varint) latches ok() to
// false; from then on every read returns a zero/empty value and never touches
// memory outside the range. Callers check ok() once after parsing a message.
class WireReader {
 public:
  WireReader(const char* data, size_t size) : data_(data), size_(size) {}
  explicit WireReader(std::string_view bytes)
      : WireReader(bytes.data(), bytes.size()) {}

  bool ok() const { return ok_; }
  size_t remaining() const { return ok_ ? size_ - pos_ : 0; }
  size_t position() const { return pos_; }
  // Marks the input as malformed.
  void Fail() { ok_ = false; }

  int8_t ReadInt8();
  int16_t ReadInt16();
  int32_t ReadInt32();
  int64_t ReadInt64();
  uint32_t ReadUint32();
  bool ReadBool() { return ReadInt8() != 0; }
  uint64_t ReadUnsignedVarint();
  int32_t ReadVarint();   // zig-zag encoded
  int64_t ReadVarlong();  // zig-zag encoded

  // int16-length string; -1 yields nullopt.
  std::optional<std::string> ReadNullableString();
  // int16-length string that must not be null (null fails the reader).
  std::string ReadString();
  // uvarint(length+1) string; 0 yields nullopt.
  std::optional<std::string> ReadCompactNullableString();
  std::string ReadCompactString();
  // int32-length bytes; -1 yields nullopt. The view borrows the input.
  std::optional<std::string_view> ReadNullableBytes();
  std::optional<std::string_view> ReadCompactNullableBytes();
  // int32 element count; -1 means null (returned as -1). Counts larger than
  // the remaining byte count are rejected, which bounds allocations.
  int32_t ReadArrayLength();
  // uvarint(count+1); null is returned as -1.
  int32_t ReadCompactArrayLength();
  // Skips a tagged-field section (flexible versions).
  void SkipTaggedFields();
  // Returns the next n raw bytes (borrowed).
  std::string_view ReadRaw(size_t n);

 private:
  bool Need(size_t n);

  const char* data_;
  size_t size_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Appends Kafka primitive types to an owned buffer.
//
// Thread-safety: not thread-safe. Contract: writes never fail; callers
// must pass lengths that fit the wire type (strings < 32 KiB).
class WireWriter {
 public:
  WireWriter() = default;

  void WriteInt8(int8_t v) { buf_.push_back(static_cast<char>(v)); }
  void WriteInt16(int16_t v);
  void WriteInt32(int32_t v);
  void WriteInt64(int64_t v);
  void WriteUint32(uint32_t v);
  void WriteBool(bool v) { WriteInt8(v ? 1 : 0); }
  void WriteUnsignedVarint(uint64_t v);
  void WriteVarint(int32_t v);
  void WriteVarlong(int64_t v);

  void WriteString(std::string_view s);
  void WriteNullableString(const std::optional<std::string>& s);
  void WriteNullString() { WriteInt16(-1); }
  void WriteCompactString(std::string_view s);
  void WriteCompactNullableString(const std::optional<std::string>& s);
  void WriteBytes(std::string_view b);
  void WriteNullBytes() { WriteInt32(-1); }
  void WriteArrayLength(int32_t n) { WriteInt32(n); }
  void WriteCompactArrayLength(int32_t n) {
    WriteUnsignedVarint(static_cast<uint64_t>(n) + 1);
  }
  void WriteEmptyTaggedFields() { WriteUnsignedVarint(0); }
  void WriteRaw(std::string_view b) { buf_.append(b.data(), b.size()); }

  size_t size() const { return buf_.size(); }
  // Overwrites 4 bytes at pos with v (big-endian). pos+4 must be <= size().
  void PatchInt32(size_t pos, int32_t v);
  std::string& buffer() { return buf_; }
  std::string Release() { return std::move(buf_); }

 private:
  std::string buf_;
};

// Encodes/decodes big-endian integers at raw memory (no bounds checks; the
// caller guarantees space).
int64_t LoadInt64(const char* p);
int32_t LoadInt32(const char* p);
int16_t LoadInt16(const char* p);
void StoreInt64(char* p, int64_t v);
void StoreInt32(char* p, int32_t v);

}  // namespace devbroker

#endif  // DEVBROKER_WIRE_H_
