#include "changelog_reader.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace streams::runtime::internal {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

ChangelogReader::ChangelogReader(ThreadShared* shared, std::string log_name,
                                 const std::atomic<bool>* stop)
    : shared_(shared), config_(*shared->config), log_name_(std::move(log_name)), stop_(stop) {}

ChangelogReader::~ChangelogReader() { Close(); }

Status ChangelogReader::Create() {
  auto props = config_.KafkaProperties(ClientKind::kRestoreConsumer);
  // librdkafka's consumer API (assign, consumer_poll) needs a group.id; this
  // consumer never subscribes nor commits, so it never joins that group.
  props["group.id"] = log_name_ + "-restore";
  props["enable.auto.commit"] = "false";
  props["enable.auto.offset.store"] = "false";
  props["isolation.level"] = "read_committed";
  props["enable.partition.eof"] = "true";
  props["auto.offset.reset"] = "earliest";
  // A restore ends with EOF at the end offset, which librdkafka reports only
  // after a fetch at that offset came back empty, i.e. after the broker's long
  // poll of fetch.wait.max.ms (500 ms by default). Under exactly_once_v2 every
  // restore ends so, even one of nothing: a checkpoint stops just before the
  // commit marker of the task's last transaction. The restore consumer is
  // assigned only while restoring, so short long polls cost nothing otherwise.
  props.emplace("fetch.wait.max.ms", "10");
  // Fetch ahead while the thread applies what it has: with librdkafka's
  // defaults (refill below 100,000 queued messages per partition) the thread
  // waited on fetches for about two thirds of a restore. Measured, one task,
  // 775,000 records on devbroker: 6.1 s with the defaults, 2.1 s with these
  // (1.8 s with a 64 MB queue); the bound applies to the consumer's one queue,
  // whatever the number of partitions, and costs up to about 130 MB of RSS.
  props.emplace("queued.min.messages", "1000000");
  props.emplace("queued.max.messages.kbytes", "32768");
  // These two clients make only short requests (watermark lookups, fetches
  // that wait 10 ms), so a request to a broker that is down times out after
  // the lookup timeout instead of socket.timeout.ms (60 s).
  const std::string lookup_ms = std::to_string(config_.offsets_lookup_timeout().count());
  props.emplace("socket.timeout.ms", lookup_ms);
  STREAMS_ASSIGN_OR_RETURN(KafkaConf conf, MakeConf(props, log_name_ + "-restore-consumer"));
  STREAMS_ASSIGN_OR_RETURN(restore_consumer_, NewClient(RD_KAFKA_CONSUMER, std::move(conf)));
  rd_kafka_poll_set_consumer(restore_consumer_.get());

  auto offsets_props = config_.KafkaProperties(ClientKind::kRestoreConsumer);
  offsets_props["isolation.level"] = "read_uncommitted";
  offsets_props["enable.auto.commit"] = "false";
  offsets_props.emplace("socket.timeout.ms", lookup_ms);
  STREAMS_ASSIGN_OR_RETURN(KafkaConf offsets_conf, MakeConf(offsets_props, log_name_ + "-offsets"));
  STREAMS_ASSIGN_OR_RETURN(offsets_client_, NewClient(RD_KAFKA_CONSUMER, std::move(offsets_conf)));
  return Status::Ok();
}

void ChangelogReader::Close() {
  if (restore_consumer_) {
    // Deliberately ignored: the restore consumer never subscribes; closing it
    // only drops its assignment.
    (void)rd_kafka_consumer_close(restore_consumer_.get());
    restore_consumer_.reset();
  }
  assigned_.clear();
  offsets_client_.reset();
  partitions_.clear();
  tasks_.clear();
  active_registered_ = 0;
}

Result<bool> ChangelogReader::Register(StreamTask* task) {
  return RegisterTask(task, /*standby=*/false);
}

Status ChangelogReader::RegisterStandby(StreamTask* task) {
  return RegisterTask(task, /*standby=*/true).status();
}

