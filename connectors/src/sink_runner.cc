#include "streams/connect/sink_runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "streams/connect/sql_transaction.h"

namespace streams::connect {
namespace {

using Clock = std::chrono::steady_clock;

struct ListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, ListDeleter>;

Status SetAll(rd_kafka_conf_t* conf, const std::map<std::string, std::string>& properties,
              const char* client) {
  char err[512];
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      return Status::InvalidArgument(std::string(client) + " property '" + key + "': " + err);
    }
  }
  return Status::Ok();
}

std::string Identity(std::string_view s) { return std::string(s); }

}  // namespace

Result<std::unique_ptr<SinkRunner>> SinkRunner::Create(SinkTask* task, SinkRunnerOptions options,
                                                       SinkMetrics* metrics) {
  if (task == nullptr || metrics == nullptr) {
    return Status::InvalidArgument("SinkRunner needs a task and metrics");
  }
  if (options.group_id.empty() || options.topics.empty() || options.dead_letter_topic.empty()) {
    return Status::InvalidArgument("SinkRunner needs a group id, topics and a dead-letter topic");
  }
  if (options.batch_max_records < 1) {
    return Status::InvalidArgument("batch_max_records must be >= 1");
  }
  auto runner = std::unique_ptr<SinkRunner>(new SinkRunner());
  runner->task_ = task;
  runner->metrics_ = metrics;
  runner->options_ = std::move(options);
  if (!runner->options_.redact) runner->options_.redact = Identity;
  runner->breaker_ = std::make_unique<CircuitBreaker>(runner->options_.retry_backoff,
                                                      runner->options_.breaker_open_after);
  char err[512];

  rd_kafka_conf_t* cconf = rd_kafka_conf_new();
  std::map<std::string, std::string> cprops = runner->options_.consumer_properties;
  cprops["group.id"] = runner->options_.group_id;
  cprops["enable.auto.commit"] = "false";
  cprops["enable.auto.offset.store"] = "false";
  cprops["isolation.level"] = "read_committed";
  cprops["auto.offset.reset"] = runner->options_.start_from_earliest ? "earliest" : "latest";
  cprops["enable.partition.eof"] = "false";
  if (Status s = SetAll(cconf, cprops, "consumer"); !s.ok()) {
    rd_kafka_conf_destroy(cconf);
    return s;
  }
  rd_kafka_conf_set_opaque(cconf, runner.get());
  rd_kafka_conf_set_rebalance_cb(cconf, &SinkRunner::RebalanceTrampoline);
  runner->consumer_ = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, err, sizeof(err));
  if (runner->consumer_ == nullptr) {
    rd_kafka_conf_destroy(cconf);
    return Status::InvalidArgument(std::string("consumer: ") + err);
  }
  rd_kafka_poll_set_consumer(runner->consumer_);

  rd_kafka_conf_t* pconf = rd_kafka_conf_new();
  std::map<std::string, std::string> pprops = runner->options_.producer_properties;
  pprops["enable.idempotence"] = "true";
  if (Status s = SetAll(pconf, pprops, "dead-letter producer"); !s.ok()) {
    rd_kafka_conf_destroy(pconf);
    return s;
  }
  rd_kafka_conf_set_opaque(pconf, runner.get());
  rd_kafka_conf_set_dr_msg_cb(pconf, [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      auto* self = static_cast<SinkRunner*>(opaque);
      std::lock_guard<std::mutex> lock(self->mu_);
      self->last_error_ = std::string("dead-letter delivery: ") + rd_kafka_err2str(m->err);
      ++self->dlq_delivery_errors_;
    }
  });
  runner->producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof(err));
  if (runner->producer_ == nullptr) {
    rd_kafka_conf_destroy(pconf);
    return Status::InvalidArgument(std::string("dead-letter producer: ") + err);
  }
  return runner;
}

SinkRunner::~SinkRunner() {
  if (consumer_ != nullptr) rd_kafka_destroy(consumer_);
  if (producer_ != nullptr) {
    rd_kafka_flush(producer_, 2000);
    rd_kafka_destroy(producer_);
  }
}

