// Unit tests: wire codec, CRC, record batches, partition log, group and
// transaction coordinators (no network).

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "devbroker/crc32c.h"
#include "devbroker/group_coordinator.h"
#include "devbroker/log_manager.h"
#include "devbroker/partition_log.h"
#include "devbroker/record_batch.h"
#include "devbroker/txn_coordinator.h"
#include "devbroker/wire.h"
#include "test_util.h"

namespace devbroker {
namespace {

using testing::BuildRecordBatch;

spdlog::logger* NullLogger() {
  static auto logger =
      std::make_shared<spdlog::logger>("null", std::make_shared<spdlog::sinks::null_sink_mt>());
  return logger.get();
}

TEST(WireTest, RoundTripsPrimitives) {
  WireWriter w;
  w.WriteInt8(-3);
  w.WriteInt16(-1234);
  w.WriteInt32(0x12345678);
  w.WriteInt64(-9876543210LL);
  w.WriteVarint(-64);
  w.WriteVarlong(1LL << 40);
  w.WriteUnsignedVarint(300);
  w.WriteString("abc");
  w.WriteNullString();
  w.WriteCompactString("xyz");
  w.WriteCompactNullableString(std::nullopt);
  w.WriteBytes("\x01\x02");
  w.WriteEmptyTaggedFields();
  WireReader r(w.buffer());
  EXPECT_EQ(r.ReadInt8(), -3);
  EXPECT_EQ(r.ReadInt16(), -1234);
  EXPECT_EQ(r.ReadInt32(), 0x12345678);
  EXPECT_EQ(r.ReadInt64(), -9876543210LL);
  EXPECT_EQ(r.ReadVarint(), -64);
  EXPECT_EQ(r.ReadVarlong(), 1LL << 40);
  EXPECT_EQ(r.ReadUnsignedVarint(), 300u);
  EXPECT_EQ(r.ReadString(), "abc");
  EXPECT_FALSE(r.ReadNullableString().has_value());
  EXPECT_EQ(r.ReadCompactString(), "xyz");
  EXPECT_FALSE(r.ReadCompactNullableString().has_value());
  EXPECT_EQ(r.ReadNullableBytes().value(), "\x01\x02");
  r.SkipTaggedFields();
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(WireTest, RejectsTruncatedAndHostileLengths) {
  {
    WireReader r("\x00\x01", 2);
    r.ReadInt32();
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.ReadInt64(), 0);  // latched
  }
  {
    WireWriter w;
    w.WriteInt16(-5);  // negative non-null string length
    WireReader r(w.buffer());
    r.ReadNullableString();
    EXPECT_FALSE(r.ok());
  }
  {
    WireWriter w;
    w.WriteInt16(100);  // longer than the input
    w.WriteRaw("abc");
    WireReader r(w.buffer());
    r.ReadString();
    EXPECT_FALSE(r.ok());
  }
  {
    WireWriter w;
    w.WriteInt32(1000000000);  // array count larger than the input
    WireReader r(w.buffer());
    r.ReadArrayLength();
    EXPECT_FALSE(r.ok());
  }
  {
    std::string v(11, '\xff');  // varint longer than 10 bytes
    WireReader r(v);
    r.ReadUnsignedVarint();
    EXPECT_FALSE(r.ok());
  }
  {
    WireWriter w;
    w.WriteUnsignedVarint(5);  // 5 tagged fields, none present
    WireReader r(w.buffer());
    r.SkipTaggedFields();
    EXPECT_FALSE(r.ok());
  }
}

TEST(Crc32cTest, KnownVector) {
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32c("", 0), 0u);
}

TEST(RecordBatchTest, ParsesValidAndRejectsBadBatches) {
  std::string batch = BuildRecordBatch(-1, -1, -1, false, {"a", "b", "c"});
  std::vector<BatchView> views;
  ASSERT_EQ(ParseRecordSet(batch + batch, &views), Err::kNone);
  ASSERT_EQ(views.size(), 2u);
  EXPECT_EQ(views[0].header.record_count, 3);
  EXPECT_EQ(views[0].header.last_offset_delta, 2);

  std::string bad_crc = batch;
  bad_crc.back() ^= 0x55;
  EXPECT_EQ(ParseRecordSet(bad_crc, &views), Err::kCorruptMessage);
  EXPECT_EQ(ParseRecordSet(batch.substr(0, batch.size() - 1), &views), Err::kCorruptMessage);
  EXPECT_EQ(ParseRecordSet(batch.substr(0, 20), &views), Err::kCorruptMessage);
  std::string old_magic = batch;
  old_magic[kMagicOffset] = 1;
  EXPECT_EQ(ParseRecordSet(old_magic, &views), Err::kUnsupportedForMessageFormat);
  // Clients may not write control batches.
  EXPECT_EQ(ParseRecordSet(BuildControlBatch(0, 5, 0, true, 1), &views), Err::kInvalidRecord);
}

BatchView View(const std::string& raw) {
  std::vector<BatchView> views;
  EXPECT_EQ(ParseRecordSet(raw, &views), Err::kNone);
  return views.at(0);
}

TEST(PartitionLogTest, IdempotentSequenceAndEpochChecks) {
  PartitionLog log;
  std::string b0 = BuildRecordBatch(7, 0, 0, false, {"a", "b"});
  std::string b1 = BuildRecordBatch(7, 0, 2, false, {"c"});
  AppendResult r = log.Append(View(b0));
  EXPECT_EQ(r.error, Err::kNone);
  EXPECT_EQ(r.base_offset, 0);
  // Retried duplicate: acknowledged with the original offset, not appended.
  r = log.Append(View(b0));
  EXPECT_EQ(r.error, Err::kNone);
  EXPECT_TRUE(r.duplicate);
  EXPECT_EQ(r.base_offset, 0);
  EXPECT_EQ(log.high_watermark(), 2);
  // Gap in sequence.
  EXPECT_EQ(log.Append(View(BuildRecordBatch(7, 0, 5, false, {"x"}))).error,
            Err::kOutOfOrderSequenceNumber);
  EXPECT_EQ(log.Append(View(b1)).base_offset, 2);
  // A new epoch restarts at sequence 0; the old epoch is then stale.
  EXPECT_EQ(log.Append(View(BuildRecordBatch(7, 1, 3, false, {"x"}))).error,
            Err::kOutOfOrderSequenceNumber);
  EXPECT_EQ(log.Append(View(BuildRecordBatch(7, 1, 0, false, {"d"}))).error, Err::kNone);
  EXPECT_EQ(log.Append(View(BuildRecordBatch(7, 0, 3, false, {"x"}))).error,
            Err::kInvalidProducerEpoch);
  // Unknown producer must start at 0.
  EXPECT_EQ(log.Append(View(BuildRecordBatch(8, 0, 4, false, {"x"}))).error,
            Err::kOutOfOrderSequenceNumber);
  EXPECT_EQ(log.high_watermark(), 4);
}

TEST(PartitionLogTest, LastStableOffsetAndAbortedIndex) {
  PartitionLog log;
  log.Append(View(BuildRecordBatch(-1, -1, -1, false, {"plain"})));  // 0
  log.Append(View(BuildRecordBatch(10, 0, 0, true, {"t1", "t2"})));  // 1-2
  log.Append(View(BuildRecordBatch(11, 0, 0, true, {"u1"})));        // 3
  EXPECT_EQ(log.high_watermark(), 4);
  EXPECT_EQ(log.last_stable_offset(), 1);
  log.WriteMarker(10, 0, /*commit=*/false, 1);  // 4
  EXPECT_EQ(log.last_stable_offset(), 3);       // producer 11 still open
  log.WriteMarker(11, 0, /*commit=*/true, 1);   // 5
  EXPECT_EQ(log.last_stable_offset(), 6);
  std::vector<AbortedTxn> aborted = log.AbortedTxns(0, 6);
  ASSERT_EQ(aborted.size(), 1u);
  EXPECT_EQ(aborted[0].producer_id, 10);
  EXPECT_EQ(aborted[0].first_offset, 1);
  EXPECT_EQ(aborted[0].last_offset, 4);
  EXPECT_TRUE(log.AbortedTxns(5, 6).empty());

  // Read respects the upper bound and returns whole batches.
  std::string out;
  int64_t last = -1;
  log.Read(0, /*upper=*/3, 1 << 20, true, &out, &last);
  EXPECT_EQ(last, 2);
  std::vector<BatchView> views;
  // Stored batches carry their assigned offsets.
  EXPECT_EQ(LoadInt64(out.data()), 0);
}

TEST(PartitionLogTest, MarkerWithNewerEpochFencesOldEpoch) {
  PartitionLog log;
  log.Append(View(BuildRecordBatch(3, 0, 0, true, {"a"})));
  log.WriteMarker(3, 1, /*commit=*/false, 1);
  EXPECT_EQ(log.Append(View(BuildRecordBatch(3, 0, 1, true, {"b"}))).error,
            Err::kInvalidProducerEpoch);
  EXPECT_EQ(log.Append(View(BuildRecordBatch(3, 1, 0, true, {"c"}))).error, Err::kNone);
}

class GroupCoordinatorTest : public ::testing::Test {
 protected:
  GroupCoordinatorTest() : groups_({1000, 60000, 0}, NullLogger()) {}

