// Wire-level tests with a raw TCP client: ApiVersions negotiation (v0, the
// flexible v3, unsupported versions), produce validation, and robustness
// against malformed, truncated, unknown and random requests.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <random>

#include <gtest/gtest.h>

#include "devbroker/protocol.h"
#include "devbroker/wire.h"
#include "test_util.h"

namespace devbroker::testing {
namespace {

using std::chrono::milliseconds;

class RawClient {
 public:
  explicit RawClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawClient() { ::close(fd_); }
  bool connected() const { return connected_; }

  void SendRaw(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  // Sends a request with header v1 (or v2 if flexible_header).
  void Send(int16_t api, int16_t version, int32_t corr, const std::string& body,
            bool flexible_header = false) {
    WireWriter w;
    w.WriteInt32(0);
    w.WriteInt16(api);
    w.WriteInt16(version);
    w.WriteInt32(corr);
    w.WriteString("raw-client");
    if (flexible_header) w.WriteEmptyTaggedFields();
    w.WriteRaw(body);
    w.PatchInt32(0, static_cast<int32_t>(w.size() - 4));
    SendRaw(w.buffer());
  }

  // Reads one response frame (without the size prefix); nullopt if the
  // connection closed or nothing arrived in time.
  std::optional<std::string> Receive(milliseconds timeout = milliseconds(5000)) {
    std::string size_bytes;
    if (!ReadExactly(4, &size_bytes, timeout)) return std::nullopt;
    int32_t size = LoadInt32(size_bytes.data());
    std::string body;
    if (size < 0 || !ReadExactly(static_cast<size_t>(size), &body, timeout)) {
      return std::nullopt;
    }
    return body;
  }

  // True if the peer closed the connection within the timeout.
  bool ClosedByPeer(milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 50) <= 0) continue;
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return true;
    }
    return false;
  }

 private:
  bool ReadExactly(size_t n, std::string* out, milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    out->clear();
    while (out->size() < n) {
      auto left = std::chrono::duration_cast<milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[65536];
      ssize_t r = ::recv(fd_, buf, std::min(sizeof(buf), n - out->size()), 0);
      if (r <= 0) return false;
      out->append(buf, static_cast<size_t>(r));
    }
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
};

constexpr int16_t kApiVersions = 18;
constexpr int16_t kProduce = 0;

// Asserts the broker still answers a plain ApiVersions v0 request.
void ExpectAlive(const Broker& broker) {
  RawClient c(broker.port());
  ASSERT_TRUE(c.connected());
  c.Send(kApiVersions, 0, 99, "");
  std::optional<std::string> resp = c.Receive();
  ASSERT_TRUE(resp.has_value()) << "broker stopped answering";
  WireReader r(*resp);
  EXPECT_EQ(r.ReadInt32(), 99);
  EXPECT_EQ(r.ReadInt16(), 0);
}

class ProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BrokerOptions options;
    options.log_level = "off";
    broker_ = StartBroker(options);
    ASSERT_NE(broker_, nullptr);
  }
  std::unique_ptr<Broker> broker_;
};

TEST_F(ProtocolTest, ApiVersionsV0ListsImplementedRanges) {
  RawClient c(broker_->port());
  c.Send(kApiVersions, 0, 7, "");
  std::optional<std::string> resp = c.Receive();
  ASSERT_TRUE(resp.has_value());
  WireReader r(*resp);
  EXPECT_EQ(r.ReadInt32(), 7);
  EXPECT_EQ(r.ReadInt16(), 0);
  int32_t n = r.ReadArrayLength();
  bool saw_produce = false, saw_fetch = false;
  for (int32_t i = 0; i < n; ++i) {
    int16_t key = r.ReadInt16(), min = r.ReadInt16(), max = r.ReadInt16();
    if (key == 0) {
      saw_produce = true;
      EXPECT_EQ(min, 3);
      EXPECT_EQ(max, 7);
    }
    if (key == 1) {
      saw_fetch = true;
      EXPECT_EQ(min, 4);
      EXPECT_EQ(max, 11);
    }
  }
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.remaining(), 0u);
  EXPECT_TRUE(saw_produce && saw_fetch);
}