std::string SinkRunner::unhealthy_reason() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!fatal_.empty()) return fatal_;
  if (circuit_open_) return "database circuit breaker open: " + last_error_;
  return "";
}

SinkRunnerStats SinkRunner::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

std::vector<TopicPartition> SinkRunner::owned_partitions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return owned_;
}

void SinkRunner::RebalanceTrampoline(rd_kafka_t*, rd_kafka_resp_err_t err,
                                     rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  static_cast<SinkRunner*>(opaque)->OnRebalance(err, partitions);
}

void SinkRunner::OnRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions) {
  std::vector<TopicPartition> tps;
  for (int i = 0; i < partitions->cnt; ++i) {
    tps.push_back(
        TopicPartition{partitions->elems[i].topic, Partition(partitions->elems[i].partition)});
  }
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    spdlog::info("sink: assigned {} partitions", tps.size());
    for (const auto& tp : tps) partitions_[tp] = PartitionState{};
    task_->OnAssigned(tps);
    OpenPending(/*reassign_always=*/true);
  } else {
    spdlog::info("sink: {} partitions revoked", tps.size());
    for (const auto& tp : tps) partitions_.erase(tp);
    std::erase_if(batch_, [&](const ConsumedRecord& r) {
      return std::find(tps.begin(), tps.end(), TopicPartition{r.topic, r.partition}) != tps.end();
    });
    std::erase_if(dead_lettered_, [&](const auto& entry) {
      return std::find(tps.begin(), tps.end(), entry.first) != tps.end();
    });
    isolate_remaining_ = 0;
    task_->OnRevoked(tps);
    rd_kafka_assign(consumer_, nullptr);
    partitions_.clear();
    for (auto& [tp, gauge] : lag_gauges_) metrics_->consumer_lag.Remove(gauge);
    lag_gauges_.clear();
    UpdateOwned();
  }
  metrics_->assigned_partitions.Set(static_cast<double>(partitions_.size()));
  UpdateReady();
}

void SinkRunner::Reassign() {
  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions_.size())));
  PartitionList closed(rd_kafka_topic_partition_list_new(static_cast<int>(partitions_.size())));
  PartitionList flowing(rd_kafka_topic_partition_list_new(static_cast<int>(partitions_.size())));
  for (const auto& [tp, state] : partitions_) {
    auto* elem =
        rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition.value());
    if (state.open && (state.stored || state.next_fetch.value() > 0)) {
      elem->offset = state.next_fetch.value();
    } else {
      elem->offset = options_.start_from_earliest ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    }
    rd_kafka_topic_partition_list_add(!state.open || paused_ ? closed.get() : flowing.get(),
                                      tp.topic.c_str(), tp.partition.value());
  }
  if (rd_kafka_resp_err_t e = rd_kafka_assign(consumer_, list.get()); e) {
    spdlog::warn("sink: assign failed: {}", rd_kafka_err2str(e));
  }
  // librdkafka keeps a partition's pause flag across assignments.
  if (closed->cnt > 0) rd_kafka_pause_partitions(consumer_, closed.get());
  if (flowing->cnt > 0) rd_kafka_resume_partitions(consumer_, flowing.get());
  UpdateOwned();
}

void SinkRunner::UpdateOwned() {
  std::vector<TopicPartition> owned;
  for (const auto& [tp, state] : partitions_) {
    if (state.open) owned.push_back(tp);
  }
  std::lock_guard<std::mutex> lock(mu_);
  owned_ = std::move(owned);
}