  JoinGroupParams Params(const std::string& member_id) {
    JoinGroupParams p;
    p.group_id = "g";
    p.session_timeout_ms = 1000;
    p.rebalance_timeout_ms = 5000;
    p.member_id = member_id;
    p.client_id = "c";
    p.protocol_type = "consumer";
    p.protocols = {{"range", "meta-" + member_id}};
    return p;
  }

  GroupCoordinator groups_;
};

TEST_F(GroupCoordinatorTest, JoinSyncHeartbeatAndExpiry) {
  std::optional<JoinGroupResult> a;
  groups_.JoinGroup(Params(""), 0, [&](const JoinGroupResult& r) { a = r; });
  ASSERT_TRUE(a.has_value());  // sole member: completes at once
  EXPECT_EQ(a->error, Err::kNone);
  EXPECT_EQ(a->generation_id, 1);
  EXPECT_EQ(a->leader_id, a->member_id);
  std::string m1 = a->member_id;

  // A second member triggers a rebalance; m1 learns via heartbeat.
  std::optional<JoinGroupResult> b;
  groups_.JoinGroup(Params(""), 10, [&](const JoinGroupResult& r) { b = r; });
  EXPECT_FALSE(b.has_value());
  EXPECT_EQ(groups_.Heartbeat("g", 1, m1, std::nullopt, 20), Err::kRebalanceInProgress);
  std::optional<JoinGroupResult> a2;
  groups_.JoinGroup(Params(m1), 30, [&](const JoinGroupResult& r) { a2 = r; });
  ASSERT_TRUE(a2.has_value() && b.has_value());
  EXPECT_EQ(a2->generation_id, 2);
  EXPECT_EQ(b->generation_id, 2);
  EXPECT_EQ(a2->members.size(), 2u);  // leader gets the member list
  EXPECT_TRUE(b->members.empty());
  std::string m2 = b->member_id;

  std::optional<SyncGroupResult> sb, sa;
  groups_.SyncGroup("g", 2, m2, std::nullopt, {}, 40, [&](const SyncGroupResult& r) { sb = r; });
  EXPECT_FALSE(sb.has_value());  // waits for the leader
  groups_.SyncGroup("g", 2, m1, std::nullopt, {{m1, "A"}, {m2, "B"}}, 50,
                    [&](const SyncGroupResult& r) { sa = r; });
  ASSERT_TRUE(sa.has_value() && sb.has_value());
  EXPECT_EQ(sa->assignment, "A");
  EXPECT_EQ(sb->assignment, "B");
  EXPECT_EQ(groups_.Heartbeat("g", 2, m1, std::nullopt, 60), Err::kNone);
  EXPECT_EQ(groups_.Heartbeat("g", 1, m1, std::nullopt, 60), Err::kIllegalGeneration);
  EXPECT_EQ(groups_.Heartbeat("g", 2, "nobody", std::nullopt, 60), Err::kUnknownMemberId);

  // m2 stops heartbeating: expired after its 1000 ms session.
  groups_.Heartbeat("g", 2, m1, std::nullopt, 900);
  groups_.Tick(1000);
  EXPECT_EQ(groups_.Describe("g").members.size(), 2u);
  groups_.Tick(1100);
  EXPECT_EQ(groups_.Heartbeat("g", 2, m2, std::nullopt, 1100), Err::kUnknownMemberId);
  EXPECT_EQ(groups_.Heartbeat("g", 2, m1, std::nullopt, 1100), Err::kRebalanceInProgress);
}

// Static membership (KIP-345): a member restarting with its
// group.instance.id replaces its old incarnation without a rebalance, gets
// its assignment back, and the old member id is fenced.
TEST_F(GroupCoordinatorTest, StaticMemberRestartReplacesItWithoutARebalance) {
  auto join = [&](const std::string& member_id, const std::string& instance, int64_t now,
                  const std::string& metadata = "") {
    JoinGroupParams p = Params(member_id);
    p.group_instance_id = instance;
    if (!metadata.empty()) p.protocols = {{"range", metadata}};
    std::optional<JoinGroupResult> out;
    groups_.JoinGroup(p, now, [&](const JoinGroupResult& r) { out = r; });
    return out;
  };
  std::optional<JoinGroupResult> a = join("", "inst-a", 0);
  ASSERT_TRUE(a.has_value());
  std::optional<JoinGroupResult> b;
  {
    JoinGroupParams p = Params("");
    p.group_instance_id = "inst-b";
    groups_.JoinGroup(p, 10, [&](const JoinGroupResult& r) { b = r; });
  }
  std::optional<JoinGroupResult> a2 = join(a->member_id, "inst-a", 20);
  ASSERT_TRUE(a2.has_value() && b.has_value());
  const std::string ma = a2->member_id;
  const std::string mb = b->member_id;
  ASSERT_EQ(a2->leader_id, ma);
  groups_.SyncGroup("g", 2, mb, std::string("inst-b"), {}, 30, [](const SyncGroupResult&) {});
  groups_.SyncGroup("g", 2, ma, std::string("inst-a"), {{ma, "A"}, {mb, "B"}}, 30,
                    [](const SyncGroupResult&) {});
  ASSERT_EQ(groups_.Describe("g").state, "Stable");

  // inst-b restarts (its process was killed: no LeaveGroup). The group stays
  // at generation 2, stable, and inst-b's new member gets "B" back, although
  // its metadata changed (a cooperative member owns nothing after a restart).
  std::optional<JoinGroupResult> b2 = join("", "inst-b", 100, "owns-nothing");
  ASSERT_TRUE(b2.has_value());
  EXPECT_EQ(b2->error, Err::kNone);
  EXPECT_EQ(b2->generation_id, 2);
  EXPECT_NE(b2->member_id, mb);
  EXPECT_EQ(b2->leader_id, ma);
  EXPECT_TRUE(b2->members.empty());
  EXPECT_EQ(groups_.Describe("g").state, "Stable");
  std::optional<SyncGroupResult> sync;
  groups_.SyncGroup("g", 2, b2->member_id, std::string("inst-b"), {}, 110,
                    [&](const SyncGroupResult& r) { sync = r; });
  ASSERT_TRUE(sync.has_value());
  EXPECT_EQ(sync->error, Err::kNone);
  EXPECT_EQ(sync->assignment, "B");
  // The other member notices nothing.
  EXPECT_EQ(groups_.Heartbeat("g", 2, ma, std::string("inst-a"), 120), Err::kNone);

  // The old incarnation (a zombie) is fenced everywhere.
  EXPECT_EQ(groups_.Heartbeat("g", 2, mb, std::string("inst-b"), 130), Err::kFencedInstanceId);
  std::optional<SyncGroupResult> zombie_sync;
  groups_.SyncGroup("g", 2, mb, std::string("inst-b"), {}, 130,
                    [&](const SyncGroupResult& r) { zombie_sync = r; });
  ASSERT_TRUE(zombie_sync.has_value());
  EXPECT_EQ(zombie_sync->error, Err::kFencedInstanceId);
  std::optional<JoinGroupResult> zombie_join = join(mb, "inst-b", 130);
  ASSERT_TRUE(zombie_join.has_value());
  EXPECT_EQ(zombie_join->error, Err::kFencedInstanceId);
  OffsetMap offsets;
  offsets[TopicPartition{"t", 0}] = CommittedOffset{5, -1, std::nullopt};
  EXPECT_EQ(groups_.CommitOffsets("g", OffsetCommitter{2, mb, std::string("inst-b")}, offsets, 130),
            Err::kFencedInstanceId);
  EXPECT_EQ(groups_.CommitOffsets("g", OffsetCommitter{2, b2->member_id, std::string("inst-b")},
                                  offsets, 130),
            Err::kNone);

  // A static member that never comes back expires after its session, and
  // the rest rebalance.
  groups_.Heartbeat("g", 2, ma, std::string("inst-a"), 1200);
  groups_.Tick(1300);
  EXPECT_EQ(groups_.Describe("g").members.size(), 1u);
  EXPECT_EQ(groups_.Heartbeat("g", 2, ma, std::string("inst-a"), 1300), Err::kRebalanceInProgress);
}

// A restart while the group is completing a rebalance (the leader may have
// assigned the old member id) rebalances again; the new member joins it.
TEST_F(GroupCoordinatorTest, StaticMemberRestartDuringSyncRebalances) {
  JoinGroupParams p = Params("");
  p.group_instance_id = "inst-a";
  std::optional<JoinGroupResult> a;
  groups_.JoinGroup(p, 0, [&](const JoinGroupResult& r) { a = r; });
  ASSERT_TRUE(a.has_value());
  ASSERT_EQ(groups_.Describe("g").state, "CompletingRebalance");
  std::optional<JoinGroupResult> a2;
  groups_.JoinGroup(p, 10, [&](const JoinGroupResult& r) { a2 = r; });
  ASSERT_TRUE(a2.has_value());  // Sole member: the new generation forms at once.
  EXPECT_EQ(a2->error, Err::kNone);
  EXPECT_EQ(a2->generation_id, 2);
  EXPECT_EQ(a2->leader_id, a2->member_id);
  EXPECT_NE(a2->member_id, a->member_id);
}

TEST_F(GroupCoordinatorTest, RejectsBadSessionTimeoutAndProtocol) {
  JoinGroupParams p = Params("");
  p.session_timeout_ms = 10;
  std::optional<JoinGroupResult> r;
  groups_.JoinGroup(p, 0, [&](const JoinGroupResult& res) { r = res; });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->error, Err::kInvalidSessionTimeout);