TEST_F(ProtocolTest, ApiVersionsV3UsesFlexibleEncoding) {
  RawClient c(broker_->port());
  WireWriter body;
  body.WriteCompactString("librdkafka");
  body.WriteCompactString("2.0.2");
  body.WriteEmptyTaggedFields();
  c.Send(kApiVersions, 3, 8, body.buffer(), /*flexible_header=*/true);
  std::optional<std::string> resp = c.Receive();
  ASSERT_TRUE(resp.has_value());
  WireReader r(*resp);
  EXPECT_EQ(r.ReadInt32(), 8);  // response header v0: no tagged fields
  EXPECT_EQ(r.ReadInt16(), 0);
  int32_t n = r.ReadCompactArrayLength();
  EXPECT_GT(n, 10);
  for (int32_t i = 0; i < n; ++i) {
    r.ReadInt16();
    r.ReadInt16();
    r.ReadInt16();
    r.SkipTaggedFields();
  }
  EXPECT_EQ(r.ReadInt32(), 0);  // throttle
  r.SkipTaggedFields();
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.remaining(), 0u);
}

TEST_F(ProtocolTest, UnsupportedApiVersionsVersionGetsV0Error) {
  RawClient c(broker_->port());
  c.Send(kApiVersions, 9, 5, "\x00\x00", /*flexible_header=*/true);
  std::optional<std::string> resp = c.Receive();
  ASSERT_TRUE(resp.has_value());
  WireReader r(*resp);
  EXPECT_EQ(r.ReadInt32(), 5);
  EXPECT_EQ(r.ReadInt16(), 35);  // UNSUPPORTED_VERSION
  int32_t n = r.ReadArrayLength();  // v0 layout: int32 count
  bool saw_api_versions = false;
  for (int32_t i = 0; i < n; ++i) {
    int16_t key = r.ReadInt16();
    r.ReadInt16();
    int16_t max = r.ReadInt16();
    if (key == kApiVersions) {
      saw_api_versions = true;
      EXPECT_EQ(max, 3);
    }
  }
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(saw_api_versions);
}

TEST_F(ProtocolTest, UnknownApiAndUnsupportedVersionCloseConnection) {
  {
    RawClient c(broker_->port());
    c.Send(1000, 0, 1, "");
    EXPECT_TRUE(c.ClosedByPeer(milliseconds(3000)));
  }
  {
    RawClient c(broker_->port());
    c.Send(kProduce, 99, 1, "");
    EXPECT_TRUE(c.ClosedByPeer(milliseconds(3000)));
  }
  ExpectAlive(*broker_);
}

TEST_F(ProtocolTest, BadFrameSizesCloseConnection) {
  for (int32_t size : {-1, 0, 3, 0x7fffffff}) {
    RawClient c(broker_->port());
    WireWriter w;
    w.WriteInt32(size);
    w.WriteRaw(std::string(16, '\0'));
    c.SendRaw(w.buffer());
    EXPECT_TRUE(c.ClosedByPeer(milliseconds(3000))) << "size " << size;
  }
  ExpectAlive(*broker_);
}

TEST_F(ProtocolTest, ProduceValidatesBatchesAndDeduplicates) {
  ASSERT_TRUE(broker_->CreateTopic("raw", 1).ok());
  auto produce = [&](const std::string& records) -> int16_t {
    RawClient c(broker_->port());
    WireWriter body;
    body.WriteNullString();  // transactional id
    body.WriteInt16(-1);     // acks
    body.WriteInt32(5000);
    body.WriteArrayLength(1);
    body.WriteString("raw");
    body.WriteArrayLength(1);
    body.WriteInt32(0);
    body.WriteBytes(records);
    c.Send(kProduce, 7, 1, body.buffer());
    std::optional<std::string> resp = c.Receive();
    EXPECT_TRUE(resp.has_value());
    if (!resp) return -1;
    WireReader r(*resp);
    r.ReadInt32();
    r.ReadArrayLength();
    r.ReadString();
    r.ReadArrayLength();
    r.ReadInt32();
    int16_t err = r.ReadInt16();
    EXPECT_TRUE(r.ok());
    return err;
  };
  std::string batch = BuildRecordBatch(4242, 0, 0, false, {"a", "b"});
  EXPECT_EQ(produce(batch), 0);
  EXPECT_EQ(produce(batch), 0);  // duplicate: acknowledged, not appended
  EXPECT_EQ(broker_->HighWatermark("raw", 0), 2);
  std::string corrupt = BuildRecordBatch(-1, -1, -1, false, {"x"});
  corrupt.back() ^= 1;
  EXPECT_EQ(produce(corrupt), 2);  // CORRUPT_MESSAGE
  EXPECT_EQ(produce(BuildRecordBatch(4242, 0, 7, false, {"x"})), 45);
  // Transactional batch from a producer that never added the partition.
  EXPECT_EQ(produce(BuildRecordBatch(4243, 0, 0, true, {"x"})), 48);
  EXPECT_EQ(broker_->HighWatermark("raw", 0), 2);
}