void SinkRunner::OpenPending(bool reassign_always) {
  std::vector<TopicPartition> pending;
  for (const auto& [tp, state] : partitions_) {
    if (!state.open) pending.push_back(tp);
  }
  bool loaded = false;
  if (!pending.empty() && breaker_->AllowAttempt(Clock::now())) {
    auto positions = task_->LoadPositions(pending);
    if (positions.ok()) {
      for (const auto& tp : pending) {
        PartitionState& state = partitions_[tp];
        state.open = true;
        auto it = positions->find(tp);
        state.stored = it == positions->end() ? std::nullopt : std::optional<Offset>(it->second);
        state.next_fetch = state.stored.value_or(Offset(0));
        spdlog::info("sink: {} starts at {}", tp.ToString(),
                     state.stored
                         ? std::to_string(state.stored->value())
                         : std::string(options_.start_from_earliest ? "earliest" : "latest"));
      }
      breaker_->RecordSuccess();
      loaded = true;
    } else {
      TransientFailure(positions.status(), "loading stored positions");
    }
  }
  if (loaded || reassign_always) Reassign();
  UpdateReady();
}

void SinkRunner::UpdateReady() {
  bool all_open = std::all_of(partitions_.begin(), partitions_.end(),
                              [](const auto& entry) { return entry.second.open; });
  bool open_circuit = breaker_->state(Clock::now()) != CircuitBreaker::State::kClosed;
  metrics_->circuit_open.Set(open_circuit ? 1 : 0);
  {
    std::lock_guard<std::mutex> lock(mu_);
    circuit_open_ = open_circuit;
    ready_.store(fatal_.empty() && subscribed_ && !paused_ && all_open &&
                 breaker_->consecutive_failures() == 0);
  }
}

void SinkRunner::Accept(rd_kafka_message_t* m) {
  if (paused_) return;  // Re-read after the resume's seek.
  TopicPartition tp{rd_kafka_topic_name(m->rkt), Partition(m->partition)};
  auto it = partitions_.find(tp);
  if (it == partitions_.end() || !it->second.open) return;
  if (m->offset < it->second.next_fetch.value()) return;  // Already written.
  ConsumedRecord record;
  record.topic = tp.topic;
  record.partition = tp.partition;
  record.offset = Offset(m->offset);
  rd_kafka_timestamp_type_t type;
  record.timestamp = Timestamp(rd_kafka_message_timestamp(m, &type));
  if (m->key != nullptr) record.key.emplace(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) {
    record.value.emplace(static_cast<const char*>(m->payload), m->len);
  }
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == 0; ++i) {
      record.headers.push_back(
          Header{name, value == nullptr ? "" : std::string(static_cast<const char*>(value), size)});
    }
  }
  it->second.next_fetch = Offset(m->offset + 1);
  if (batch_.empty()) batch_started_ = Clock::now();
  batch_.push_back(std::move(record));
  metrics_->records_consumed.Increment();
}

Status SinkRunner::DeadLetter(const ConsumedRecord& record, const Status& error,
                              const std::string& stage) {
  const std::string partition = std::to_string(record.partition.value());
  const std::string offset = std::to_string(record.offset.value());
  const std::string class_name = "streams.Status." + std::string(StatusCodeName(error.code()));
  const std::string message = options_.redact(error.message());
  std::optional<std::string> key, value;
  if (record.key) key = options_.redact(*record.key);
  if (record.value) value = options_.redact(*record.value);
  rd_kafka_headers_t* headers = rd_kafka_headers_new(8);
  auto add = [&](const char* name, const std::string& v) {
    rd_kafka_header_add(headers, name, -1, v.data(), static_cast<ssize_t>(v.size()));
  };
  add("__connect.errors.topic", record.topic);
  add("__connect.errors.partition", partition);
  add("__connect.errors.offset", offset);
  add("__connect.errors.connector.name", options_.connector_name);
  add("__connect.errors.task.id", "0");
  add("__connect.errors.stage", stage);
  add("__connect.errors.class.name", class_name);
  add("__connect.errors.exception.message", message);
  int64_t errors_before;
  {
    std::lock_guard<std::mutex> lock(mu_);
    errors_before = dlq_delivery_errors_;
  }
  const void* key_ptr = key ? key->data() : nullptr;
  const size_t key_len = key ? key->size() : 0;
  void* value_ptr = value ? value->data() : nullptr;
  const size_t value_len = value ? value->size() : 0;
  rd_kafka_resp_err_t err = rd_kafka_producev(
      producer_, RD_KAFKA_V_TOPIC(options_.dead_letter_topic.c_str()),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key_ptr, key_len),
      RD_KAFKA_V_VALUE(value_ptr, value_len), RD_KAFKA_V_TIMESTAMP(record.timestamp.millis()),
      RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(headers);  // Not taken over on failure.
    return Status::Unavailable(std::string("dead-letter produce: ") + rd_kafka_err2str(err));
  }
  if (rd_kafka_flush(producer_, static_cast<int>(options_.dead_letter_timeout.count())) !=
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Status::Unavailable("dead-letter produce to " + options_.dead_letter_topic +
                               " timed out");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (dlq_delivery_errors_ != errors_before) return Status::Unavailable(last_error_);
    ++stats_.dead_letters;
  }
  metrics_->dead_letters.Add({{"stage", stage}}).Increment();
  spdlog::warn("sink: {}-{}@{} dead-lettered to {} (stage {}): {}", record.topic, partition, offset,
               options_.dead_letter_topic, stage, message);
  return Status::Ok();
}