  groups_.JoinGroup(Params(""), 0, [&](const JoinGroupResult& res) { r = res; });
  p = Params("");
  p.protocols = {{"other", ""}};
  groups_.JoinGroup(p, 0, [&](const JoinGroupResult& res) { r = res; });
  EXPECT_EQ(r->error, Err::kInconsistentGroupProtocol);
}

TEST_F(GroupCoordinatorTest, TransactionalOffsetsPendingUntilCommit) {
  OffsetMap offs;
  offs[TopicPartition{"t", 0}] = CommittedOffset{42, -1, std::nullopt};
  groups_.AddPendingTxnOffsets("g2", 99, offs);
  EXPECT_FALSE(groups_.FetchOffset("g2", {"t", 0}).has_value());
  groups_.CompleteTxnOffsets("g2", 99, /*commit=*/false);
  EXPECT_FALSE(groups_.FetchOffset("g2", {"t", 0}).has_value());
  groups_.AddPendingTxnOffsets("g2", 99, offs);
  groups_.CompleteTxnOffsets("g2", 99, /*commit=*/true);
  ASSERT_TRUE(groups_.FetchOffset("g2", {"t", 0}).has_value());
  EXPECT_EQ(groups_.FetchOffset("g2", {"t", 0})->offset, 42);
}