// Raw group, offset and transaction requests, to pin down the wire formats
// of OffsetCommit v7, TxnOffsetCommit v3 (flexible, KIP-447) and OffsetFetch
// v5/v7 (v7 flexible, require_stable) and their generation/member checks.
class GroupWireTest : public ProtocolTest {
 protected:
  static constexpr int16_t kOffsetCommit = 8;
  static constexpr int16_t kOffsetFetch = 9;
  static constexpr int16_t kJoinGroup = 11;
  static constexpr int16_t kSyncGroup = 14;
  static constexpr int16_t kInitProducerId = 22;
  static constexpr int16_t kAddOffsetsToTxn = 25;
  static constexpr int16_t kEndTxn = 26;
  static constexpr int16_t kTxnOffsetCommit = 28;

  struct Joined {
    int16_t error = -1;
    int32_t generation = -1;
    std::string member_id;
  };

  static void SendJoin(RawClient& c, const std::string& member_id) {
    WireWriter b;  // JoinGroup v5
    b.WriteString("g");
    b.WriteInt32(10000);  // session timeout
    b.WriteInt32(10000);  // rebalance timeout
    b.WriteString(member_id);
    b.WriteNullString();  // group instance id
    b.WriteString("consumer");
    b.WriteArrayLength(1);
    b.WriteString("range");
    b.WriteBytes("");
    c.Send(kJoinGroup, 5, 1, b.buffer());
  }

  static Joined ReceiveJoin(RawClient& c) {
    Joined j;
    std::optional<std::string> resp = c.Receive();
    EXPECT_TRUE(resp.has_value());
    if (!resp) return j;
    WireReader r(*resp);
    r.ReadInt32();  // correlation id
    r.ReadInt32();  // throttle
    j.error = r.ReadInt16();
    j.generation = r.ReadInt32();
    r.ReadString();  // protocol
    r.ReadString();  // leader
    j.member_id = r.ReadString();
    EXPECT_TRUE(r.ok());
    return j;
  }

  static void SendSync(RawClient& c, int32_t generation, const std::string& member_id,
                       const std::vector<std::string>& all_members) {
    WireWriter b;  // SyncGroup v3
    b.WriteString("g");
    b.WriteInt32(generation);
    b.WriteString(member_id);
    b.WriteNullString();
    b.WriteArrayLength(static_cast<int32_t>(all_members.size()));
    for (const std::string& m : all_members) {
      b.WriteString(m);
      b.WriteBytes("assignment");
    }
    c.Send(kSyncGroup, 3, 2, b.buffer());
  }

  static int16_t ReceiveSync(RawClient& c) {
    std::optional<std::string> resp = c.Receive();
    EXPECT_TRUE(resp.has_value());
    if (!resp) return -1;
    WireReader r(*resp);
    r.ReadInt32();
    r.ReadInt32();
    return r.ReadInt16();
  }

  // Heartbeat v3 on connection c; returns its error code.
  static int16_t Heartbeat(RawClient& c, int32_t generation, const std::string& member_id) {
    WireWriter b;
    b.WriteString("g");
    b.WriteInt32(generation);
    b.WriteString(member_id);
    b.WriteNullString();
    c.Send(12, 3, 9, b.buffer());
    std::optional<std::string> resp = c.Receive();
    if (!resp) return -1;
    WireReader r(*resp);
    r.ReadInt32();
    r.ReadInt32();
    return r.ReadInt16();
  }