void SinkRunner::TransientFailure(const Status& status, const char* what) {
  std::chrono::milliseconds delay = breaker_->RecordFailure(Clock::now());
  metrics_->CountDatabaseRetry(SqlStateOf(status));
  metrics_->batches.Add({{"result", "retried"}}).Increment();
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = status.ToString();
    ++stats_.transient_failures;
  }
  spdlog::warn("sink: {} failed ({}), retrying in {} ms (failure {} in a row)", what,
               status.ToString(), delay.count(), breaker_->consecutive_failures());
  Pause();
}

void SinkRunner::Pause() {
  if (paused_) return;
  paused_ = true;
  paused_since_ = Clock::now();
  metrics_->paused.Set(1);
  PartitionList assigned;
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (rd_kafka_assignment(consumer_, &raw) == RD_KAFKA_RESP_ERR_NO_ERROR && raw != nullptr) {
    assigned.reset(raw);
    rd_kafka_pause_partitions(consumer_, assigned.get());
  }
  spdlog::warn("sink: partitions paused until the database answers");
  UpdateReady();
}

void SinkRunner::Resume() {
  if (!paused_) return;
  paused_ = false;
  AccountPaused();
  metrics_->paused.Set(0);
  Reassign();  // Seeks every open partition to the record after the batch.
  spdlog::info("sink: database available again, partitions resumed");
  UpdateReady();
}

void SinkRunner::AccountPaused() {
  auto now = Clock::now();
  metrics_->paused_seconds.Increment(std::chrono::duration<double>(now - paused_since_).count());
  paused_since_ = now;
}

void SinkRunner::CommitToKafka(const std::vector<PositionUpdate>& positions) {
  if (!options_.commit_offsets_to_kafka || positions.empty()) return;
  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(positions.size())));
  for (const auto& p : positions) {
    rd_kafka_topic_partition_list_add(list.get(), p.tp.topic.c_str(), p.tp.partition.value())
        ->offset = p.next.value();
  }
  rd_kafka_commit(consumer_, list.get(), /*async=*/1);  // Monitoring only; errors are harmless.
}