// Offset commits of group members: the generation and member are checked
// as Kafka does (also while a rebalance is being prepared).
TEST_F(GroupCoordinatorTest, OffsetCommitChecksMemberAndGeneration) {
  auto offsets = [](int64_t offset) {
    OffsetMap m;
    m[TopicPartition{"t", 0}] = CommittedOffset{offset, -1, std::nullopt};
    return m;
  };
  auto committed = [&] {
    auto c = groups_.FetchOffset("g", {"t", 0});
    return c.has_value() ? c->offset : -1;
  };
  // Empty group: a simple commit (no membership) is allowed.
  EXPECT_EQ(groups_.CommitOffsets("g", {}, offsets(1), 0), Err::kNone);
  EXPECT_EQ(committed(), 1);
  EXPECT_EQ(groups_.CommitOffsets("g", {0, "ghost", std::nullopt}, offsets(99), 0),
            Err::kUnknownMemberId);

  std::optional<JoinGroupResult> a;
  groups_.JoinGroup(Params(""), 0, [&](const JoinGroupResult& r) { a = r; });
  ASSERT_TRUE(a.has_value());
  const std::string m1 = a->member_id;
  groups_.SyncGroup("g", 1, m1, std::nullopt, {{m1, "A"}}, 0, [](const SyncGroupResult&) {});
  // Now the group has a member: a simple commit must not overwrite its offsets.
  EXPECT_EQ(groups_.CommitOffsets("g", {}, offsets(99), 10), Err::kUnknownMemberId);
  EXPECT_EQ(groups_.CommitOffsets("g", {1, m1, std::nullopt}, offsets(5), 10), Err::kNone);
  EXPECT_EQ(committed(), 5);

  // A second member joins: PreparingRebalance still accepts m1's commit of
  // its current generation (before it rejoins).
  std::optional<JoinGroupResult> b;
  groups_.JoinGroup(Params(""), 20, [&](const JoinGroupResult& r) { b = r; });
  EXPECT_EQ(groups_.CommitOffsets("g", {1, m1, std::nullopt}, offsets(6), 30), Err::kNone);
  EXPECT_EQ(committed(), 6);
  groups_.JoinGroup(Params(m1), 40, [&](const JoinGroupResult& r) { a = r; });
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(a->generation_id, 2);
  const std::string m2 = b->member_id;
  // CompletingRebalance: members must wait for their assignment.
  EXPECT_EQ(groups_.CommitOffsets("g", {2, m1, std::nullopt}, offsets(99), 50),
            Err::kRebalanceInProgress);
  EXPECT_EQ(groups_.CommitOffsets("g", {1, m1, std::nullopt}, offsets(99), 50),
            Err::kIllegalGeneration);
  groups_.SyncGroup("g", 2, m2, std::nullopt, {}, 60, [](const SyncGroupResult&) {});
  groups_.SyncGroup("g", 2, m1, std::nullopt, {{m1, "A"}, {m2, "B"}}, 60,
                    [](const SyncGroupResult&) {});
  EXPECT_EQ(groups_.Describe("g").state, "Stable");

  // Stable at generation 2: the zombie generation 1 is rejected.
  EXPECT_EQ(groups_.CommitOffsets("g", {1, m1, std::nullopt}, offsets(99), 70),
            Err::kIllegalGeneration);
  EXPECT_EQ(groups_.CommitOffsets("g", {2, "nobody", std::nullopt}, offsets(99), 70),
            Err::kUnknownMemberId);
  EXPECT_EQ(committed(), 6);
  EXPECT_EQ(groups_.CommitOffsets("g", {2, m2, std::nullopt}, offsets(7), 70), Err::kNone);
  EXPECT_EQ(committed(), 7);

  // m2 expires (m1 keeps heartbeating): its later commit is rejected.
  groups_.Heartbeat("g", 2, m1, std::nullopt, 1000);
  groups_.Tick(1200);
  EXPECT_EQ(groups_.CommitOffsets("g", {2, m2, std::nullopt}, offsets(99), 1200),
            Err::kUnknownMemberId);
  EXPECT_EQ(committed(), 7);
}

