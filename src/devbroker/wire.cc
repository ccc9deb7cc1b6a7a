#include "devbroker/wire.h"

#include <cstring>

namespace devbroker {

namespace {

uint64_t LoadBig(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) {
    v = (v << 8) | static_cast<uint8_t>(p[i]);
  }
  return v;
}

void StoreBig(char* p, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

}  // namespace

int64_t LoadInt64(const char* p) { return static_cast<int64_t>(LoadBig(p, 8)); }
int32_t LoadInt32(const char* p) { return static_cast<int32_t>(LoadBig(p, 4)); }
int16_t LoadInt16(const char* p) { return static_cast<int16_t>(LoadBig(p, 2)); }
void StoreInt64(char* p, int64_t v) { StoreBig(p, static_cast<uint64_t>(v), 8); }
void StoreInt32(char* p, int32_t v) {
  StoreBig(p, static_cast<uint32_t>(v), 4);
}

bool WireReader::Need(size_t n) {
  if (!ok_ || size_ - pos_ < n) {
    ok_ = false;
    return false;
  }
  return true;
}

int8_t WireReader::ReadInt8() {
  if (!Need(1)) return 0;
  return static_cast<int8_t>(data_[pos_++]);
}

int16_t WireReader::ReadInt16() {
  if (!Need(2)) return 0;
  int16_t v = LoadInt16(data_ + pos_);
  pos_ += 2;
  return v;
}

int32_t WireReader::ReadInt32() {
  if (!Need(4)) return 0;
  int32_t v = LoadInt32(data_ + pos_);
  pos_ += 4;
  return v;
}

uint32_t WireReader::ReadUint32() {
  return static_cast<uint32_t>(ReadInt32());
}

int64_t WireReader::ReadInt64() {
  if (!Need(8)) return 0;
  int64_t v = LoadInt64(data_ + pos_);
  pos_ += 8;
  return v;
}

uint64_t WireReader::ReadUnsignedVarint() {
  uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (!Need(1)) return 0;
    uint8_t b = static_cast<uint8_t>(data_[pos_++]);
    value |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return value;
  }
  ok_ = false;  // more than 10 bytes
  return 0;
}

int32_t WireReader::ReadVarint() {
  uint64_t raw = ReadUnsignedVarint();
  if (raw > 0xffffffffULL) {
    ok_ = false;
    return 0;
  }
  uint32_t u = static_cast<uint32_t>(raw);
  return static_cast<int32_t>((u >> 1) ^ (~(u & 1) + 1));
}

int64_t WireReader::ReadVarlong() {
  uint64_t u = ReadUnsignedVarint();
  return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
}

std::optional<std::string> WireReader::ReadNullableString() {
  int16_t len = ReadInt16();
  if (!ok_) return std::nullopt;
  if (len == -1) return std::nullopt;
  if (len < 0) {
    ok_ = false;
    return std::nullopt;
  }
  std::string_view raw = ReadRaw(static_cast<size_t>(len));
  if (!ok_) return std::nullopt;
  return std::string(raw);
}

std::string WireReader::ReadString() {
  std::optional<std::string> s = ReadNullableString();
  if (!s.has_value()) {
    ok_ = false;
    return std::string();
  }
  return std::move(*s);
}

std::optional<std::string> WireReader::ReadCompactNullableString() {
  uint64_t len_plus_one = ReadUnsignedVarint();
  if (!ok_ || len_plus_one == 0) return std::nullopt;
  if (len_plus_one - 1 > remaining()) {
    ok_ = false;
    return std::nullopt;
  }
  std::string_view raw = ReadRaw(static_cast<size_t>(len_plus_one - 1));
  if (!ok_) return std::nullopt;
  return std::string(raw);
}

std::string WireReader::ReadCompactString() {
  std::optional<std::string> s = ReadCompactNullableString();
  if (!s.has_value()) {
    ok_ = false;
    return std::string();
  }
  return std::move(*s);
}

std::optional<std::string_view> WireReader::ReadNullableBytes() {
  int32_t len = ReadInt32();
  if (!ok_ || len == -1) return std::nullopt;
  if (len < 0) {
    ok_ = false;
    return std::nullopt;
  }
  std::string_view raw = ReadRaw(static_cast<size_t>(len));
  if (!ok_) return std::nullopt;
  return raw;
}

