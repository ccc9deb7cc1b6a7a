// Produce, Fetch and ListOffsets.

#include <algorithm>

#include <spdlog/spdlog.h>

#include "devbroker/record_batch.h"
#include "devbroker/request_handler.h"

namespace devbroker {

std::optional<std::string> RequestHandler::HandleProduce(
    const ConnectionInfo& conn, const RequestHeader& h, WireReader& r,
    int64_t, HandleOutcome* outcome) {
  const int16_t v = h.api_version;
  std::optional<std::string> transactional_id = r.ReadNullableString();
  int16_t acks = r.ReadInt16();
  r.ReadInt32();  // timeout
  struct PartResult {
    int32_t index;
    Err error;
    int64_t base_offset;
  };
  struct TopicResult {
    std::string name;
    std::vector<PartResult> parts;
  };
  std::vector<TopicResult> results;
  int32_t topic_count = r.ReadArrayLength();
  std::vector<BatchView> batches;
  bool changed = false;
  for (int32_t t = 0; t < topic_count && r.ok(); ++t) {
    TopicResult tr;
    tr.name = r.ReadString();
    int32_t part_count = r.ReadArrayLength();
    for (int32_t p = 0; p < part_count && r.ok(); ++p) {
      PartResult pr{r.ReadInt32(), Err::kNone, -1};
      std::optional<std::string_view> records = r.ReadNullableBytes();
      if (!r.ok()) break;
      Err err = Err::kNone;
      EnsureTopic(tr.name, /*allow_create=*/true, &err);
      PartitionLog* log =
          err == Err::kNone ? logs_->GetPartition(tr.name, pr.index) : nullptr;
      if (err == Err::kNone && log == nullptr) {
        err = Err::kUnknownTopicOrPartition;
      }
      if (err == Err::kNone) {
        err = records.has_value() ? ParseRecordSet(*records, &batches)
                                  : Err::kCorruptMessage;
      }
      if (err == Err::kNone) {
        for (const BatchView& b : batches) {
          if (b.header.is_transactional()) {
            err = txns_->CheckTransactionalProduce(b.header.producer_id,
                                                   b.header.producer_epoch,
                                                   tr.name, pr.index);
            if (err != Err::kNone) break;
          }
        }
      }
      if (err == Err::kNone) {
        for (size_t i = 0; i < batches.size(); ++i) {
          AppendResult ar = log->Append(batches[i]);
          if (ar.error != Err::kNone) {
            err = ar.error;
            break;
          }
          if (i == 0) pr.base_offset = ar.base_offset;
          if (ar.duplicate) {
            logger_->debug("{}[{}]: duplicate batch from producer {} (seq {}) "
                           "acknowledged at offset {}",
                           tr.name, pr.index, batches[i].header.producer_id,
                           batches[i].header.base_sequence, ar.base_offset);
          } else {
            changed = true;
          }
        }
      }
      if (err != Err::kNone) {
        pr.base_offset = -1;
        logger_->info("conn {}: produce to {}[{}] failed: {}", conn.id,
                      tr.name, pr.index, ErrName(err));
      }
      pr.error = err;
      tr.parts.push_back(pr);
    }
    results.push_back(std::move(tr));
  }
  if (!r.ok()) return std::nullopt;
  (void)transactional_id;
  if (changed) logs_->BumpVersion();
  if (acks == 0) {
    *outcome = HandleOutcome::kNoResponse;
    return std::string();
  }
  WireWriter w;
  BeginResponse(w, h);
  w.WriteArrayLength(static_cast<int32_t>(results.size()));
  for (const TopicResult& tr : results) {
    w.WriteString(tr.name);
    w.WriteArrayLength(static_cast<int32_t>(tr.parts.size()));
    for (const PartResult& pr : tr.parts) {
      w.WriteInt32(pr.index);
      w.WriteInt16(ErrCode(pr.error));
      w.WriteInt64(pr.base_offset);
      w.WriteInt64(-1);  // log_append_time (v2+)
      if (v >= 5) w.WriteInt64(0);  // log_start_offset
    }
  }
  w.WriteInt32(0);  // throttle
  return FinishResponse(w);
}

size_t RequestHandler::FetchableBytes(const FetchRequest& req,
                                      bool* has_error) {
  *has_error = false;
  size_t total = 0;
  const size_t cap = static_cast<size_t>(std::max(req.min_bytes, 1));
  for (const FetchTopic& t : req.topics) {
    for (const FetchPartition& p : t.partitions) {
      PartitionLog* log = logs_->GetPartition(t.name, p.partition);
      if (log == nullptr || p.fetch_offset < log->log_start_offset() ||
          p.fetch_offset > log->high_watermark()) {
        *has_error = true;
        continue;
      }
      int64_t upper = req.isolation_level == 1 ? log->last_stable_offset()
                                               : log->high_watermark();
      total += log->BytesAvailable(p.fetch_offset, upper, cap - total);
      if (total >= cap) return total;
    }
  }
  return total;
}

std::string RequestHandler::BuildFetchResponse(const RequestHeader& h,
                                               const FetchRequest& req) {
  const int16_t v = h.api_version;
  WireWriter w;
  BeginResponse(w, h);
  w.WriteInt32(0);  // throttle
  if (v >= 7) {
    w.WriteInt16(0);  // error
    w.WriteInt32(0);  // session id (sessions not supported)
  }
  size_t budget = req.max_bytes > 0 ? static_cast<size_t>(req.max_bytes)
                                    : static_cast<size_t>(50 * 1024 * 1024);
  size_t total = 0;
  w.WriteArrayLength(static_cast<int32_t>(req.topics.size()));
  for (const FetchTopic& t : req.topics) {
    w.WriteString(t.name);
    w.WriteArrayLength(static_cast<int32_t>(t.partitions.size()));
    for (const FetchPartition& p : t.partitions) {
      w.WriteInt32(p.partition);
      PartitionLog* log = logs_->GetPartition(t.name, p.partition);
      Err err = Err::kNone;
      if (log == nullptr) {
        err = Err::kUnknownTopicOrPartition;
      } else if (p.fetch_offset < log->log_start_offset() ||
                 p.fetch_offset > log->high_watermark()) {
        err = Err::kOffsetOutOfRange;
      }
      int64_t hwm = log != nullptr ? log->high_watermark() : -1;
      int64_t lso = log != nullptr ? log->last_stable_offset() : -1;
      w.WriteInt16(ErrCode(err));
      w.WriteInt64(hwm);
      w.WriteInt64(lso);
      if (v >= 5) w.WriteInt64(log != nullptr ? log->log_start_offset() : -1);
      std::string records;
      int64_t last = p.fetch_offset - 1;
      if (err == Err::kNone && total < budget) {
        int64_t upper = req.isolation_level == 1 ? lso : hwm;
        size_t limit = std::min(static_cast<size_t>(std::max(p.max_bytes, 0)),
                                budget - total);
        total += log->Read(p.fetch_offset, upper, limit,
                           /*allow_oversized_first=*/total == 0, &records,
                           &last);
      }
      if (req.isolation_level == 1) {
        std::vector<AbortedTxn> aborted;
        if (!records.empty()) aborted = log->AbortedTxns(p.fetch_offset, last + 1);
        w.WriteArrayLength(static_cast<int32_t>(aborted.size()));
        for (const AbortedTxn& a : aborted) {
          w.WriteInt64(a.producer_id);
          w.WriteInt64(a.first_offset);
        }
      } else {
        w.WriteArrayLength(-1);
      }
      if (v >= 11) w.WriteInt32(-1);  // preferred read replica
      w.WriteBytes(records);
    }
  }
  return FinishResponse(w);
}

std::optional<std::string> RequestHandler::HandleFetch(
    const ConnectionInfo& conn, const RequestHeader& h, WireReader& r,
    int64_t now_ms, HandleOutcome* outcome) {
  const int16_t v = h.api_version;
  FetchRequest req;
  r.ReadInt32();  // replica id
  req.max_wait_ms = r.ReadInt32();
  req.min_bytes = r.ReadInt32();
  req.max_bytes = r.ReadInt32();
  req.isolation_level = r.ReadInt8();
  if (v >= 7) {
    r.ReadInt32();  // session id
    r.ReadInt32();  // session epoch
  }
  int32_t topic_count = r.ReadArrayLength();
  for (int32_t t = 0; t < topic_count && r.ok(); ++t) {
    FetchTopic ft;
    ft.name = r.ReadString();
    int32_t part_count = r.ReadArrayLength();
    for (int32_t p = 0; p < part_count && r.ok(); ++p) {
      FetchPartition fp;
      fp.partition = r.ReadInt32();
      if (v >= 9) r.ReadInt32();  // current leader epoch
      fp.fetch_offset = r.ReadInt64();
      if (v >= 5) r.ReadInt64();  // log start offset (followers only)
      fp.max_bytes = r.ReadInt32();
      ft.partitions.push_back(fp);
    }
    req.topics.push_back(std::move(ft));
  }
  if (v >= 7) {
    int32_t forgotten = r.ReadArrayLength();
    for (int32_t t = 0; t < forgotten && r.ok(); ++t) {
      r.ReadString();
      int32_t n = r.ReadArrayLength();
      for (int32_t p = 0; p < n && r.ok(); ++p) r.ReadInt32();
    }
  }
  if (v >= 11) r.ReadNullableString();  // rack id
  if (!r.ok()) return std::nullopt;
  if (req.isolation_level != 0 && req.isolation_level != 1) return std::nullopt;

  bool has_error = false;
  size_t bytes = FetchableBytes(req, &has_error);
  if (has_error || req.max_wait_ms <= 0 ||
      bytes >= static_cast<size_t>(std::max(req.min_bytes, 1))) {
    return BuildFetchResponse(h, req);
  }
  PendingFetch pf;
  pf.header = h;
  pf.deadline_ms = now_ms + req.max_wait_ms;
  pf.seen_version = logs_->version();
  pf.request = std::move(req);
  pending_fetches_[conn.id] = std::move(pf);
  *outcome = HandleOutcome::kDeferred;
  return std::string();
}

std::optional<std::string> RequestHandler::HandleListOffsets(
    const ConnectionInfo&, const RequestHeader& h, WireReader& r, int64_t,
    HandleOutcome*) {
  const int16_t v = h.api_version;
  r.ReadInt32();  // replica id
  int8_t isolation = v >= 2 ? r.ReadInt8() : 0;
  struct Part {
    int32_t index;
    int64_t timestamp;
  };
  std::vector<std::pair<std::string, std::vector<Part>>> topics;
  int32_t topic_count = r.ReadArrayLength();
  for (int32_t t = 0; t < topic_count && r.ok(); ++t) {
    std::pair<std::string, std::vector<Part>> topic;
    topic.first = r.ReadString();
    int32_t n = r.ReadArrayLength();
    for (int32_t p = 0; p < n && r.ok(); ++p) {
      Part part;
      part.index = r.ReadInt32();
      part.timestamp = r.ReadInt64();
      topic.second.push_back(part);
    }
    topics.push_back(std::move(topic));
  }
  if (!r.ok()) return std::nullopt;
  WireWriter w;
  BeginResponse(w, h);
  if (v >= 2) w.WriteInt32(0);
  w.WriteArrayLength(static_cast<int32_t>(topics.size()));
  for (const auto& [name, parts] : topics) {
    w.WriteString(name);
    w.WriteArrayLength(static_cast<int32_t>(parts.size()));
    for (const Part& p : parts) {
      PartitionLog* log = logs_->GetPartition(name, p.index);
      Err err = Err::kNone;
      int64_t offset = -1;
      int64_t timestamp = -1;
      if (log == nullptr) {
        err = Err::kUnknownTopicOrPartition;
      } else if (p.timestamp == kLatestTimestamp) {
        offset = isolation == 1 ? log->last_stable_offset()
                                : log->high_watermark();
      } else if (p.timestamp == kEarliestTimestamp) {
        offset = log->log_start_offset();
      } else {
        offset = log->OffsetForTimestamp(p.timestamp);
        if (offset >= 0) timestamp = p.timestamp;
      }
      w.WriteInt32(p.index);
      w.WriteInt16(ErrCode(err));
      w.WriteInt64(timestamp);
      w.WriteInt64(offset);
    }
  }
  return FinishResponse(w);
}

}  // namespace devbroker