// TxnOffsetCommit v3 (KIP-447): the same membership checks, no state check;
// requests without group metadata (v0-2) are not validated.
TEST_F(GroupCoordinatorTest, TxnOffsetCommitValidatesGroupMetadata) {
  EXPECT_EQ(groups_.ValidateTxnOffsetCommit("g", {}), Err::kNone);
  EXPECT_EQ(groups_.ValidateTxnOffsetCommit("g", {1, "m", std::nullopt}), Err::kUnknownMemberId);
  JoinGroupParams p = Params("");
  p.group_instance_id = "instance-1";
  std::optional<JoinGroupResult> a;
  groups_.JoinGroup(p, 0, [&](const JoinGroupResult& r) { a = r; });
  ASSERT_TRUE(a.has_value());
  const std::string m1 = a->member_id;
  EXPECT_EQ(groups_.ValidateTxnOffsetCommit("g", {}), Err::kNone);
  EXPECT_EQ(groups_.ValidateTxnOffsetCommit("g", {1, m1, std::nullopt}), Err::kNone);
  EXPECT_EQ(groups_.ValidateTxnOffsetCommit("g", {1, m1, "instance-1"}), Err::kNone);
  // In the middle of a rebalance the current generation is still valid.
  std::optional<JoinGroupResult> b;
  JoinGroupParams q = Params("");
  q.group_instance_id = "instance-2";
  groups_.JoinGroup(q, 10, [&](const JoinGroupResult& r) { b = r; });
  EXPECT_EQ(groups_.ValidateTxnOffsetCommit("g", {1, m1, std::nullopt}), Err::kNone);
  EXPECT_EQ(groups_.ValidateTxnOffsetCommit("g", {1, m1, "instance-1"}), Err::kNone);
  p.member_id = m1;
  groups_.JoinGroup(p, 20, [&](const JoinGroupResult& r) { a = r; });
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(a->generation_id, 2);
  EXPECT_EQ(groups_.ValidateTxnOffsetCommit("g", {1, m1, std::nullopt}), Err::kIllegalGeneration);
  EXPECT_EQ(groups_.ValidateTxnOffsetCommit("g", {2, m1, std::nullopt}), Err::kNone);
  EXPECT_EQ(groups_.ValidateTxnOffsetCommit("g", {2, "", std::nullopt}), Err::kUnknownMemberId);
  EXPECT_EQ(groups_.ValidateTxnOffsetCommit("g", {-1, m1, std::nullopt}), Err::kIllegalGeneration);
  // instance-1 restarts: it now belongs to the newer member, m1 is fenced.
  p.member_id.clear();
  std::optional<JoinGroupResult> c;
  groups_.JoinGroup(p, 30, [&](const JoinGroupResult& r) { c = r; });
  EXPECT_EQ(groups_.ValidateTxnOffsetCommit("g", {2, m1, "instance-1"}), Err::kFencedInstanceId);
  EXPECT_EQ(groups_.ValidateTxnOffsetCommit("g", {2, m1, std::nullopt}), Err::kUnknownMemberId);
}