std::optional<std::string_view> WireReader::ReadCompactNullableBytes() {
  uint64_t len_plus_one = ReadUnsignedVarint();
  if (!ok_ || len_plus_one == 0) return std::nullopt;
  if (len_plus_one - 1 > remaining()) {
    ok_ = false;
    return std::nullopt;
  }
  std::string_view raw = ReadRaw(static_cast<size_t>(len_plus_one - 1));
  if (!ok_) return std::nullopt;
  return raw;
}

int32_t WireReader::ReadArrayLength() {
  int32_t n = ReadInt32();
  if (!ok_) return 0;
  if (n == -1) return -1;
  if (n < 0 || static_cast<size_t>(n) > remaining()) {
    ok_ = false;
    return 0;
  }
  return n;
}

int32_t WireReader::ReadCompactArrayLength() {
  uint64_t n_plus_one = ReadUnsignedVarint();
  if (!ok_) return 0;
  if (n_plus_one == 0) return -1;
  if (n_plus_one - 1 > remaining()) {
    ok_ = false;
    return 0;
  }
  return static_cast<int32_t>(n_plus_one - 1);
}

void WireReader::SkipTaggedFields() {
  uint64_t count = ReadUnsignedVarint();
  if (!ok_) return;
  if (count > remaining()) {
    ok_ = false;
    return;
  }
  for (uint64_t i = 0; i < count && ok_; ++i) {
    ReadUnsignedVarint();  // tag
    uint64_t size = ReadUnsignedVarint();
    if (!ok_ || size > remaining()) {
      ok_ = false;
      return;
    }
    ReadRaw(static_cast<size_t>(size));
  }
}

std::string_view WireReader::ReadRaw(size_t n) {
  if (!Need(n)) return std::string_view();
  std::string_view v(data_ + pos_, n);
  pos_ += n;
  return v;
}

void WireWriter::WriteInt16(int16_t v) {
  char b[2];
  StoreBig(b, static_cast<uint16_t>(v), 2);
  buf_.append(b, 2);
}

void WireWriter::WriteInt32(int32_t v) {
  char b[4];
  StoreBig(b, static_cast<uint32_t>(v), 4);
  buf_.append(b, 4);
}

void WireWriter::WriteUint32(uint32_t v) {
  WriteInt32(static_cast<int32_t>(v));
}

void WireWriter::WriteInt64(int64_t v) {
  char b[8];
  StoreBig(b, static_cast<uint64_t>(v), 8);
  buf_.append(b, 8);
}

void WireWriter::WriteUnsignedVarint(uint64_t v) {
  while (v >= 0x80) {
    buf_.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  buf_.push_back(static_cast<char>(v));
}

void WireWriter::WriteVarint(int32_t v) {
  uint32_t u = (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31);
  WriteUnsignedVarint(u);
}

void WireWriter::WriteVarlong(int64_t v) {
  uint64_t u = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
  WriteUnsignedVarint(u);
}

void WireWriter::WriteString(std::string_view s) {
  WriteInt16(static_cast<int16_t>(s.size()));
  WriteRaw(s);
}

void WireWriter::WriteNullableString(const std::optional<std::string>& s) {
  if (!s.has_value()) {
    WriteNullString();
  } else {
    WriteString(*s);
  }
}

void WireWriter::WriteCompactString(std::string_view s) {
  WriteUnsignedVarint(s.size() + 1);
  WriteRaw(s);
}

void WireWriter::WriteCompactNullableString(
    const std::optional<std::string>& s) {
  if (!s.has_value()) {
    WriteUnsignedVarint(0);
  } else {
    WriteCompactString(*s);
  }
}

void WireWriter::WriteBytes(std::string_view b) {
  WriteInt32(static_cast<int32_t>(b.size()));
  WriteRaw(b);
}

void WireWriter::PatchInt32(size_t pos, int32_t v) {
  StoreBig(&buf_[pos], static_cast<uint32_t>(v), 4);
}

}  // namespace devbroker