SinkRunner::FlushResult SinkRunner::Flush() {
  if (batch_.empty()) return FlushResult::kDone;
  const size_t n = isolate_remaining_ > 0 ? 1 : batch_.size();
  const auto started = Clock::now();

  std::vector<const ConsumedRecord*> good;
  std::map<TopicPartition, Offset> next;
  for (size_t i = 0; i < n; ++i) {
    const ConsumedRecord& r = batch_[i];
    TopicPartition tp{r.topic, r.partition};
    next.insert_or_assign(tp, r.offset.Next());
    if (dead_lettered_.count({tp, r.offset.value()}) > 0) continue;
    Status valid = task_->Validate(r);
    if (valid.ok()) {
      good.push_back(&r);
      continue;
    }
    if (Status s = DeadLetter(r, valid, "VALUE_CONVERTER"); !s.ok()) {
      TransientFailure(s, "dead-letter produce");
      return FlushResult::kTransient;
    }
    dead_lettered_.insert({tp, r.offset.value()});
  }
  std::vector<PositionUpdate> positions;
  for (const auto& [tp, offset] : next) {
    positions.push_back(PositionUpdate{tp, partitions_[tp].stored, offset});
  }

  Status status = task_->Put(good, positions);
  if (status.code() == StatusCode::kFailedPrecondition) {
    if (n > 1) {
      spdlog::warn("sink: a record of the batch cannot be written ({}); writing one at a time",
                   options_.redact(status.message()));
      metrics_->batches.Add({{"result", "isolated"}}).Increment();
      isolate_remaining_ = n;
      return FlushResult::kDone;
    }
    const ConsumedRecord& r = batch_.front();
    if (dead_lettered_.count({TopicPartition{r.topic, r.partition}, r.offset.value()}) == 0) {
      if (Status s = DeadLetter(r, status, "TASK_PUT"); !s.ok()) {
        TransientFailure(s, "dead-letter produce");
        return FlushResult::kTransient;
      }
      dead_lettered_.insert({TopicPartition{r.topic, r.partition}, r.offset.value()});
    }
    good.clear();
    status = task_->Put(good, positions);
  }
  if (status.ok()) {
    for (const auto& p : positions) {
      auto it = partitions_.find(p.tp);
      if (it != partitions_.end()) it->second.stored = p.next;
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    metrics_->batch_duration.Observe(seconds);
    metrics_->batch_records.Observe(static_cast<double>(good.size()));
    metrics_->batches.Add({{"result", "committed"}}).Increment();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.records_written += static_cast<int64_t>(good.size());
      ++stats_.batches_committed;
    }
    for (size_t i = 0; i < n; ++i) {
      dead_lettered_.erase(
          {TopicPartition{batch_[i].topic, batch_[i].partition}, batch_[i].offset.value()});
    }
    batch_.erase(batch_.begin(), batch_.begin() + static_cast<std::ptrdiff_t>(n));
    if (isolate_remaining_ > 0) --isolate_remaining_;
    if (!batch_.empty()) batch_started_ = Clock::now();
    breaker_->RecordSuccess();
    CommitToKafka(positions);
    UpdateReady();
    return FlushResult::kDone;
  }
  if (status.code() == StatusCode::kFenced) {
    spdlog::warn("sink: {}; dropping the batch and reloading positions", status.message());
    metrics_->offset_conflicts.Increment();
    metrics_->batches.Add({{"result", "fenced"}}).Increment();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.fenced;
    }
    breaker_->RecordSuccess();  // The database answered.
    batch_.clear();
    dead_lettered_.clear();
    isolate_remaining_ = 0;
    for (auto& [tp, state] : partitions_) state.open = false;
    OpenPending(/*reassign_always=*/true);
    return FlushResult::kDone;
  }
  TransientFailure(status, "writing a batch");
  return FlushResult::kTransient;
}

void SinkRunner::UpdateLag() {
  lag_updated_ = Clock::now();
  std::map<TopicPartition, int64_t> first_pending;  // Lowest offset in the batch.
  for (const ConsumedRecord& r : batch_) {
    first_pending.emplace(TopicPartition{r.topic, r.partition}, r.offset.value());
  }
  for (const auto& [tp, state] : partitions_) {
    int64_t low = 0, high = 0;
    // Cached watermarks (no request); skipped until the first fetch returns them.
    if (rd_kafka_get_watermark_offsets(consumer_, tp.topic.c_str(), tp.partition.value(), &low,
                                       &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        high < 0) {
      continue;
    }
    int64_t position = state.next_fetch.value();
    if (auto it = first_pending.find(tp); it != first_pending.end()) {
      position = it->second;
    } else if (state.open) {
      // The consumer's position also moves past transaction markers, which
      // next_fetch (after the last record read) does not.
      PartitionList list(rd_kafka_topic_partition_list_new(1));
      rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition.value());
      if (rd_kafka_position(consumer_, list.get()) == RD_KAFKA_RESP_ERR_NO_ERROR &&
          list->elems[0].offset >= 0) {
        position = std::max(position, list->elems[0].offset);
      }
    }
    auto [it, added] = lag_gauges_.emplace(tp, nullptr);
    if (added) {
      it->second = &metrics_->consumer_lag.Add(
          {{"topic", tp.topic}, {"partition", std::to_string(tp.partition.value())}});
    }
    it->second->Set(static_cast<double>(std::max<int64_t>(0, high - position)));
  }
}