class TxnCoordinatorTest : public ::testing::Test {
 protected:
  TxnCoordinatorTest()
      : groups_({1000, 60000, 0}, NullLogger()), txns_({60000}, &logs_, &groups_, NullLogger()) {
    logs_.CreateTopic("t", 2);
  }
  LogManager logs_;
  GroupCoordinator groups_;
  TxnCoordinator txns_;
};

TEST_F(TxnCoordinatorTest, InitFencesAndAbortsOpenTransaction) {
  InitProducerIdResult a = txns_.InitProducerId("tx", 10000, -1, -1, 0);
  ASSERT_EQ(a.error, Err::kNone);
  EXPECT_EQ(a.producer_epoch, 0);
  EXPECT_EQ(txns_.CheckTransactionalProduce(a.producer_id, 0, "t", 0),
            Err::kInvalidTxnState);  // partition not added yet
  std::vector<Err> added = txns_.AddPartitions("tx", a.producer_id, 0, {{"t", 0}}, 0);
  EXPECT_EQ(added, std::vector<Err>{Err::kNone});
  EXPECT_EQ(txns_.CheckTransactionalProduce(a.producer_id, 0, "t", 0), Err::kNone);
  PartitionLog* log = logs_.GetPartition("t", 0);
  log->Append(View(BuildRecordBatch(a.producer_id, 0, 0, true, {"x"})));
  EXPECT_EQ(log->last_stable_offset(), 0);

  InitProducerIdResult b = txns_.InitProducerId("tx", 10000, -1, -1, 0);
  EXPECT_EQ(b.producer_id, a.producer_id);
  EXPECT_EQ(b.producer_epoch, 1);
  EXPECT_EQ(log->last_stable_offset(), 2);  // aborted with a marker
  EXPECT_EQ(log->AbortedTxns(0, 2).size(), 1u);
  EXPECT_EQ(txns_.EndTxn("tx", a.producer_id, 0, true, 0), Err::kInvalidProducerEpoch);
  EXPECT_EQ(txns_.CheckTransactionalProduce(a.producer_id, 0, "t", 0), Err::kInvalidProducerEpoch);
  EXPECT_EQ(txns_.EndTxn("tx", b.producer_id, 1, true, 0), Err::kInvalidTxnState);
}