Result<bool> ChangelogReader::RegisterTask(StreamTask* task, bool standby) {
  const Partition partition = task->id().partition;
  Unregister(partition);
  const std::string task_name = task->id().ToString();
  std::vector<std::pair<TopicPartition, ChangelogPartition>> parts;
  for (const RestoreSpec& spec : task->RestoreSpecs()) {
    // [low, high): the whole log (high is the high watermark, see
    // offsets_client_). Records of transactions still open below it are
    // waited for: the read_committed restore consumer reaches `high` only
    // once they are committed or aborted.
    int64_t low = 0, high = 0;
    STREAMS_RETURN_IF_ERROR(RetryLookup(
        [&](int timeout_ms) {
          return QueryWatermarks(offsets_client_.get(), spec.changelog, &low, &high, timeout_ms);
        },
        "watermarks of changelog " + spec.changelog.ToString(), config_.offsets_lookup_timeout(),
        *stop_, log_name_));
    const int64_t from = spec.from ? spec.from->value() : low;
    if (spec.from && (from > high || from < low)) {
      return Status::Corruption("store '" + spec.store + "' checkpointed at changelog offset " +
                                std::to_string(from) + " outside [" + std::to_string(low) + ", " +
                                std::to_string(high) + "] of " + spec.changelog.ToString());
    }
    if (standby) {
      ChangelogPartition cp;
      cp.task = partition;
      cp.store = spec.store;
      cp.end = INT64_MAX;
      cp.position = from;
      cp.standby = true;
      parts.emplace_back(spec.changelog, std::move(cp));
      continue;
    }
    if (from >= high) continue;
    // The read_committed end (last stable offset), for the operator only.
    int64_t stable_low = 0, stable = 0;
    if (QueryWatermarks(restore_consumer_.get(), spec.changelog, &stable_low, &stable,
                        TimeoutMs(config_.offsets_lookup_timeout())) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        stable < high) {
      spdlog::info(
          "[{}] task {}: a transaction is open on {} (last stable offset {}, end {}); the "
          "restore waits until it is committed or aborted",
          log_name_, task_name, spec.changelog.ToString(), stable, high);
    }
    ChangelogPartition cp;
    cp.task = partition;
    cp.store = spec.store;
    cp.end = high;
    cp.position = from;
    parts.emplace_back(spec.changelog, std::move(cp));
  }
  if (standby) {
    for (auto& [tp, cp] : parts) {
      spdlog::info("[{}] standby task {}: tailing store '{}' from {} offset {}", log_name_,
                   task_name, cp.store, tp.ToString(), cp.position);
      partitions_.insert_or_assign(tp, std::move(cp));
    }
    tasks_.insert_or_assign(partition, TaskRestore{task, SteadyClock::now(), 0, true});
    Reassign();
    return true;
  }
  if (parts.empty()) return false;
  int64_t total = 0;
  for (auto& [tp, cp] : parts) {
    total += cp.end - cp.position;
    shared_->metrics->SetRestoreRemaining(task_name, cp.store, cp.end - cp.position);
    spdlog::info("[{}] task {}: restoring store '{}' from {} offsets [{}, {})", log_name_,
                 task_name, cp.store, tp.ToString(), cp.position, cp.end);
    partitions_.insert_or_assign(tp, std::move(cp));
  }
  tasks_.insert_or_assign(partition, TaskRestore{task, SteadyClock::now(), 0, false});
  ++active_registered_;
  spdlog::info("[{}] task {}: restoring up to {} changelog records", log_name_, task_name, total);
  Reassign();
  return true;
}

void ChangelogReader::Forget(std::map<Partition, TaskRestore>::iterator it) {
  const Partition partition = it->first;
  if (!it->second.standby) --active_registered_;
  tasks_.erase(it);
  std::erase_if(partitions_, [&](const auto& entry) { return entry.second.task == partition; });
}

void ChangelogReader::Unregister(Partition partition) {
  auto it = tasks_.find(partition);
  if (it == tasks_.end()) return;
  Forget(it);
  Reassign();
}

void ChangelogReader::Clear() {
  for (auto it = tasks_.begin(); it != tasks_.end();) {
    auto next = std::next(it);
    if (!it->second.standby) Forget(it);
    it = next;
  }
  Reassign();
}

void ChangelogReader::Reassign() {
  if (!restore_consumer_) return;
  // Incremental changes only: librdkafka 2.0.2 aborts the process
  // (rd_kafka_assignment_partition_stopped: assert rktp_started) when a
  // started partition is removed twice before its fetcher confirmed the first
  // stop, which replacing the whole assignment (rd_kafka_assign) on two
  // quick consecutive calls does. Each partition is now added once, when its
  // restore starts, and removed once, when it is done or its task is gone.
  std::map<TopicPartition, std::optional<Offset>> add;
  std::map<TopicPartition, std::optional<Offset>> remove;
  for (const TopicPartition& tp : assigned_) {
    auto it = partitions_.find(tp);
    if (it == partitions_.end() || it->second.done || !it->second.assigned) {
      remove.emplace(tp, std::nullopt);
    }
  }
  for (auto& [tp, cp] : partitions_) {
    if (cp.done || cp.assigned) continue;
    add.emplace(tp, Offset(cp.position));
  }
  const auto apply = [&](const std::map<TopicPartition, std::optional<Offset>>& which,
                         bool assign) {
    if (which.empty()) return;
    PartitionList list = MakePartitionList(which);
    rd_kafka_error_t* error =
        assign ? rd_kafka_incremental_assign(restore_consumer_.get(), list.get())
               : rd_kafka_incremental_unassign(restore_consumer_.get(), list.get());
    if (error != nullptr) {
      // Logged, not failed: a partition left assigned is only read and
      // ignored (Restore skips records of partitions not restoring); one not
      // added leaves its task restoring, visible in restore metrics.
      spdlog::error("[{}] {} the restore consumer: {}", log_name_,
                    assign ? "assigning" : "unassigning", rd_kafka_error_string(error));
      rd_kafka_error_destroy(error);
      return;
    }
    for (const auto& [tp, offset] : which) {
      if (assign) {
        assigned_.insert(tp);
        partitions_.at(tp).assigned = true;
      } else {
        assigned_.erase(tp);
      }
    }
  };
  apply(remove, /*assign=*/false);
  apply(add, /*assign=*/true);
}