  // OffsetCommit v7 of t-0; returns the partition's error code.
  int16_t Commit(int32_t generation, const std::string& member_id, int64_t offset) {
    RawClient c(broker_->port());
    WireWriter b;
    b.WriteString("g");
    b.WriteInt32(generation);
    b.WriteString(member_id);
    b.WriteNullString();
    b.WriteArrayLength(1);
    b.WriteString("t");
    b.WriteArrayLength(1);
    b.WriteInt32(0);
    b.WriteInt64(offset);
    b.WriteInt32(-1);
    b.WriteString("");
    c.Send(kOffsetCommit, 7, 3, b.buffer());
    std::optional<std::string> resp = c.Receive();
    EXPECT_TRUE(resp.has_value());
    if (!resp) return -1;
    WireReader r(*resp);
    r.ReadInt32();
    r.ReadInt32();  // throttle
    EXPECT_EQ(r.ReadArrayLength(), 1);
    EXPECT_EQ(r.ReadString(), "t");
    EXPECT_EQ(r.ReadArrayLength(), 1);
    EXPECT_EQ(r.ReadInt32(), 0);
    int16_t err = r.ReadInt16();
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.remaining(), 0u);
    return err;
  }

  // OffsetFetch of t-0: v5, or v7 (flexible) with require_stable.
  // Returns {offset, partition error}.
  std::pair<int64_t, int16_t> Fetch(int16_t version, bool require_stable = false) {
    const bool flexible = version >= 6;
    RawClient c(broker_->port());
    WireWriter b;
    if (flexible) {
      b.WriteCompactString("g");
      b.WriteCompactArrayLength(1);
      b.WriteCompactString("t");
      b.WriteCompactArrayLength(1);
      b.WriteInt32(0);
      b.WriteEmptyTaggedFields();
      b.WriteBool(require_stable);
      b.WriteEmptyTaggedFields();
    } else {
      b.WriteString("g");
      b.WriteArrayLength(1);
      b.WriteString("t");
      b.WriteArrayLength(1);
      b.WriteInt32(0);
    }
    c.Send(kOffsetFetch, version, 4, b.buffer(), flexible);
    std::optional<std::string> resp = c.Receive();
    EXPECT_TRUE(resp.has_value());
    if (!resp) return {-2, -1};
    WireReader r(*resp);
    EXPECT_EQ(r.ReadInt32(), 4);
    if (flexible) r.SkipTaggedFields();  // response header v1
    r.ReadInt32();                       // throttle
    EXPECT_EQ(flexible ? r.ReadCompactArrayLength() : r.ReadArrayLength(), 1);
    EXPECT_EQ(flexible ? r.ReadCompactString() : r.ReadString(), "t");
    EXPECT_EQ(flexible ? r.ReadCompactArrayLength() : r.ReadArrayLength(), 1);
    EXPECT_EQ(r.ReadInt32(), 0);
    int64_t offset = r.ReadInt64();
    r.ReadInt32();  // leader epoch
    if (flexible) {
      r.ReadCompactNullableString();
    } else {
      r.ReadNullableString();
    }
    int16_t err = r.ReadInt16();
    if (flexible) r.SkipTaggedFields();  // partition
    if (flexible) r.SkipTaggedFields();  // topic
    EXPECT_EQ(r.ReadInt16(), 0);         // group error
    if (flexible) r.SkipTaggedFields();
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.remaining(), 0u);
    return {offset, err};
  }

  // TxnOffsetCommit v3 (flexible) of t-0; returns the partition's error.
  int16_t TxnCommit(int64_t pid, int16_t epoch, int32_t generation,
                    const std::string& member_id, int64_t offset) {
    RawClient c(broker_->port());
    WireWriter b;
    b.WriteCompactString("tx-wire");
    b.WriteCompactString("g");
    b.WriteInt64(pid);
    b.WriteInt16(epoch);
    b.WriteInt32(generation);
    b.WriteCompactString(member_id);
    b.WriteCompactNullableString(std::nullopt);  // group instance id
    b.WriteCompactArrayLength(1);
    b.WriteCompactString("t");
    b.WriteCompactArrayLength(1);
    b.WriteInt32(0);
    b.WriteInt64(offset);
    b.WriteInt32(-1);  // leader epoch
    b.WriteCompactNullableString(std::string("meta"));
    b.WriteEmptyTaggedFields();  // partition
    b.WriteEmptyTaggedFields();  // topic
    b.WriteEmptyTaggedFields();  // request
    c.Send(kTxnOffsetCommit, 3, 5, b.buffer(), /*flexible_header=*/true);
    std::optional<std::string> resp = c.Receive();
    EXPECT_TRUE(resp.has_value());
    if (!resp) return -1;
    WireReader r(*resp);
    EXPECT_EQ(r.ReadInt32(), 5);
    r.SkipTaggedFields();  // response header v1
    EXPECT_EQ(r.ReadInt32(), 0);
    EXPECT_EQ(r.ReadCompactArrayLength(), 1);
    EXPECT_EQ(r.ReadCompactString(), "t");
    EXPECT_EQ(r.ReadCompactArrayLength(), 1);
    EXPECT_EQ(r.ReadInt32(), 0);
    int16_t err = r.ReadInt16();
    r.SkipTaggedFields();
    r.SkipTaggedFields();
    r.SkipTaggedFields();
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.remaining(), 0u);
    return err;
  }
};