TEST_F(TxnCoordinatorTest, CommitWritesMarkersAndOffsets) {
  InitProducerIdResult a = txns_.InitProducerId("tx", 10000, -1, -1, 0);
  txns_.AddPartitions("tx", a.producer_id, 0, {{"t", 0}, {"t", 1}}, 0);
  EXPECT_EQ(txns_.AddOffsets("tx", a.producer_id, 0, "grp", 0), Err::kNone);
  OffsetMap offs;
  offs[TopicPartition{"in", 0}] = CommittedOffset{9, -1, std::nullopt};
  EXPECT_EQ(txns_.TxnOffsetCommit("tx", "grp", a.producer_id, 0, {}, offs), Err::kNone);
  EXPECT_EQ(txns_.TxnOffsetCommit("tx", "other", a.producer_id, 0, {}, offs),
            Err::kInvalidTxnState);
  EXPECT_FALSE(groups_.FetchOffset("grp", {"in", 0}).has_value());
  EXPECT_EQ(txns_.EndTxn("tx", a.producer_id, 0, true, 0), Err::kNone);
  EXPECT_EQ(groups_.FetchOffset("grp", {"in", 0})->offset, 9);
  EXPECT_EQ(logs_.GetPartition("t", 0)->high_watermark(), 1);  // one marker
  EXPECT_EQ(logs_.GetPartition("t", 1)->high_watermark(), 1);
  // A retried EndTxn with the same outcome succeeds; the opposite fails.
  EXPECT_EQ(txns_.EndTxn("tx", a.producer_id, 0, true, 0), Err::kNone);
  EXPECT_EQ(txns_.EndTxn("tx", a.producer_id, 0, false, 0), Err::kInvalidTxnState);
}