Status SinkRunner::Run(const std::atomic<bool>& stop) {
  PartitionList topics(rd_kafka_topic_partition_list_new(static_cast<int>(options_.topics.size())));
  for (const auto& t : options_.topics) {
    rd_kafka_topic_partition_list_add(topics.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  }
  if (rd_kafka_resp_err_t e = rd_kafka_subscribe(consumer_, topics.get()); e) {
    std::lock_guard<std::mutex> lock(mu_);
    fatal_ = std::string("subscribe: ") + rd_kafka_err2str(e);
    return Status::Internal(fatal_);
  }
  subscribed_ = true;
  UpdateReady();

  while (!stop.load()) {
    const auto now = Clock::now();
    if (now - lag_updated_ >= std::chrono::seconds(1)) UpdateLag();
    if (paused_) {
      AccountPaused();
      if (rd_kafka_message_t* m =
              rd_kafka_consumer_poll(consumer_, static_cast<int>(options_.poll_timeout.count()))) {
        rd_kafka_message_destroy(m);  // Dropped: re-read after the resume.
      }
      if (!breaker_->AllowAttempt(Clock::now())) {
        UpdateReady();
        continue;
      }
      if (batch_.empty()) {
        bool any_pending = std::any_of(partitions_.begin(), partitions_.end(),
                                       [](const auto& e) { return !e.second.open; });
        if (any_pending) {
          OpenPending(/*reassign_always=*/false);
          if (breaker_->consecutive_failures() != 0) continue;
        }
        Resume();
        continue;
      }
      // Replay the held batch; Flush re-arms the breaker on failure.
      if (Flush() == FlushResult::kDone && (isolate_remaining_ == 0 || batch_.empty())) {
        Resume();
      }
      continue;
    }
    OpenPending(/*reassign_always=*/false);
    if (paused_) continue;

    int timeout_ms = static_cast<int>(options_.poll_timeout.count());
    if (!batch_.empty()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          batch_started_ + options_.batch_max_wait - now);
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, timeout_ms));
    }
    if (isolate_remaining_ == 0) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_, timeout_ms);
      while (m != nullptr) {
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          Accept(m);
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          spdlog::warn("sink: consumer: {}", rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
        if (static_cast<int>(batch_.size()) >= options_.batch_max_records || paused_) break;
        m = rd_kafka_consumer_poll(consumer_, 0);
      }
    }
    const bool full = static_cast<int>(batch_.size()) >= options_.batch_max_records;
    const bool waited = !batch_.empty() && Clock::now() - batch_started_ >= options_.batch_max_wait;
    if (full || waited || isolate_remaining_ > 0) Flush();
  }

  // Graceful stop: write the batch in hand once if the database is up.
  for (int i = 0; !paused_ && !batch_.empty() && i <= options_.batch_max_records; ++i) {
    if (Flush() != FlushResult::kDone) break;
  }
  if (paused_) AccountPaused();
  rd_kafka_consumer_close(consumer_);
  rd_kafka_flush(producer_, 2000);
  {
    std::lock_guard<std::mutex> lock(mu_);
    owned_.clear();
  }
  ready_.store(false);
  return Status::Ok();
}

}  // namespace streams::connect