TEST_F(GroupWireTest, CommitsCheckGenerationAndMemberAndFetchWaitsForStableOffsets) {
  ASSERT_TRUE(broker_->CreateTopic("t", 1).ok());
  // Generation 1: m1 alone.
  RawClient c1(broker_->port());
  SendJoin(c1, "");
  Joined m1 = ReceiveJoin(c1);
  ASSERT_EQ(m1.error, 0);
  ASSERT_EQ(m1.generation, 1);
  SendSync(c1, 1, m1.member_id, {m1.member_id});
  ASSERT_EQ(ReceiveSync(c1), 0);
  EXPECT_EQ(Commit(1, m1.member_id, 3), 0);
  EXPECT_EQ(Commit(-1, "", 4), 25) << "simple commit into a group with members";

  // Generation 2: m2 joins, m1 rejoins.
  RawClient c2(broker_->port());
  SendJoin(c2, "");
  // m1 learns of the rebalance from its heartbeat (so m2's join came first).
  ASSERT_TRUE(PollUntil([&] { return Heartbeat(c1, 1, m1.member_id) == 27; },
                        [] {}, milliseconds(5000)));
  SendJoin(c1, m1.member_id);
  Joined m1b = ReceiveJoin(c1);
  Joined m2 = ReceiveJoin(c2);
  ASSERT_EQ(m1b.generation, 2);
  ASSERT_EQ(m2.generation, 2);
  SendSync(c2, 2, m2.member_id, {});
  SendSync(c1, 2, m1.member_id, {m1.member_id, m2.member_id});
  ASSERT_EQ(ReceiveSync(c1), 0);
  ASSERT_EQ(ReceiveSync(c2), 0);

  // Plain OffsetCommit: the zombie generation and unknown members are
  // rejected; the committed offset stays.
  EXPECT_EQ(Commit(1, m1.member_id, 99), 22);  // ILLEGAL_GENERATION
  EXPECT_EQ(Commit(2, "ghost", 99), 25);       // UNKNOWN_MEMBER_ID
  EXPECT_EQ(Fetch(5), std::make_pair(int64_t{3}, int16_t{0}));
  EXPECT_EQ(Commit(2, m2.member_id, 5), 0);
  EXPECT_EQ(Fetch(5), std::make_pair(int64_t{5}, int16_t{0}));

  // TxnOffsetCommit v3 inside a transaction.
  int64_t pid = -1;
  int16_t epoch = -1;
  {
    RawClient c(broker_->port());
    WireWriter b;  // InitProducerId v4
    b.WriteCompactNullableString(std::string("tx-wire"));
    b.WriteInt32(60000);
    b.WriteInt64(-1);
    b.WriteInt16(-1);
    b.WriteEmptyTaggedFields();
    c.Send(kInitProducerId, 4, 6, b.buffer(), true);
    std::optional<std::string> resp = c.Receive();
    ASSERT_TRUE(resp.has_value());
    WireReader r(*resp);
    r.ReadInt32();
    r.SkipTaggedFields();
    r.ReadInt32();
    ASSERT_EQ(r.ReadInt16(), 0);
    pid = r.ReadInt64();
    epoch = r.ReadInt16();
    ASSERT_TRUE(r.ok());
  }
  {
    RawClient c(broker_->port());
    WireWriter b;  // AddOffsetsToTxn v1
    b.WriteString("tx-wire");
    b.WriteInt64(pid);
    b.WriteInt16(epoch);
    b.WriteString("g");
    c.Send(kAddOffsetsToTxn, 1, 7, b.buffer());
    std::optional<std::string> resp = c.Receive();
    ASSERT_TRUE(resp.has_value());
    WireReader r(*resp);
    r.ReadInt32();
    r.ReadInt32();
    ASSERT_EQ(r.ReadInt16(), 0);
  }
  EXPECT_EQ(TxnCommit(pid, epoch, 1, m1.member_id, 99), 22);  // stale generation
  EXPECT_EQ(TxnCommit(pid, epoch, 2, "ghost", 99), 25);       // unknown member
  EXPECT_EQ(Fetch(7, /*require_stable=*/true), std::make_pair(int64_t{5}, int16_t{0}))
      << "a rejected TxnOffsetCommit must leave nothing pending";
  EXPECT_EQ(TxnCommit(pid, epoch, 2, m1.member_id, 8), 0);
  // Pending: read_committed consumers (require_stable) must wait; others see
  // the last committed offset.
  EXPECT_EQ(Fetch(7, /*require_stable=*/true), std::make_pair(int64_t{-1}, int16_t{88}));
  EXPECT_EQ(Fetch(7, /*require_stable=*/false), std::make_pair(int64_t{5}, int16_t{0}));
  EXPECT_EQ(Fetch(5), std::make_pair(int64_t{5}, int16_t{0}));
  {
    RawClient c(broker_->port());
    WireWriter b;  // EndTxn v1 (commit)
    b.WriteString("tx-wire");
    b.WriteInt64(pid);
    b.WriteInt16(epoch);
    b.WriteBool(true);
    c.Send(kEndTxn, 1, 8, b.buffer());
    std::optional<std::string> resp = c.Receive();
    ASSERT_TRUE(resp.has_value());
    WireReader r(*resp);
    r.ReadInt32();
    r.ReadInt32();
    ASSERT_EQ(r.ReadInt16(), 0);
  }
  EXPECT_EQ(Fetch(7, /*require_stable=*/true), std::make_pair(int64_t{8}, int16_t{0}));
}