// A TxnOffsetCommit from a member of an old generation stores nothing and
// leaves the transaction open (the client aborts it); pending offsets are
// visible to HasPendingTxnOffset until the transaction ends.
TEST_F(TxnCoordinatorTest, StaleGroupMemberCannotAddOffsets) {
  std::optional<JoinGroupResult> joined;
  JoinGroupParams p;
  p.group_id = "grp";
  p.session_timeout_ms = 1000;
  p.rebalance_timeout_ms = 5000;
  p.protocol_type = "consumer";
  p.protocols = {{"range", ""}};
  groups_.JoinGroup(p, 0, [&](const JoinGroupResult& r) { joined = r; });
  ASSERT_TRUE(joined.has_value());
  const std::string m1 = joined->member_id;

  InitProducerIdResult a = txns_.InitProducerId("tx", 10000, -1, -1, 0);
  ASSERT_EQ(txns_.AddOffsets("tx", a.producer_id, 0, "grp", 0), Err::kNone);
  OffsetMap offs;
  offs[TopicPartition{"in", 0}] = CommittedOffset{9, -1, std::nullopt};
  EXPECT_EQ(txns_.TxnOffsetCommit("tx", "grp", a.producer_id, 0, {0, m1, std::nullopt}, offs),
            Err::kIllegalGeneration);
  EXPECT_EQ(txns_.TxnOffsetCommit("tx", "grp", a.producer_id, 0, {1, "gone", std::nullopt}, offs),
            Err::kUnknownMemberId);
  EXPECT_FALSE(groups_.HasPendingTxnOffset("grp", {"in", 0}));
  // A fenced producer is reported as such, whatever its group metadata.
  EXPECT_EQ(txns_.TxnOffsetCommit("tx", "grp", a.producer_id, 7, {0, m1, std::nullopt}, offs),
            Err::kInvalidProducerEpoch);

  EXPECT_EQ(txns_.TxnOffsetCommit("tx", "grp", a.producer_id, 0, {1, m1, std::nullopt}, offs),
            Err::kNone);
  EXPECT_TRUE(groups_.HasPendingTxnOffset("grp", {"in", 0}));
  EXPECT_FALSE(groups_.HasPendingTxnOffset("grp", {"in", 1}));
  EXPECT_EQ(txns_.EndTxn("tx", a.producer_id, 0, true, 0), Err::kNone);
  EXPECT_FALSE(groups_.HasPendingTxnOffset("grp", {"in", 0}));
  EXPECT_EQ(groups_.FetchOffset("grp", {"in", 0})->offset, 9);
}

TEST_F(TxnCoordinatorTest, TimeoutAbortsAndBumpsEpoch) {
  InitProducerIdResult a = txns_.InitProducerId("tx", 1000, -1, -1, 0);
  txns_.AddPartitions("tx", a.producer_id, 0, {{"t", 0}}, 100);
  txns_.Tick(1000);
  EXPECT_EQ(txns_.CheckTransactionalProduce(a.producer_id, 0, "t", 0), Err::kNone);
  txns_.Tick(1101);
  EXPECT_EQ(txns_.EndTxn("tx", a.producer_id, 0, true, 0), Err::kInvalidProducerEpoch);
  EXPECT_EQ(logs_.GetPartition("t", 0)->high_watermark(), 1);  // abort marker
}

TEST_F(TxnCoordinatorTest, RejectsInvalidTimeoutAndIdempotentIdsAreFresh) {
  EXPECT_EQ(txns_.InitProducerId("tx", 600000, -1, -1, 0).error, Err::kInvalidTransactionTimeout);
  InitProducerIdResult x = txns_.InitProducerId(std::nullopt, -1, -1, -1, 0);
  InitProducerIdResult y = txns_.InitProducerId(std::nullopt, -1, -1, -1, 0);
  EXPECT_EQ(x.error, Err::kNone);
  EXPECT_NE(x.producer_id, y.producer_id);
  EXPECT_EQ(x.producer_epoch, 0);
}

}  // namespace
}  // namespace devbroker