Result<std::vector<ChangelogReader::Restored>> ChangelogReader::Restore(milliseconds timeout) {
  int64_t polled = 0;
  while (polled < config_.restore_batch_records()) {
    rd_kafka_message_t* m =
        rd_kafka_consumer_poll(restore_consumer_.get(), polled == 0 ? TimeoutMs(timeout) : 0);
    if (m == nullptr) break;
    ++polled;
    if (m->rkt == nullptr) {
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        spdlog::warn("[{}] restore consumer: {}", log_name_, rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    TopicPartition tp{rd_kafka_topic_name(m->rkt), Partition(m->partition)};
    auto it = partitions_.find(tp);
    if (it == partitions_.end() || it->second.done) {
      rd_kafka_message_destroy(m);
      continue;
    }
    ChangelogPartition& cp = it->second;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (!cp.standby && m->offset >= cp.end) cp.done = true;
    } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("[{}] restore consumer {}: {}", log_name_, tp.ToString(),
                   rd_kafka_message_errstr(m));
    } else if (m->offset >= cp.position) {
      state::ChangelogRecord record;
      record.store = cp.store;
      if (m->key != nullptr) record.key.assign(static_cast<const char*>(m->key), m->key_len);
      if (m->payload != nullptr) {
        record.value.emplace(static_cast<const char*>(m->payload), m->len);
      }
      rd_kafka_timestamp_type_t type;
      int64_t ts = rd_kafka_message_timestamp(m, &type);
      record.timestamp = Timestamp(std::max<int64_t>(ts, 0));
      cp.batch.push_back(std::move(record));
      cp.position = m->offset + 1;
      if (!cp.standby && cp.position >= cp.end) cp.done = true;
    }
    rd_kafka_message_destroy(m);
  }

  // Apply the batches.
  for (auto& [tp, cp] : partitions_) {
    if (cp.batch.empty()) continue;
    auto task = tasks_.find(cp.task);
    if (task == tasks_.end()) {
      cp.batch.clear();
      continue;
    }
    const std::string task_name = TaskId{cp.task}.ToString();
    const uint64_t count = cp.batch.size();
    Status applied = task->second.task->ApplyRestoreBatch(cp.store, cp.batch, Offset(cp.position));
    cp.batch.clear();
    if (!applied.ok()) {
      return applied.WithContext("restoring task " + task_name + " store '" + cp.store + "'");
    }
    task->second.records += count;
    if (cp.standby) {
      shared_->stats->Add([count](KafkaStreamsStats& s) { s.standby_records_applied += count; });
      shared_->metrics->AddStandbyRecordsApplied(count);
      continue;
    }
    shared_->metrics->AddRestored(task_name, cp.store, count);
    shared_->metrics->SetRestoreRemaining(task_name, cp.store,
                                          std::max<int64_t>(0, cp.end - cp.position));
    shared_->stats->Add([count](KafkaStreamsStats& s) { s.records_restored += count; });
  }

  // Tasks whose partitions are all done.
  std::vector<Restored> finished;
  for (auto it = tasks_.begin(); it != tasks_.end();) {
    const Partition partition = it->first;
    if (it->second.standby) {
      ++it;
      continue;
    }
    const bool all_done = std::all_of(partitions_.begin(), partitions_.end(), [&](const auto& e) {
      return e.second.task != partition || e.second.done;
    });
    if (!all_done) {
      ++it;
      continue;
    }
    const std::string task_name = TaskId{partition}.ToString();
    for (auto p = partitions_.begin(); p != partitions_.end();) {
      if (p->second.task == partition) {
        shared_->metrics->SetRestoreRemaining(task_name, p->second.store, 0);
        p = partitions_.erase(p);
      } else {
        ++p;
      }
    }
    finished.push_back(
        Restored{partition, it->second.records,
                 std::chrono::duration<double>(SteadyClock::now() - it->second.started).count()});
    it = tasks_.erase(it);
    --active_registered_;
  }
  if (!finished.empty()) Reassign();
  return finished;
}

void ChangelogReader::PollIdle() {
  // The restore consumer is polled by Restore while restoring; otherwise its
  // queue (errors, rebalance-free consumer events) is served here.
  if (restore_consumer_ && tasks_.empty()) {
    while (rd_kafka_message_t* m = rd_kafka_consumer_poll(restore_consumer_.get(), 0)) {
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        spdlog::debug("[{}] restore consumer: {}", log_name_, rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
    }
  }
  // The offsets client is never assigned; its main queue (error events) is
  // served by rd_kafka_poll.
  if (offsets_client_) rd_kafka_poll(offsets_client_.get(), 0);
}

}  // namespace streams::runtime::internal