TEST_F(ProtocolTest, TruncatedAndRandomRequestsNeverCrashTheBroker) {
  // DEVBROKER_FUZZ_ROUNDS=N runs N rounds with different seeds (default 1).
  const char* rounds_env = getenv("DEVBROKER_FUZZ_ROUNDS");
  const int rounds = rounds_env != nullptr ? std::max(1, atoi(rounds_env)) : 1;
  std::mt19937 rng(12345);
  auto random_body = [&](size_t max_len) {
    std::string s(rng() % (max_len + 1), '\0');
    for (char& ch : s) {
      uint32_t k = rng() % 4;
      // Bias towards small values so parsers get past the first fields.
      ch = static_cast<char>(k == 0 ? rng() : (k == 1 ? rng() % 4 : 0));
    }
    return s;
  };
  int sent = 0;
  for (int round = 0; round < rounds; ++round) {
    rng.seed(12345 + round);
    for (const ApiVersionRange& api : SupportedApis()) {
      for (int16_t v = api.min_version; v <= api.max_version; ++v) {
        // Several requests per connection: the broker either answers or
        // closes; it must never crash or hang other clients.
        RawClient c(broker_->port());
        for (int i = 0; i < 8; ++i) {
          c.Send(static_cast<int16_t>(api.key), v, i, random_body(64),
                 IsFlexibleVersion(static_cast<int16_t>(api.key), v));
          ++sent;
        }
        c.ClosedByPeer(milliseconds(20));
      }
    }
  }
  // Truncated headers.
  for (int len = 0; len < 10; ++len) {
    RawClient c(broker_->port());
    WireWriter w;
    w.WriteInt32(len);
    w.WriteRaw(std::string(static_cast<size_t>(len), '\x01'));
    c.SendRaw(w.buffer());
    c.ClosedByPeer(milliseconds(20));
  }
  EXPECT_GT(sent, 100);
  ExpectAlive(*broker_);
}

