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
