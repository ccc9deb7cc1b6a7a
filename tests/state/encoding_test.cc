// The library's internal byte formats: checkpoint record, TTL prefixes and index
// keys, prefix-scan upper bounds.
#include "encoding.h"

#include <gtest/gtest.h>

#include <limits>

namespace streams::state::internal {
namespace {

TEST(EncodingTest, CheckpointRoundTrips) {
  Checkpoint cp;
  cp.input_offsets.emplace(TopicPartition{"payments", Partition(0)}, Offset(0));
  cp.input_offsets.emplace(TopicPartition{"", Partition(2147483647)},
                           Offset(std::numeric_limits<int64_t>::max()));
  cp.changelog_offsets.emplace("store", Offset(12345678901));
  cp.stream_time = Timestamp(-5);
  auto decoded = DecodeCheckpoint(EncodeCheckpoint(cp));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, cp);

  auto empty = DecodeCheckpoint(EncodeCheckpoint(Checkpoint{}));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, Checkpoint{});
}

TEST(EncodingTest, DamagedCheckpointIsCorruption) {
  Checkpoint cp;
  cp.input_offsets.emplace(TopicPartition{"t", Partition(1)}, Offset(9));
  cp.stream_time = Timestamp(1);
  std::string bytes = EncodeCheckpoint(cp);
  for (size_t len = 0; len < bytes.size(); ++len) {
    EXPECT_EQ(DecodeCheckpoint(bytes.substr(0, len)).status().code(), StatusCode::kCorruption)
        << "truncated to " << len;
  }
  EXPECT_EQ(DecodeCheckpoint(bytes + "x").status().code(), StatusCode::kCorruption);
  std::string other_version = bytes;
  other_version[0] = 2;
  EXPECT_EQ(DecodeCheckpoint(other_version).status().code(), StatusCode::kCorruption);
}

TEST(EncodingTest, TtlValuePrefixIsBigEndianWriteTime) {
  std::string stored = EncodeTtlValue(Timestamp(0x0102030405060708), "v");
  EXPECT_EQ(stored, std::string("\x01\x02\x03\x04\x05\x06\x07\x08v", 9));
  auto ts = DecodeTtlTimestamp(stored);
  ASSERT_TRUE(ts.ok());
  EXPECT_EQ(*ts, Timestamp(0x0102030405060708));
  EXPECT_EQ(DecodeTtlTimestamp("1234567").status().code(), StatusCode::kCorruption);
}

TEST(EncodingTest, ExpiryIsWriteTimePlusTtlAtOrBeforeStreamTime) {
  EXPECT_FALSE(IsExpired(Timestamp(100), 1000, Timestamp(1099)));
  EXPECT_TRUE(IsExpired(Timestamp(100), 1000, Timestamp(1100)));
  // No overflow near the top of the range.
  EXPECT_FALSE(IsExpired(Timestamp(std::numeric_limits<int64_t>::max() - 5), 1000,
                         Timestamp(std::numeric_limits<int64_t>::max())));
  EXPECT_EQ(ExpiryCutoff(1000, Timestamp(1100)), 100);
  EXPECT_EQ(ExpiryCutoff(1000, Timestamp(std::numeric_limits<int64_t>::min())), std::nullopt);
}

TEST(EncodingTest, TtlIndexKeysSortByWriteTimeIncludingNegatives) {
  std::string neg = EncodeTtlIndexKey(-1, "z");
  std::string zero = EncodeTtlIndexKey(0, "a");
  std::string pos = EncodeTtlIndexKey(1, "a");
  EXPECT_LT(neg, zero);
  EXPECT_LT(zero, pos);
  auto decoded = DecodeTtlIndexKey(neg);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->first, -1);
  EXPECT_EQ(decoded->second, "z");
}

TEST(EncodingTest, PrefixUpperBoundIncrementsLastNon0xffByte) {
  EXPECT_EQ(PrefixUpperBound("abc"), "abd");
  EXPECT_EQ(PrefixUpperBound(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixUpperBound(std::string("a\xfe\xff\xff", 4)), std::string("a\xff", 2));
  EXPECT_EQ(PrefixUpperBound(std::string("\xff\xff", 2)), std::nullopt);
  EXPECT_EQ(PrefixUpperBound(""), std::nullopt);
}

}  // namespace
}  // namespace streams::state::internal