TEST_F(ProtocolTest, EveryTruncationOfValidRequestsClosesCleanly) {
  ASSERT_TRUE(broker_->CreateTopic("trunc", 1).ok());
  struct Req {
    int16_t api;
    int16_t version;
    std::string body;
  };
  std::vector<Req> reqs;
  {
    WireWriter b;  // Produce v7
    b.WriteNullString();
    b.WriteInt16(-1);
    b.WriteInt32(1000);
    b.WriteArrayLength(1);
    b.WriteString("trunc");
    b.WriteArrayLength(1);
    b.WriteInt32(0);
    b.WriteBytes(BuildRecordBatch(-1, -1, -1, false, {"v"}));
    reqs.push_back({0, 7, b.Release()});
  }
  {
    WireWriter b;  // Fetch v11
    b.WriteInt32(-1);
    b.WriteInt32(0);  // max wait 0: answer at once
    b.WriteInt32(1);
    b.WriteInt32(1 << 20);
    b.WriteInt8(1);
    b.WriteInt32(0);
    b.WriteInt32(-1);
    b.WriteArrayLength(1);
    b.WriteString("trunc");
    b.WriteArrayLength(1);
    b.WriteInt32(0);
    b.WriteInt32(-1);
    b.WriteInt64(0);
    b.WriteInt64(-1);
    b.WriteInt32(1 << 20);
    b.WriteArrayLength(0);
    b.WriteString("rack");
    reqs.push_back({1, 11, b.Release()});
  }
  {
    WireWriter b;  // OffsetCommit v7 (simple commit)
    b.WriteString("g");
    b.WriteInt32(-1);
    b.WriteString("");
    b.WriteNullString();
    b.WriteArrayLength(1);
    b.WriteString("trunc");
    b.WriteArrayLength(1);
    b.WriteInt32(0);
    b.WriteInt64(1);
    b.WriteInt32(-1);
    b.WriteString("meta");
    reqs.push_back({8, 7, b.Release()});
  }
  {
    WireWriter b;  // InitProducerId v4 (flexible)
    b.WriteCompactNullableString(std::string("tx-trunc"));
    b.WriteInt32(5000);
    b.WriteInt64(-1);
    b.WriteInt16(-1);
    b.WriteEmptyTaggedFields();
    reqs.push_back({22, 4, b.Release()});
  }
  {
    WireWriter b;  // TxnOffsetCommit v3 (flexible, KIP-447 group metadata)
    b.WriteCompactString("tx-trunc");
    b.WriteCompactString("g");
    b.WriteInt64(1000);
    b.WriteInt16(0);
    b.WriteInt32(3);
    b.WriteCompactString("member");
    b.WriteCompactNullableString(std::string("instance"));
    b.WriteCompactArrayLength(1);
    b.WriteCompactString("trunc");
    b.WriteCompactArrayLength(1);
    b.WriteInt32(0);
    b.WriteInt64(1);
    b.WriteInt32(-1);
    b.WriteCompactNullableString(std::nullopt);
    b.WriteEmptyTaggedFields();
    b.WriteEmptyTaggedFields();
    b.WriteEmptyTaggedFields();
    reqs.push_back({28, 3, b.Release()});
  }
  {
    WireWriter b;  // OffsetFetch v7 (flexible, require_stable)
    b.WriteCompactString("g");
    b.WriteCompactArrayLength(1);
    b.WriteCompactString("trunc");
    b.WriteCompactArrayLength(1);
    b.WriteInt32(0);
    b.WriteEmptyTaggedFields();
    b.WriteBool(true);
    b.WriteEmptyTaggedFields();
    reqs.push_back({9, 7, b.Release()});
  }
  for (const Req& req : reqs) {
    {
      RawClient c(broker_->port());
      c.Send(req.api, req.version, 1, req.body,
             IsFlexibleVersion(req.api, req.version));
      EXPECT_TRUE(c.Receive().has_value())
          << ApiName(req.api) << ": the full request must be answered";
    }
    for (size_t len = 0; len < req.body.size(); ++len) {
      RawClient c(broker_->port());
      c.Send(req.api, req.version, 1, req.body.substr(0, len),
             IsFlexibleVersion(req.api, req.version));
      EXPECT_TRUE(c.ClosedByPeer(milliseconds(2000)))
          << ApiName(req.api) << " truncated to " << len << " bytes";
    }
  }
  ExpectAlive(*broker_);
}

}  // namespace
}  // namespace devbroker::testing
