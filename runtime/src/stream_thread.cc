#include "stream_thread.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <thread>

#include "fault_injection.h"
#include "streams/state/task_state.h"

namespace streams::runtime::internal {

FaultInjection& Faults() {
  static FaultInjection faults;
  return faults;
}

namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

constexpr milliseconds kStateMetricsInterval(5000);

std::string PartitionListString(const rd_kafka_topic_partition_list_t* list) {
  std::string out;
  for (int i = 0; list != nullptr && i < list->cnt; ++i) {
    if (!out.empty()) out += ",";
    out += std::string(list->elems[i].topic) + "-" + std::to_string(list->elems[i].partition);
  }
  return out.empty() ? "(none)" : out;
}

ConsumedRecord ToConsumedRecord(const rd_kafka_message_t* m) {
  ConsumedRecord r;
  r.topic = rd_kafka_topic_name(m->rkt);
  r.partition = Partition(m->partition);
  r.offset = Offset(m->offset);
  rd_kafka_timestamp_type_t type;
  int64_t ts = rd_kafka_message_timestamp(m, &type);
  // -1 when the producer set none: kept, so the task judges it (TimestampCheck::kInvalid)
  // the same way on every replay instead of substituting the wall clock.
  r.timestamp = Timestamp(ts);
  if (m->key != nullptr) r.key.emplace(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) r.value.emplace(static_cast<const char*>(m->payload), m->len);
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      r.headers.push_back(Header{name, value != nullptr
                                           ? std::string(static_cast<const char*>(value), size)
                                           : std::string()});
    }
  }
  return r;
}

// Calls a librdkafka transactional API (given its per-attempt timeout) until
// it succeeds, fails for good, or `budget` is spent on retriable errors.
// Between attempts the producer's delivery reports are served: abort and
// commit wait for the outstanding messages, whose reports must be polled.
Status RetryTxnCall(rd_kafka_t* producer, const std::function<rd_kafka_error_t*(int)>& call,
                    std::string_view what, milliseconds budget) {
  auto deadline = SteadyClock::now() + budget;
  milliseconds backoff(10);
  while (true) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
    int attempt_ms = TimeoutMs(std::clamp(left, milliseconds(100), milliseconds(1000)));
    KafkaError error(call(attempt_ms));
    if (!error) return Status::Ok();
    Status status = KafkaStatus(error.get(), what);
    bool retriable = (rd_kafka_error_is_retriable(error.get()) ||
                      rd_kafka_error_code(error.get()) == RD_KAFKA_RESP_ERR__TIMED_OUT) &&
                     !rd_kafka_error_is_fatal(error.get()) &&
                     !rd_kafka_error_txn_requires_abort(error.get());
    if (!retriable || SteadyClock::now() + backoff > deadline) return status;
    spdlog::debug("{} not done yet, retrying: {}", what, status.message());
    rd_kafka_poll(producer, static_cast<int>(backoff.count()));
    backoff = std::min(backoff * 2, milliseconds(500));
  }
}

}  // namespace

std::string_view StreamThread::ThreadStateName(State state) {
  static_assert(std::size(kThreadStateNames) == static_cast<size_t>(State::kError) + 1);
  return kThreadStateNames[static_cast<size_t>(state)];
}

StreamThread::StreamThread(ThreadShared* shared, int index)
    : shared_(shared),
      config_(*shared->config),
      index_(index),
      name_(shared->config->application_id() + "-" + shared->config->instance_id() +
            "-StreamThread-" + std::to_string(index)),
      transactional_id_(shared->config->application_id() + "-" + shared->config->instance_id() +
                        "-" + std::to_string(index)),
      collector_(shared->config->exactly_once(), name_) {
  collector_.SetPartitionCounts(shared->partition_counts);
}

StreamThread::~StreamThread() {
  RequestStop();
  if (thread_.joinable()) thread_.join();
}

// ---------------------------------------------------------------------------
// Clients

Status StreamThread::CreateConsumer() {
  auto props = config_.KafkaProperties(ClientKind::kConsumer);
  props["group.id"] = config_.application_id();
  props["enable.auto.commit"] = "false";
  props["enable.auto.offset.store"] = "false";
  props["isolation.level"] = "read_committed";
  // rebalance.protocol=cooperative: incremental rebalancing (KIP-429), a
  // member that joins or leaves moves only the partitions that change owner.
  // Not the default: librdkafka 2.0.2 (Debian 12) can crash (SIGSEGV) when an
  // incremental assignment arrives while the consumer closes (librdkafka
  // #4312/#4527, fixed in 2.3 and later), seen once in the chaos test.
  props["partition.assignment.strategy"] =
      config_.cooperative_rebalancing() ? "cooperative-sticky" : "range";
  // A rebalance starts for a member at its next heartbeat: 1 s instead of
  // librdkafka's 3 s shortens every failover by up to 2 s.
  props.emplace("heartbeat.interval.ms", "1000");
  // Static membership (KIP-345): one identity per thread, the same as its
  // transactional.id. A restart within the session timeout rejoins as the
  // same member, without a rebalance.
  if (config_.static_membership()) props["group.instance.id"] = transactional_id_;
  props["enable.partition.eof"] = "false";
  props["auto.offset.reset"] =
      config_.auto_offset_reset() == OffsetReset::kEarliest ? "earliest" : "latest";
  STREAMS_ASSIGN_OR_RETURN(KafkaConf conf, MakeConf(props, name_ + "-consumer"));
  rd_kafka_conf_set_rebalance_cb(conf.get(), &StreamThread::RebalanceCallback);
  rd_kafka_conf_set_opaque(conf.get(), this);
  STREAMS_ASSIGN_OR_RETURN(consumer_, NewClient(RD_KAFKA_CONSUMER, std::move(conf)));
  rd_kafka_poll_set_consumer(consumer_.get());
  return Status::Ok();
}

Status StreamThread::CreateRestoreConsumer() {
  auto props = config_.KafkaProperties(ClientKind::kRestoreConsumer);
  // librdkafka's consumer API (assign, consumer_poll) needs a group.id; this
  // consumer never subscribes nor commits, so it never joins that group.
  props["group.id"] = name_ + "-restore";
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
  // These two clients make only short requests (watermark lookups, fetches
  // that wait 10 ms), so a request to a broker that is down times out after
  // the lookup timeout instead of socket.timeout.ms (60 s).
  const std::string lookup_ms = std::to_string(config_.offsets_lookup_timeout().count());
  props.emplace("socket.timeout.ms", lookup_ms);
  STREAMS_ASSIGN_OR_RETURN(KafkaConf conf, MakeConf(props, name_ + "-restore-consumer"));
  STREAMS_ASSIGN_OR_RETURN(restore_consumer_, NewClient(RD_KAFKA_CONSUMER, std::move(conf)));
  rd_kafka_poll_set_consumer(restore_consumer_.get());

  // A restore must read up to the end of the changelog's log, not up to its
  // last stable offset: a transaction left open by a zombie holds the LSO
  // back while records committed after it (by the task's later owners) are
  // part of the state. So the end is asked for with read_uncommitted.
  auto offsets_props = config_.KafkaProperties(ClientKind::kRestoreConsumer);
  offsets_props["isolation.level"] = "read_uncommitted";
  offsets_props["enable.auto.commit"] = "false";
  offsets_props.emplace("socket.timeout.ms", lookup_ms);
  STREAMS_ASSIGN_OR_RETURN(KafkaConf offsets_conf, MakeConf(offsets_props, name_ + "-offsets"));
  STREAMS_ASSIGN_OR_RETURN(offsets_client_, NewClient(RD_KAFKA_CONSUMER, std::move(offsets_conf)));
  return Status::Ok();
}

Status StreamThread::CreateProducer() {
  auto props = config_.KafkaProperties(ClientKind::kProducer);
  props["enable.idempotence"] = "true";
  props["partitioner"] = "murmur2_random";
  if (config_.exactly_once()) {
    props["transactional.id"] = transactional_id_;
    props["transaction.timeout.ms"] = std::to_string(config_.transaction_timeout().count());
  }
  STREAMS_ASSIGN_OR_RETURN(KafkaConf conf, MakeConf(props, name_ + "-producer"));
  collector_.ConfigureProducerConf(conf.get());
  STREAMS_ASSIGN_OR_RETURN(producer_, NewClient(RD_KAFKA_PRODUCER, std::move(conf)));
  collector_.SetProducer(producer_.get());
  return Status::Ok();
}

Status StreamThread::InitTransactions() {
  if (!config_.exactly_once()) return Status::Ok();
  milliseconds backoff(100);
  int fatal_attempts = 0;
  while (!stop_requested_.load()) {
    KafkaError error(
        rd_kafka_init_transactions(producer_.get(), TimeoutMs(config_.transaction_timeout() * 2)));
    if (!error) {
      spdlog::info("[{}] transactions initialized (transactional.id={})", name_, transactional_id_);
      return Status::Ok();
    }
    Status status = KafkaStatus(error.get(), "init_transactions");
    if (rd_kafka_error_is_fatal(error.get())) {
      if (++fatal_attempts > 3) return status;
      spdlog::warn("[{}] {}; re-creating the producer", name_, status.message());
      collector_.SetProducer(nullptr);
      producer_.reset();
      STREAMS_RETURN_IF_ERROR(CreateProducer());
    } else if (!rd_kafka_error_is_retriable(error.get()) &&
               rd_kafka_error_code(error.get()) != RD_KAFKA_RESP_ERR__TIMED_OUT) {
      return status;
    } else {
      spdlog::warn("[{}] {}; retrying", name_, status.message());
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, milliseconds(2000));
  }
  return Status::Aborted("stopped while initializing transactions");
}

// ---------------------------------------------------------------------------
// Life cycle

Status StreamThread::Start() {
  STREAMS_RETURN_IF_ERROR(CreateConsumer());
  STREAMS_RETURN_IF_ERROR(CreateRestoreConsumer());
  STREAMS_RETURN_IF_ERROR(CreateProducer());
  SetState(State::kStarting);
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void StreamThread::RequestStop() { stop_requested_.store(true); }

Status StreamThread::Join() {
  if (thread_.joinable()) thread_.join();
  return shutdown_status_;
}

std::vector<TaskId> StreamThread::tasks() const {
  std::lock_guard<std::mutex> lock(snapshot_mutex_);
  return published_tasks_;
}

size_t StreamThread::restoring() const {
  std::lock_guard<std::mutex> lock(snapshot_mutex_);
  return published_restoring_;
}

Status StreamThread::error() const {
  std::lock_guard<std::mutex> lock(snapshot_mutex_);
  return error_;
}

void StreamThread::SetState(State state) {
  State old = state_.load();
  if (old == state || old == State::kError) return;
  state_.store(state);
  shared_->metrics->SetThreadState(name_, ThreadStateName(state));
  if (shared_->on_change) shared_->on_change();
}

void StreamThread::Fail(Status status) {
  spdlog::error("[{}] stream thread failed: {}", name_, status.ToString());
  {
    std::lock_guard<std::mutex> lock(snapshot_mutex_);
    if (error_.ok()) error_ = status;
  }
  state_.store(State::kError);
  shared_->metrics->SetThreadState(name_, ThreadStateName(State::kError));
  if (shared_->on_change) shared_->on_change();
}

void StreamThread::UpdatePublishedTasks() {
  std::vector<TaskId> ids;
  size_t restoring = 0;
  for (const auto& [partition, entry] : tasks_) {
    ids.push_back(TaskId{partition});
    if (entry.restoring) ++restoring;
    shared_->metrics->SetTaskState(TaskId{partition}.ToString(), entry.restoring);
  }
  {
    std::lock_guard<std::mutex> lock(snapshot_mutex_);
    published_tasks_ = std::move(ids);
    published_restoring_ = restoring;
  }
  if (shared_->on_change) shared_->on_change();
}

void StreamThread::Run() {
  spdlog::info("[{}] starting ({})", name_,
               ProcessingGuaranteeName(config_.processing_guarantee()));
  Status init = InitTransactions();
  if (!init.ok()) {
    if (!stop_requested_.load()) Fail(init);
  } else {
    Subscribe();
  }
  cycle_start_ = shared_->clock->Now();
  while (!stop_requested_.load() && state_.load() != State::kError) {
    RunOnce();
  }

  // Shutdown: finish the cycle, close tasks, leave the group.
  const bool failed = state_.load() == State::kError;
  SetState(State::kStopping);
  if (!failed && !tasks_.empty()) {
    Status committed = CommitCycle();
    if (!committed.ok()) shutdown_status_ = committed;
  } else if (collector_.in_transaction() && producer_) {
    AbortCycle(Status::Aborted("shutting down after an error"));
  }
  CloseAllTasks(/*clean=*/!failed);
  if (consumer_) {
    // Unsubscribe first, then close, then destroy, on every path. A rejoin
    // (after a fencing or a failed assignment) whose subscribe librdkafka
    // postponed because a rebalance was in progress would otherwise be applied
    // while the consumer closes, and destroying a consumer that is still
    // subscribed aborts the process (rd_kafka_cgrp_destroy_final:
    // !rkcg->rkcg_subscription). unsubscribe drops a postponed subscribe.
    rd_kafka_resp_err_t err = rd_kafka_unsubscribe(consumer_.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("[{}] unsubscribe: {}", name_, rd_kafka_err2str(err));
    }
    err = rd_kafka_consumer_close(consumer_.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("[{}] consumer close: {}", name_, rd_kafka_err2str(err));
    }
    consumer_.reset();
  }
  if (restore_consumer_) {
    // Deliberately ignored: the restore consumer never subscribes; closing it
    // only drops its assignment.
    (void)rd_kafka_consumer_close(restore_consumer_.get());
    restore_consumer_.reset();
    restore_assigned_.clear();
  }
  offsets_client_.reset();
  collector_.SetProducer(nullptr);
  if (producer_) {
    rd_kafka_flush(producer_.get(), TimeoutMs(milliseconds(5000)));
    producer_.reset();
  }
  if (state_.load() != State::kError) SetState(State::kDead);
  spdlog::info("[{}] stopped", name_);
}

// ---------------------------------------------------------------------------
// The processing loop

bool StreamThread::HasCycleWork() const {
  if (cycle_records_ > 0 || collector_.sent_in_cycle() > 0 || collector_.in_transaction()) {
    return true;
  }
  for (const auto& [tp, offset] : positions_) {
    auto it = committed_positions_.find(tp);
    if (it == committed_positions_.end() || it->second != offset) return true;
  }
  for (const auto& [partition, entry] : tasks_) {
    if (!entry.restoring && entry.task->HasUncommittedWork()) return true;
  }
  return false;
}

bool StreamThread::CommitDue() const {
  if (SteadyClock::now() < commit_deferred_until_) return false;
  if (!HasCycleWork()) return false;
  if (config_.commit_max_records() &&
      static_cast<int64_t>(cycle_records_) >= *config_.commit_max_records()) {
    return true;
  }
  if (shared_->clock->Now().millis() - cycle_start_.millis() >= config_.commit_interval().count()) {
    return true;
  }
  for (const auto& [partition, entry] : tasks_) {
    if (!entry.restoring && entry.task->commit_requested()) return true;
  }
  return false;
}

void StreamThread::RunOnce() {
  if (rejoin_requested_ && SteadyClock::now() >= rejoin_not_before_) {
    Rejoin();
    return;
  }
  const bool restoring = !restoring_.empty();
  milliseconds timeout = restoring ? milliseconds(0) : config_.poll_timeout();
  if (!restoring && HasCycleWork()) {
    int64_t left = config_.commit_interval().count() -
                   (shared_->clock->Now().millis() - cycle_start_.millis());
    timeout = std::clamp(milliseconds(left), milliseconds(0), timeout);
  }
  const int aborts_before = consecutive_aborts_;
  int64_t polled = 0;
  while (polled < config_.max_poll_records() && !stop_requested_.load()) {
    rd_kafka_message_t* message =
        rd_kafka_consumer_poll(consumer_.get(), polled == 0 ? TimeoutMs(timeout) : 0);
    if (message == nullptr) break;
    ++polled;
    ProcessMessage(message);
    rd_kafka_message_destroy(message);
    if (state_.load() == State::kError || consecutive_aborts_ != aborts_before ||
        rejoin_requested_) {
      break;
    }
    if (config_.commit_max_records() &&
        static_cast<int64_t>(cycle_records_) >= *config_.commit_max_records()) {
      break;
    }
  }
  if (state_.load() == State::kError) return;
  PollAuxiliaryClients();
  if (rejoin_requested_) return;  // At the next round, after its backoff.

  if (!restoring_.empty()) {
    RestoreStep(polled > 0 ? milliseconds(0) : std::min(config_.poll_timeout(), milliseconds(50)));
    if (state_.load() == State::kError) return;
  }

  collector_.PollDeliveries();
  if (!collector_.delivery_error().ok()) {
    HandleCycleError(collector_.delivery_error());
    return;
  }

  for (auto& [partition, entry] : tasks_) {
    if (entry.restoring) continue;
    Status status = entry.task->PunctuateWallClock();
    if (!status.ok()) {
      HandleCycleError(
          status.WithContext("wall-clock punctuation of task " + TaskId{partition}.ToString()));
      return;
    }
  }

  if (CommitDue()) {
    // Errors were handled (aborted) inside.
    (void)CommitCycle();
  } else if (!HasCycleWork()) {
    cycle_start_ = shared_->clock->Now();
  }

  if (SteadyClock::now() - last_state_metrics_ > kStateMetricsInterval) {
    UpdateLagAndStateMetrics(/*state_metrics=*/true);
    last_state_metrics_ = SteadyClock::now();
  }
}

void StreamThread::PollAuxiliaryClients() {
  // The restore consumer is polled by RestoreStep while restoring; otherwise
  // its queue (errors, rebalance-free consumer events) is served here.
  if (restore_consumer_ && restoring_.empty()) {
    while (rd_kafka_message_t* m = rd_kafka_consumer_poll(restore_consumer_.get(), 0)) {
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        spdlog::debug("[{}] restore consumer: {}", name_, rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
    }
  }
  // The offsets client is never assigned; its main queue (error events) is
  // served by rd_kafka_poll.
  if (offsets_client_) rd_kafka_poll(offsets_client_.get(), 0);
}

void StreamThread::ProcessMessage(rd_kafka_message_t* message) {
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return;
    Status status = KafkaStatus(message->err, "consumer");
    if (message->err == RD_KAFKA_RESP_ERR__FATAL) {
      char reason[512] = {};
      const rd_kafka_resp_err_t cause =
          rd_kafka_fatal_error(consumer_.get(), reason, sizeof(reason));
      if (cause == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID) {
        // Another consumer joined with this thread's group.instance.id: a
        // second live instance with the same instance.id (a copied state
        // directory, or the same explicit value twice). The newer one keeps
        // the partitions; this one must not run on.
        Fail(Status::FailedPrecondition(
            "another instance joined the group with this instance's group.instance.id '" +
            transactional_id_ + "' (instance.id '" + config_.instance_id() +
            "'): two live instances share instance.id; give each instance its own instance.id "
            "(or its own state.dir when instance.id is the default) (" +
            reason + ")"));
      } else {
        Fail(Status(status.code(), status.message() + ": " + reason));
      }
      return;
    }
    if (SteadyClock::now() - last_error_log_ > std::chrono::seconds(5)) {
      last_error_log_ = SteadyClock::now();
      std::string what = message->rkt != nullptr
                             ? std::string(rd_kafka_topic_name(message->rkt)) + "-" +
                                   std::to_string(message->partition) + ": "
                             : std::string();
      spdlog::warn("[{}] consumer error: {}{}", name_, what, rd_kafka_message_errstr(message));
    }
    return;
  }
  auto entry = tasks_.find(Partition(message->partition));
  if (entry == tasks_.end() || entry->second.restoring) return;  // Re-read after restore.
  TopicPartition tp{rd_kafka_topic_name(message->rkt), Partition(message->partition)};
  auto position = positions_.find(tp);
  if (position != positions_.end() && Offset(message->offset) < position->second) {
    return;  // Already processed (a record fetched before a seek).
  }
  ConsumedRecord record = ToConsumedRecord(message);
  const std::string where = tp.ToString() + "@" + std::to_string(message->offset);
  const Status* poison = nullptr;
  if (auto p = poison_.find(tp); p != poison_.end()) {
    if (auto o = p->second.find(record.offset); o != p->second.end()) poison = &o->second;
  }
  if (poison != nullptr) {
    // The replay of a cycle aborted because this record failed for good.
    Status dead = entry->second.task->DeadLetterRecord(record, *poison);
    if (!dead.ok()) {
      HandleCycleError(dead.WithContext("dead-lettering " + where));
      return;
    }
  } else {
    Status status = entry->second.task->Process(record);
    if (!status.ok()) {
      status = status.WithContext("processing " + where);
      if (!IsPermanentRecordError(status)) {
        HandleCycleError(status);
        return;
      }
      if (config_.processing_exception_handler() == ProcessingExceptionHandler::kFail) {
        shared_->metrics->AddProcessingException("fail");
        Fail(status.WithContext("processing.exception.handler=fail"));
        return;
      }
      shared_->metrics->AddProcessingException("dead_letter");
      spdlog::warn("[{}] {} cannot be processed: {}; the cycle is replayed with it dead-lettered",
                   name_, where, status.ToString());
      poison_[tp].insert_or_assign(record.offset, status);
      AbortCycle(status, /*backoff=*/false);
      return;
    }
  }
  positions_.insert_or_assign(tp, Offset(message->offset + 1));
  ++cycle_records_;
  if (record.timestamp.millis() >= 0) cycle_timestamps_.push_back(record.timestamp.millis());
}

bool StreamThread::IsPermanentRecordError(const Status& status) {
  return status.code() == StatusCode::kInvalidArgument || status.code() == StatusCode::kCorruption;
}

// ---------------------------------------------------------------------------
// Commit and abort

Status StreamThread::CommitCycle() {
  if (!HasCycleWork()) {
    cycle_start_ = shared_->clock->Now();
    return Status::Ok();
  }
  const auto started = SteadyClock::now();
  Status status = config_.exactly_once() ? CommitTransactional() : CommitAtLeastOnce();
  if (!status.ok() && status.code() == StatusCode::kUnavailable && !config_.exactly_once() &&
      !in_rebalance_) {
    // Offsets not committed yet (rebalance in progress); the cycle stays open.
    spdlog::info("[{}] commit deferred: {}", name_, status.message());
    commit_deferred_until_ = SteadyClock::now() + milliseconds(200);
    return status;
  }
  if (!status.ok()) {
    HandleCycleError(status);
    return status;
  }
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();

  // The Kafka side is committed: now the local state of every task.
  const auto& acked = collector_.acked_next_offsets();
  std::vector<Partition> broken;
  for (auto& [partition, entry] : tasks_) {
    if (entry.restoring) continue;
    std::map<std::string, Offset> changelog_next;
    for (const auto& [store, tp] : entry.changelogs) {
      auto it = acked.find(tp);
      if (it != acked.end()) changelog_next.emplace(store, it->second);
    }
    Status local = entry.task->Commit(changelog_next);
    if (!local.ok()) {
      spdlog::error(
          "[{}] task {} could not commit its local state after the Kafka commit: {}; "
          "it will be restored from its changelog",
          name_, TaskId{partition}.ToString(), local.ToString());
      broken.push_back(partition);
    }
  }

  // Bookkeeping and metrics of the committed cycle.
  for (const auto& [tp, offset] : positions_) committed_positions_.insert_or_assign(tp, offset);
  for (auto& [tp, records] : poison_) {
    auto committed = committed_positions_.find(tp);
    if (committed == committed_positions_.end()) continue;
    // Dead-lettered and committed.
    records.erase(records.begin(), records.lower_bound(committed->second));
  }
  std::erase_if(poison_, [](const auto& entry) { return entry.second.empty(); });
  const Timestamp now = shared_->clock->Now();
  std::vector<double> latencies;
  latencies.reserve(cycle_timestamps_.size());
  for (int64_t ts : cycle_timestamps_) {
    latencies.push_back(std::max<int64_t>(0, now.millis() - ts) / 1000.0);
  }
  shared_->metrics->ObserveEndToEndLatency(latencies);
  shared_->metrics->ObserveCommitSeconds(seconds);
  shared_->metrics->AddTransaction(/*committed=*/true);
  shared_->metrics->AddRecordsProcessed(cycle_records_);
  uint64_t dead = 0;
  for (const auto& [topic, count] : collector_.dead_letters()) {
    shared_->metrics->AddDeadLetters(topic, count);
    dead += count;
  }
  const uint64_t records = cycle_records_;
  shared_->stats->Add([&](KafkaStreamsStats& s) {
    s.records_processed += records;
    s.transactions_committed += 1;
    s.dead_letter_records += dead;
    s.commit_seconds_total += seconds;
    s.commit_seconds_max = std::max(s.commit_seconds_max, seconds);
  });
  ReportDeliveryErrors();
  collector_.EndCycle();
  cycle_records_ = 0;
  cycle_timestamps_.clear();
  cycle_start_ = now;
  consecutive_aborts_ = 0;
  UpdateLagAndStateMetrics(/*state_metrics=*/false);

  for (Partition partition : broken) {
    Status reopened = ReopenTask(partition);
    if (!reopened.ok()) {
      RejoinOrFail(reopened);
      return reopened;
    }
  }
  return Status::Ok();
}

Status StreamThread::ReopenTask(Partition partition) {
  // Local state is behind Kafka: reopen the task and restore it.
  auto it = tasks_.find(partition);
  if (it == tasks_.end()) return Status::Ok();
  const std::string task_name = TaskId{partition}.ToString();
  // Just committed to Kafka with the offsets; the reopened task resumes from it.
  const std::optional<Timestamp> stream_time = it->second.task->stream_time();
  (void)it->second.task->Close(false);  // Deliberately ignored: the task is reopened below.
  STREAMS_ASSIGN_OR_RETURN(it->second.task, OpenTask(partition));
  STREAMS_ASSIGN_OR_RETURN(bool must_restore, BeginRestore(partition, it->second));
  if (stream_time) STREAMS_RETURN_IF_ERROR(it->second.task->AdoptCommittedStreamTime(*stream_time));
  if (must_restore) {
    STREAMS_RETURN_IF_ERROR(SetPaused(it->second.inputs, /*pause=*/true));
    ReassignRestoreConsumer();
    SetState(State::kRestoring);
  } else {
    STREAMS_RETURN_IF_ERROR(
        it->second.task->InitializeProcessors().WithContext("initializing task " + task_name));
  }
  UpdatePublishedTasks();
  return Status::Ok();
}

Status StreamThread::PrepareTasks() {
  for (auto& [partition, entry] : tasks_) {
    if (entry.restoring) continue;
    STREAMS_RETURN_IF_ERROR(entry.task->PrepareCommit().WithContext(
        "preparing the commit of task " + TaskId{partition}.ToString()));
  }
  return Status::Ok();
}

Status StreamThread::FlushOutputs() {
  Status flushed = collector_.Flush(config_.transaction_timeout());
  if (!collector_.delivery_error().ok()) {
    return Status::Aborted("delivery failed: " + collector_.delivery_error().message());
  }
  if (!flushed.ok()) return Status::Aborted(flushed.message());
  return Status::Ok();
}

std::map<TopicPartition, std::optional<Offset>> StreamThread::UncommittedPositions() const {
  std::map<TopicPartition, std::optional<Offset>> offsets;
  for (const auto& [tp, offset] : positions_) {
    auto it = committed_positions_.find(tp);
    if (it == committed_positions_.end() || it->second != offset) offsets.emplace(tp, offset);
  }
  return offsets;
}

Status StreamThread::CommitTransactional() {
  STREAMS_RETURN_IF_ERROR(PrepareTasks());
  STREAMS_RETURN_IF_ERROR(collector_.EnsureTransaction());
  STREAMS_RETURN_IF_ERROR(FlushOutputs());

  const std::map<TopicPartition, std::optional<Offset>> offsets = UncommittedPositions();
  if (!offsets.empty()) {
    PartitionList list = OffsetsToCommit(offsets);
    rd_kafka_consumer_group_metadata_t* metadata =
        rd_kafka_consumer_group_metadata(consumer_.get());
    Status sent = RetryTxnCall(
        producer_.get(),
        [&](int timeout_ms) {
          return rd_kafka_send_offsets_to_transaction(producer_.get(), list.get(), metadata,
                                                      timeout_ms);
        },
        "send_offsets_to_transaction", config_.transaction_timeout());
    rd_kafka_consumer_group_metadata_destroy(metadata);
    STREAMS_RETURN_IF_ERROR(sent);
  }
  return RetryTxnCall(
      producer_.get(),
      [&](int timeout_ms) { return rd_kafka_commit_transaction(producer_.get(), timeout_ms); },
      "commit_transaction", config_.transaction_timeout());
}

Status StreamThread::CommitAtLeastOnce() {
  STREAMS_RETURN_IF_ERROR(PrepareTasks());
  STREAMS_RETURN_IF_ERROR(FlushOutputs());
  const std::map<TopicPartition, std::optional<Offset>> offsets = UncommittedPositions();
  if (offsets.empty()) return Status::Ok();
  auto deadline = SteadyClock::now() + config_.transaction_timeout();
  milliseconds backoff(20);
  while (true) {
    PartitionList list = OffsetsToCommit(offsets);
    rd_kafka_resp_err_t err = rd_kafka_commit(consumer_.get(), list.get(), /*async=*/0);
    for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; ++i) {
      err = list->elems[i].err;
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();
    Status status = KafkaStatus(err, "committing offsets");
    if (err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS && !in_rebalance_) {
      // The group is rebalancing: keep the cycle open; the revocation (served
      // by the next poll) commits it.
      return Status::Unavailable(status.message());
    }
    if (err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
        err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION || err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID) {
      return Status::Aborted(status.message());  // Waiting cannot help inside the rebalance.
    }
    if (status.code() != StatusCode::kUnavailable && status.code() != StatusCode::kTimedOut) {
      return Status::Aborted(status.message());
    }
    if (SteadyClock::now() + backoff > deadline) return Status::Aborted(status.message());
    spdlog::warn("[{}] {}; retrying", name_, status.message());
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, milliseconds(1000));
  }
}

void StreamThread::HandleCycleError(const Status& status) {
  if (status.code() == StatusCode::kFenced) {
    RecoverFromFatal(status);
  } else {
    AbortCycle(status);
  }
}

void StreamThread::ReportDeliveryErrors() {
  const uint64_t total = collector_.delivery_errors_total();
  if (total == reported_delivery_errors_) return;
  const uint64_t delta = total - reported_delivery_errors_;
  reported_delivery_errors_ = total;
  shared_->metrics->AddDeliveryErrors(delta);
  shared_->stats->Add([delta](KafkaStreamsStats& s) { s.delivery_errors += delta; });
}

void StreamThread::AbortCycle(const Status& reason, bool backoff_before_retry) {
  ++consecutive_aborts_;
  ReportDeliveryErrors();
  spdlog::warn("[{}] aborting the cycle ({} input records): {}", name_, cycle_records_,
               reason.ToString());
  shared_->metrics->AddTransaction(/*committed=*/false);
  shared_->stats->Add([](KafkaStreamsStats& s) { s.transactions_aborted += 1; });
  if (config_.exactly_once() && collector_.in_transaction() && producer_) {
    Status aborted = RetryTxnCall(
        producer_.get(),
        [&](int timeout_ms) { return rd_kafka_abort_transaction(producer_.get(), timeout_ms); },
        "abort_transaction", config_.transaction_timeout());
    if (!aborted.ok()) {
      RecoverFromFatal(aborted.WithContext("the transaction could not be aborted"));
      return;
    }
  }
  std::map<TopicPartition, Offset> rewind;
  for (auto& [partition, entry] : tasks_) {
    if (entry.restoring) continue;
    entry.task->Abort();
    for (const auto& tp : entry.inputs) {
      auto it = committed_positions_.find(tp);
      if (it != committed_positions_.end()) rewind.insert_or_assign(tp, it->second);
    }
  }
  positions_ = committed_positions_;
  collector_.EndCycle();
  cycle_records_ = 0;
  cycle_timestamps_.clear();
  cycle_start_ = shared_->clock->Now();
  Status sought = Seek(rewind);
  if (!sought.ok()) {
    // The consumer would go on from its fetch position and the aborted records
    // would never be processed again, while later offsets get committed past
    // them: nothing runs on these positions.
    CloseAllTasks(/*clean=*/true);
    if (!in_rebalance_) {
      RequestRejoin(sought.WithContext("rewinding the input after an abort"), milliseconds(0));
    }
    return;
  }
  if (!backoff_before_retry) return;
  // Back off a little before retrying the same input.
  milliseconds backoff =
      std::min(milliseconds(25LL << std::min(consecutive_aborts_ - 1, 7)), milliseconds(2000));
  auto until = SteadyClock::now() + backoff;
  while (SteadyClock::now() < until && !stop_requested_.load()) {
    std::this_thread::sleep_for(milliseconds(10));
  }
}

void StreamThread::RecoverFromFatal(const Status& reason) {
  spdlog::error(
      "[{}] fatal producer error: {}; closing tasks dirty, re-creating the producer "
      "and rejoining the group",
      name_, reason.ToString());
  shared_->stats->Add([](KafkaStreamsStats& s) { s.producer_fenced += 1; });
  shared_->metrics->AddTransaction(/*committed=*/false);
  CloseAllTasks(/*clean=*/false);
  collector_.SetProducer(nullptr);
  producer_.reset();
  Status created = CreateProducer();
  if (created.ok()) created = InitTransactions();
  if (!created.ok()) {
    if (!stop_requested_.load()) Fail(created.WithContext("re-creating the producer"));
    return;
  }
  cycle_records_ = 0;
  cycle_timestamps_.clear();
  cycle_start_ = shared_->clock->Now();
  if (!in_rebalance_) rejoin_requested_ = true;
}

void StreamThread::CloseTasks(const std::set<Partition>& which, bool clean) {
  int64_t count = 0;
  for (Partition partition : which) {
    auto it = tasks_.find(partition);
    if (it == tasks_.end()) continue;
    Status closed = it->second.task->Close(clean);
    if (!closed.ok()) {
      spdlog::error("[{}] closing task {}: {}", name_, TaskId{partition}.ToString(),
                    closed.ToString());
    }
    shared_->metrics->RemoveTask(TaskId{partition}.ToString());
    for (const auto& tp : it->second.inputs) {
      shared_->metrics->RemoveConsumerLag(tp);
      positions_.erase(tp);
      committed_positions_.erase(tp);
      poison_.erase(tp);
    }
    std::erase_if(restoring_, [&](const auto& entry) { return entry.second.task == partition; });
    tasks_.erase(it);
    ++count;
  }
  if (count == 0) return;
  spdlog::info("[{}] closed {} task(s) {}", name_, count, clean ? "cleanly" : "dirty");
  shared_->metrics->AddTasksAssigned(-count);
  shared_->stats->Add([count](KafkaStreamsStats& s) { s.tasks_closed += count; });
  ReassignRestoreConsumer();
  UpdatePublishedTasks();
}

void StreamThread::CloseAllTasks(bool clean) {
  if (tasks_.empty()) return;
  std::set<Partition> all;
  for (const auto& [partition, entry] : tasks_) all.insert(partition);
  CloseTasks(all, clean);
  // Nothing of the cycle outlives its tasks.
  restoring_.clear();
  positions_.clear();
  committed_positions_.clear();
  poison_.clear();
  collector_.EndCycle();
  cycle_records_ = 0;
  cycle_timestamps_.clear();
}

Status StreamThread::Seek(const std::map<TopicPartition, Offset>& offsets) {
  if (offsets.empty() || !consumer_) return Status::Ok();
  std::map<TopicPartition, std::optional<Offset>> with_offsets(offsets.begin(), offsets.end());
  PartitionList list = MakePartitionList(with_offsets);
  if (Faults().fail_seeks.load() > 0 && Faults().fail_seeks.fetch_sub(1) > 0) {
    return Status::Unavailable("seek: injected failure (test)");
  }
  KafkaError error(rd_kafka_seek_partitions(consumer_.get(), list.get(), 5000));
  if (error) return KafkaStatus(error.get(), "seek " + PartitionListString(list.get()));
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaStatus(list->elems[i].err, "seek " + std::string(list->elems[i].topic) + "-" +
                                                 std::to_string(list->elems[i].partition) + " to " +
                                                 std::to_string(list->elems[i].offset));
    }
  }
  return Status::Ok();
}

PartitionList StreamThread::OffsetsToCommit(
    const std::map<TopicPartition, std::optional<Offset>>& offsets) const {
  PartitionList list = MakePartitionList(offsets);
  // The tasks' stream time travels with the offsets (as in Kafka Streams), so
  // the next owner knows it even when the last records wrote no changelog.
  for (int i = 0; i < list->cnt; ++i) {
    auto it = tasks_.find(Partition(list->elems[i].partition));
    if (it == tasks_.end() || it->second.restoring) continue;
    if (std::optional<Timestamp> stream_time = it->second.task->stream_time()) {
      SetOffsetMetadata(&list->elems[i], EncodeStreamTimeMetadata(*stream_time));
    }
  }
  return list;
}

void StreamThread::UpdateLagAndStateMetrics(bool state_metrics) {
  // Event queues of the clients: a client whose queue is not served grows it
  // without bound (errors, logs, rebalance events).
  const auto queue_events = [](rd_kafka_t* rk, bool consumer) -> int64_t {
    if (rk == nullptr) return 0;
    rd_kafka_queue_t* queue =
        consumer ? rd_kafka_queue_get_consumer(rk) : rd_kafka_queue_get_main(rk);
    if (queue == nullptr) return 0;
    const int64_t length = static_cast<int64_t>(rd_kafka_queue_length(queue));
    rd_kafka_queue_destroy(queue);
    return length;
  };
  shared_->metrics->SetClientQueueEvents(name_, "consumer", queue_events(consumer_.get(), true));
  shared_->metrics->SetClientQueueEvents(name_, "restore-consumer",
                                         queue_events(restore_consumer_.get(), true));
  shared_->metrics->SetClientQueueEvents(name_, "offsets",
                                         queue_events(offsets_client_.get(), false));
  shared_->metrics->SetClientQueueEvents(name_, "producer", queue_events(producer_.get(), false));
  for (auto& [partition, entry] : tasks_) {
    for (const auto& tp : entry.inputs) {
      int64_t low = 0, high = 0;
      if (rd_kafka_get_watermark_offsets(consumer_.get(), tp.topic.c_str(), tp.partition.value(),
                                         &low, &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
          high < 0) {
        continue;
      }
      auto pos = positions_.find(tp);
      if (pos == positions_.end()) continue;
      shared_->metrics->SetConsumerLag(tp, std::max<int64_t>(0, high - pos->second.value()));
    }
    if (state_metrics && !entry.restoring) {
      const std::string task = TaskId{partition}.ToString();
      shared_->metrics->SetStateStoreBytes(task, entry.task->ApproximateStateBytes());
      for (const auto& [store, entries] : entry.task->ApproximateStoreEntries()) {
        shared_->metrics->SetStoreEntries(task, store, entries);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Rebalance

void StreamThread::RebalanceCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                     rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* self = static_cast<StreamThread*>(opaque);
  self->in_rebalance_ = true;
  self->cooperative_ = std::string_view(rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE";
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    self->OnAssign(partitions);
  } else {
    if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      spdlog::error("[{}] rebalance error: {}", self->name_, rd_kafka_err2str(err));
    }
    self->OnRevoke(partitions);
  }
  self->in_rebalance_ = false;
  if (self->cooperative_) self->RejoinIfPartitionsLackTasks();
}

void StreamThread::RejoinIfPartitionsLackTasks() {
  // Under the cooperative protocol the partitions a member keeps stay
  // assigned across a rebalance. A fatal error handled inside the callback
  // (fencing during the commit before a revocation) closes every task; the
  // kept partitions would then be fetched with no task to process them.
  if (stop_requested_.load() || rejoin_requested_ || !consumer_) return;
  rd_kafka_topic_partition_list_t* assigned = nullptr;
  if (rd_kafka_assignment(consumer_.get(), &assigned) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  PartitionList owned(assigned);
  for (int i = 0; i < owned->cnt; ++i) {
    if (tasks_.count(Partition(owned->elems[i].partition)) == 0) {
      RequestRejoin(Status::Aborted("assigned partitions without tasks"), milliseconds(0));
      return;
    }
  }
}

Status StreamThread::AssignIncrementally(rd_kafka_topic_partition_list_t* partitions, bool add) {
  KafkaError error(add ? rd_kafka_incremental_assign(consumer_.get(), partitions)
                       : rd_kafka_incremental_unassign(consumer_.get(), partitions));
  if (error) {
    return KafkaStatus(error.get(),
                       std::string(add ? "incremental assign " : "incremental unassign ") +
                           PartitionListString(partitions));
  }
  return Status::Ok();
}

Result<std::unique_ptr<StreamTask>> StreamThread::OpenTask(Partition partition) {
  TaskId id{partition};
  TaskConfig task_config;
  task_config.application_id = config_.application_id();
  task_config.state_directory = KafkaStreams::TaskDirectory(config_, id);
  task_config.dead_letter_topic = config_.dead_letter_topic();
  return StreamTask::Create(*shared_->topology, id, std::move(task_config), shared_->resources,
                            &collector_, shared_->clock);
}

void StreamThread::OnAssign(rd_kafka_topic_partition_list_t* partitions) {
  shared_->stats->Add([](KafkaStreamsStats& s) { s.rebalances += 1; });
  shared_->metrics->AddRebalance();
  spdlog::info("[{}] assigned{}: {}", name_, cooperative_ ? " (incremental)" : "",
               PartitionListString(partitions));
  if (cooperative_) {
    OnIncrementalAssign(partitions);
    return;
  }
  SetState(State::kRebalancing);
  if (!tasks_.empty()) CloseAllTasks(/*clean=*/true);  // Eager: should be empty already.
  if (stop_requested_.load()) {
    // Stopping (the assignment arrived while closing): take nothing.
    AssignNothing();
    return;
  }
  Status status = AssignTasks(partitions);
  if (status.ok()) {
    consecutive_assignment_failures_ = 0;
    SetState(restoring_.empty() ? State::kRunning : State::kRestoring);
    return;
  }
  // Nothing of a failed assignment is kept: no task runs on positions or
  // state that could not be established.
  CloseAllTasks(/*clean=*/false);
  AssignNothing();
  if (stop_requested_.load()) return;
  RejoinOrFail(status.WithContext("taking the assignment"));
}

void StreamThread::OnIncrementalAssign(rd_kafka_topic_partition_list_t* partitions) {
  // The tasks of the partitions kept stay open and go on processing; only
  // the added partitions get new tasks.
  Status status = stop_requested_.load() || partitions->cnt == 0
                      ? AssignIncrementally(partitions, /*add=*/true)
                      : AssignTasks(partitions);
  if (status.ok()) {
    consecutive_assignment_failures_ = 0;
    SetState(restoring_.empty() ? State::kRunning : State::kRestoring);
    return;
  }
  // A failed assignment keeps nothing: the open cycle is aborted and every
  // task closed, the added partitions are taken (the protocol requires it)
  // and the thread rejoins, which revokes them all again.
  if (HasCycleWork()) AbortCycle(status, /*backoff=*/false);
  CloseAllTasks(/*clean=*/false);
  // Deliberately ignored: AssignTasks may have assigned them already (the
  // error then says so); either way the rejoin below revokes everything.
  (void)AssignIncrementally(partitions, /*add=*/true);
  if (stop_requested_.load()) return;
  RejoinOrFail(status.WithContext("taking the incremental assignment"));
}

void StreamThread::RejoinOrFail(const Status& status) {
  const StatusCode code = status.code();
  const bool transient = code == StatusCode::kUnavailable || code == StatusCode::kTimedOut ||
                         code == StatusCode::kIoError || code == StatusCode::kAborted;
  if (!transient) {
    Fail(status);
    return;
  }
  CloseAllTasks(/*clean=*/true);
  ++consecutive_assignment_failures_;
  shared_->metrics->AddAssignmentRetry();
  const milliseconds backoff =
      std::min(milliseconds(250LL << std::min(consecutive_assignment_failures_ - 1, 6)),
               milliseconds(10000));
  RequestRejoin(status, backoff);
}

void StreamThread::AssignNothing() {
  // An empty list, not NULL: under the eager protocol librdkafka waits for an
  // assign() call after an assignment, and assign(NULL) there is an unassign
  // that leaves the group state waiting (every later subscribe would be
  // postponed forever).
  PartitionList empty(rd_kafka_topic_partition_list_new(0));
  rd_kafka_resp_err_t err = rd_kafka_assign(consumer_.get(), empty.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("[{}] assigning no partitions: {}", name_, rd_kafka_err2str(err));
  }
}

Status StreamThread::RetryLookup(const std::function<rd_kafka_resp_err_t(int)>& lookup,
                                 const std::string& what) {
  const milliseconds attempt = config_.offsets_lookup_timeout();
  const auto deadline = SteadyClock::now() + attempt * 6;
  milliseconds backoff(100);
  for (int attempts = 1;; ++attempts) {
    rd_kafka_resp_err_t err = lookup(TimeoutMs(attempt));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (attempts > 1) spdlog::info("[{}] {}: succeeded after {} attempts", name_, what, attempts);
      return Status::Ok();
    }
    Status status = KafkaStatus(err, what);
    if (stop_requested_.load()) return Status::Aborted("stopping: " + status.message());
    if (SteadyClock::now() + backoff > deadline) {
      return Status(
          status.code() == StatusCode::kTimedOut ? StatusCode::kTimedOut : StatusCode::kUnavailable,
          status.message() + " (" + std::to_string(attempts) + " attempts)");
    }
    spdlog::warn("[{}] {} (attempt {}); retrying in {} ms", name_, status.message(), attempts,
                 backoff.count());
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, milliseconds(2000));
  }
}

Result<std::map<TopicPartition, StreamThread::CommittedPosition>> StreamThread::FetchCommitted(
    const rd_kafka_topic_partition_list_t* partitions) {
  PartitionList committed(rd_kafka_topic_partition_list_copy(partitions));
  STREAMS_RETURN_IF_ERROR(RetryLookup(
      [&](int timeout_ms) {
        for (int i = 0; i < committed->cnt; ++i) {
          committed->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
          committed->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        }
        rd_kafka_resp_err_t err = rd_kafka_committed(consumer_.get(), committed.get(), timeout_ms);
        // A partition-level error (e.g. UNSTABLE_OFFSET_COMMIT) fails the
        // lookup: "no offset" may only come from a successful answer.
        for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < committed->cnt; ++i) {
          err = committed->elems[i].err;
        }
        return err;
      },
      "fetching the committed offsets of " + PartitionListString(partitions)));
  std::map<TopicPartition, CommittedPosition> out;
  for (int i = 0; i < committed->cnt; ++i) {
    const auto& e = committed->elems[i];
    if (e.offset < 0) continue;  // None committed.
    CommittedPosition position;
    position.offset = Offset(e.offset);
    if (e.metadata != nullptr && e.metadata_size > 0) {
      position.stream_time = DecodeStreamTimeMetadata(
          std::string_view(static_cast<const char*>(e.metadata), e.metadata_size));
    }
    out.emplace(TopicPartition{e.topic, Partition(e.partition)}, position);
  }
  return out;
}

Status StreamThread::AssignTasks(rd_kafka_topic_partition_list_t* partitions) {
  STREAMS_ASSIGN_OR_RETURN(auto committed_offsets, FetchCommitted(partitions));

  std::map<Partition, std::vector<TopicPartition>> by_task;
  for (int i = 0; i < partitions->cnt; ++i) {
    by_task[Partition(partitions->elems[i].partition)].push_back(
        TopicPartition{partitions->elems[i].topic, Partition(partitions->elems[i].partition)});
  }

  std::vector<TopicPartition> paused;
  for (auto& [partition, inputs] : by_task) {
    const std::string task_name = TaskId{partition}.ToString();
    auto task = OpenTask(partition);
    if (!task.ok()) return task.status().WithContext("opening task " + task_name);
    TaskEntry entry;
    entry.task = std::move(*task);
    entry.inputs = inputs;
    // The stream time the previous owner committed with its last transaction
    // (restore may raise it further; it never goes back).
    std::optional<Timestamp> committed_stream_time;
    for (const auto& tp : inputs) {
      auto c = committed_offsets.find(tp);
      if (c != committed_offsets.end() && c->second.stream_time &&
          (!committed_stream_time || *c->second.stream_time > *committed_stream_time)) {
        committed_stream_time = c->second.stream_time;
      }
    }
    auto must_restore = BeginRestore(partition, entry);
    if (!must_restore.ok()) {
      (void)entry.task->Close(false);  // Deliberately ignored: the restore error is reported.
      return must_restore.status().WithContext("restoring task " + task_name);
    }
    if (committed_stream_time) {
      Status adopted = entry.task->AdoptCommittedStreamTime(*committed_stream_time);
      if (!adopted.ok()) {
        (void)entry.task->Close(false);  // Deliberately ignored: the adopt error is reported.
        return adopted;
      }
    }
    for (const auto& spec : entry.task->RestoreSpecs())
      entry.changelogs[spec.store] = spec.changelog;
    // Where to start each input partition: the group's committed offset; only
    // when the group answered that it has none (its offsets expired or were
    // deleted while the application was down), the local checkpoint; then
    // auto.offset.reset.
    const auto& checkpoint = entry.task->committed_checkpoint().input_offsets;
    for (const auto& tp : inputs) {
      std::optional<Offset> start;
      if (auto c = committed_offsets.find(tp); c != committed_offsets.end()) {
        start = c->second.offset;
      } else if (auto k = checkpoint.find(tp); k != checkpoint.end()) {
        start = k->second;
        spdlog::info("[{}] {}: no committed offset, resuming from the local checkpoint at {}",
                     name_, tp.ToString(), start->value());
      } else {
        int64_t low = 0, high = 0;
        Status watermarks = RetryLookup(
            [&](int timeout_ms) {
              // The restore consumer reads read_committed like the group
              // consumer (high = last stable offset) and times out promptly.
              return QueryWatermarks(restore_consumer_.get(), tp, &low, &high, timeout_ms);
            },
            "watermarks of " + tp.ToString());
        if (!watermarks.ok()) {
          (void)entry.task->Close(false);  // Deliberately ignored: the lookup error is reported.
          return watermarks;
        }
        start = Offset(config_.auto_offset_reset() == OffsetReset::kEarliest ? low : high);
        spdlog::info("[{}] {}: no committed offset, starting at the {} offset {}", name_,
                     tp.ToString(),
                     config_.auto_offset_reset() == OffsetReset::kEarliest ? "earliest" : "latest",
                     start->value());
      }
      committed_positions_.insert_or_assign(tp, *start);
      positions_.insert_or_assign(tp, *start);
    }
    if (*must_restore) {
      for (const auto& tp : inputs) paused.push_back(tp);
    } else {
      Status init = entry.task->InitializeProcessors();
      if (!init.ok()) {
        (void)entry.task->Close(false);  // Deliberately ignored: the init error is reported.
        return init.WithContext("initializing task " + task_name);
      }
    }
    tasks_.emplace(partition, std::move(entry));
    shared_->metrics->AddTasksAssigned(1);
  }

  // Assign with explicit start offsets.
  for (int i = 0; i < partitions->cnt; ++i) {
    TopicPartition tp{partitions->elems[i].topic, Partition(partitions->elems[i].partition)};
    auto it = committed_positions_.find(tp);
    if (it != committed_positions_.end()) partitions->elems[i].offset = it->second.value();
  }
  if (cooperative_) {
    STREAMS_RETURN_IF_ERROR(AssignIncrementally(partitions, /*add=*/true));
  } else {
    rd_kafka_resp_err_t aerr = rd_kafka_assign(consumer_.get(), partitions);
    if (aerr != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaStatus(aerr, "assign");
  }
  if (!paused.empty()) STREAMS_RETURN_IF_ERROR(SetPaused(paused, /*pause=*/true));
  ReassignRestoreConsumer();
  if (!HasCycleWork()) cycle_start_ = shared_->clock->Now();
  UpdatePublishedTasks();
  return Status::Ok();
}

void StreamThread::RequestRejoin(const Status& reason, milliseconds backoff) {
  spdlog::warn("[{}] {}; rejoining the group{}", name_, reason.ToString(),
               backoff.count() > 0 ? " in " + std::to_string(backoff.count()) + " ms" : "");
  rejoin_requested_ = true;
  rejoin_not_before_ = SteadyClock::now() + backoff;
  SetState(State::kRebalancing);
}

void StreamThread::Rejoin() {
  rejoin_requested_ = false;
  spdlog::info("[{}] rejoining the group", name_);
  // Deliberately ignored: unsubscribe only fails when the consumer is closed,
  // and the subscribe below reports that.
  (void)rd_kafka_unsubscribe(consumer_.get());
  Subscribe();
}

void StreamThread::Subscribe() {
  PartitionList topics(rd_kafka_topic_partition_list_new(
      static_cast<int>(shared_->topology->source_topics().size())));
  for (const auto& topic : shared_->topology->source_topics()) {
    rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  }
  rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer_.get(), topics.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    Fail(KafkaStatus(err, "subscribe"));
    return;
  }
  SetState(State::kRebalancing);
}

Status StreamThread::SetPaused(const std::vector<TopicPartition>& partitions, bool pause) {
  if (partitions.empty()) return Status::Ok();
  std::map<TopicPartition, std::optional<Offset>> parts;
  for (const auto& tp : partitions) parts.emplace(tp, std::nullopt);
  PartitionList list = MakePartitionList(parts);
  rd_kafka_resp_err_t err = pause ? rd_kafka_pause_partitions(consumer_.get(), list.get())
                                  : rd_kafka_resume_partitions(consumer_.get(), list.get());
  for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; ++i) {
    err = list->elems[i].err;
  }
  return KafkaStatus(
      err, std::string(pause ? "pausing " : "resuming ") + PartitionListString(list.get()));
}

void StreamThread::OnRevoke(rd_kafka_topic_partition_list_t* partitions) {
  const bool lost = rd_kafka_assignment_lost(consumer_.get()) != 0;
  spdlog::info("[{}] revoked{}{}: {}", name_, cooperative_ ? " (incremental)" : "",
               lost ? " (lost)" : "", PartitionListString(partitions));
  if (cooperative_) {
    OnIncrementalRevoke(partitions, lost);
    return;
  }
  SetState(State::kRebalancing);
  bool clean = true;
  if (!tasks_.empty()) {
    if (lost) {
      if (HasCycleWork()) AbortCycle(Status::Aborted("partitions lost"));
      clean = false;
    } else {
      Status committed = CommitCycle();
      if (!committed.ok()) {
        spdlog::warn("[{}] commit before revocation failed: {}", name_, committed.ToString());
      }
    }
  }
  CloseAllTasks(clean);
  rd_kafka_assign(consumer_.get(), nullptr);
}

void StreamThread::OnIncrementalRevoke(rd_kafka_topic_partition_list_t* partitions, bool lost) {
  std::set<Partition> revoked;
  for (int i = 0; i < partitions->cnt; ++i)
    revoked.insert(Partition(partitions->elems[i].partition));
  const bool owns_revoked = std::any_of(revoked.begin(), revoked.end(),
                                        [&](Partition p) { return tasks_.count(p) != 0; });
  bool clean = true;
  if (owns_revoked) {
    // One transaction covers every task of the thread: it ends here (commit,
    // or abort for lost partitions, whose new owner may already run), so
    // the kept tasks simply start a new cycle.
    if (lost) {
      if (HasCycleWork()) AbortCycle(Status::Aborted("partitions lost"), /*backoff=*/false);
      clean = false;
    } else {
      Status committed = CommitCycle();
      if (!committed.ok()) {
        spdlog::warn("[{}] commit before revocation failed: {}", name_, committed.ToString());
      }
    }
  }
  CloseTasks(revoked, clean);
  Status unassigned = AssignIncrementally(partitions, /*add=*/false);
  if (!unassigned.ok()) spdlog::warn("[{}] {}", name_, unassigned.ToString());
  if (tasks_.empty()) SetState(State::kRebalancing);
}

// ---------------------------------------------------------------------------
// Restore

Result<bool> StreamThread::BeginRestore(Partition partition, TaskEntry& entry) {
  const std::string task_name = TaskId{partition}.ToString();
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::vector<std::pair<TopicPartition, RestorePartition>> parts;
    std::optional<std::string> corrupt;
    for (const RestoreSpec& spec : entry.task->RestoreSpecs()) {
      // [low, high): the whole log (high is the high watermark, see
      // offsets_client_). Records of transactions still open below it are
      // waited for: the read_committed restore consumer reaches `high` only
      // once they are committed or aborted.
      int64_t low = 0, high = 0;
      STREAMS_RETURN_IF_ERROR(RetryLookup(
          [&](int timeout_ms) {
            return QueryWatermarks(offsets_client_.get(), spec.changelog, &low, &high, timeout_ms);
          },
          "watermarks of changelog " + spec.changelog.ToString()));
      int64_t from = spec.from ? spec.from->value() : low;
      if (spec.from && (from > high || from < low)) {
        corrupt = "store '" + spec.store + "' checkpointed at changelog offset " +
                  std::to_string(from) + " outside [" + std::to_string(low) + ", " +
                  std::to_string(high) + "] of " + spec.changelog.ToString();
        break;
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
            name_, task_name, spec.changelog.ToString(), stable, high);
      }
      RestorePartition rp;
      rp.task = partition;
      rp.store = spec.store;
      rp.end = high;
      rp.position = from;
      parts.emplace_back(spec.changelog, std::move(rp));
    }
    if (corrupt) {
      if (attempt > 0) return Status::Corruption(*corrupt);
      spdlog::warn("[{}] task {}: {}; wiping its local state and restoring from the beginning",
                   name_, task_name, *corrupt);
      (void)entry.task->Close(false);
      entry.task.reset();
      STREAMS_RETURN_IF_ERROR(
          state::DestroyTaskState(KafkaStreams::TaskDirectory(config_, TaskId{partition})));
      STREAMS_ASSIGN_OR_RETURN(entry.task, OpenTask(partition));
      continue;
    }
    int64_t total = 0;
    for (auto& [tp, rp] : parts) {
      total += rp.end - rp.position;
      shared_->metrics->SetRestoreRemaining(task_name, rp.store, rp.end - rp.position);
      spdlog::info("[{}] task {}: restoring store '{}' from {} offsets [{}, {})", name_, task_name,
                   rp.store, tp.ToString(), rp.position, rp.end);
      restoring_.insert_or_assign(tp, std::move(rp));
    }
    entry.restoring = !parts.empty();
    if (entry.restoring) {
      entry.restore_started = SteadyClock::now();
      entry.restored_records = 0;
      spdlog::info("[{}] task {}: restoring up to {} changelog records", name_, task_name, total);
    }
    return entry.restoring;
  }
  return Status::Internal("unreachable");
}

void StreamThread::ReassignRestoreConsumer() {
  if (!restore_consumer_) return;
  // Incremental changes only: librdkafka 2.0.2 aborts the process
  // (rd_kafka_assignment_partition_stopped: assert rktp_started) when a
  // started partition is removed twice before its fetcher confirmed the first
  // stop, which replacing the whole assignment (rd_kafka_assign) on two
  // quick consecutive calls does. Each partition is now added once, when its
  // restore starts, and removed once, when it is done or its task is gone.
  std::map<TopicPartition, std::optional<Offset>> add;
  std::map<TopicPartition, std::optional<Offset>> remove;
  for (const TopicPartition& tp : restore_assigned_) {
    auto it = restoring_.find(tp);
    if (it == restoring_.end() || it->second.done || !it->second.assigned) {
      remove.emplace(tp, std::nullopt);
    }
  }
  for (auto& [tp, rp] : restoring_) {
    if (rp.done || rp.assigned) continue;
    add.emplace(tp, Offset(rp.position));
  }
  const auto apply = [&](const std::map<TopicPartition, std::optional<Offset>>& partitions,
                         bool assign) {
    if (partitions.empty()) return;
    PartitionList list = MakePartitionList(partitions);
    rd_kafka_error_t* error =
        assign ? rd_kafka_incremental_assign(restore_consumer_.get(), list.get())
               : rd_kafka_incremental_unassign(restore_consumer_.get(), list.get());
    if (error != nullptr) {
      // Logged, not failed: a partition left assigned is only read and
      // ignored (RestoreStep skips records of partitions not restoring); one
      // not added leaves its task restoring, visible in restore metrics.
      spdlog::error("[{}] {} the restore consumer: {}", name_, assign ? "assigning" : "unassigning",
                    rd_kafka_error_string(error));
      rd_kafka_error_destroy(error);
      return;
    }
    for (const auto& [tp, offset] : partitions) {
      if (assign) {
        restore_assigned_.insert(tp);
        restoring_.at(tp).assigned = true;
      } else {
        restore_assigned_.erase(tp);
      }
    }
  };
  apply(remove, /*assign=*/false);
  apply(add, /*assign=*/true);
}

void StreamThread::RestoreStep(milliseconds timeout) {
  int64_t polled = 0;
  while (polled < config_.restore_batch_records()) {
    rd_kafka_message_t* m =
        rd_kafka_consumer_poll(restore_consumer_.get(), polled == 0 ? TimeoutMs(timeout) : 0);
    if (m == nullptr) break;
    ++polled;
    if (m->rkt == nullptr) {
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        spdlog::warn("[{}] restore consumer: {}", name_, rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    TopicPartition tp{rd_kafka_topic_name(m->rkt), Partition(m->partition)};
    auto it = restoring_.find(tp);
    if (it == restoring_.end() || it->second.done) {
      rd_kafka_message_destroy(m);
      continue;
    }
    RestorePartition& rp = it->second;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (m->offset >= rp.end) rp.done = true;
    } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("[{}] restore consumer {}: {}", name_, tp.ToString(),
                   rd_kafka_message_errstr(m));
    } else if (m->offset >= rp.position) {
      state::ChangelogRecord record;
      record.store = rp.store;
      if (m->key != nullptr) record.key.assign(static_cast<const char*>(m->key), m->key_len);
      if (m->payload != nullptr) {
        record.value.emplace(static_cast<const char*>(m->payload), m->len);
      }
      rd_kafka_timestamp_type_t type;
      int64_t ts = rd_kafka_message_timestamp(m, &type);
      record.timestamp = Timestamp(std::max<int64_t>(ts, 0));
      rp.batch.push_back(std::move(record));
      rp.position = m->offset + 1;
      if (rp.position >= rp.end) rp.done = true;
    }
    rd_kafka_message_destroy(m);
  }

  // Apply the batches.
  for (auto& [tp, rp] : restoring_) {
    if (rp.batch.empty()) continue;
    auto entry = tasks_.find(rp.task);
    if (entry == tasks_.end()) {
      rp.batch.clear();
      continue;
    }
    const std::string task_name = TaskId{rp.task}.ToString();
    const uint64_t count = rp.batch.size();
    Status applied = entry->second.task->ApplyRestoreBatch(rp.store, rp.batch, Offset(rp.position));
    rp.batch.clear();
    if (!applied.ok()) {
      Fail(applied.WithContext("restoring task " + task_name + " store '" + rp.store + "'"));
      return;
    }
    entry->second.restored_records += count;
    shared_->metrics->AddRestored(task_name, rp.store, count);
    shared_->metrics->SetRestoreRemaining(task_name, rp.store,
                                          std::max<int64_t>(0, rp.end - rp.position));
    shared_->stats->Add([count](KafkaStreamsStats& s) { s.records_restored += count; });
  }

  // Tasks whose partitions are all done.
  std::vector<Partition> finished;
  for (auto& [partition, entry] : tasks_) {
    if (!entry.restoring) continue;
    bool all_done = true;
    for (const auto& [tp, rp] : restoring_) {
      if (rp.task == partition && !rp.done) all_done = false;
    }
    if (all_done) finished.push_back(partition);
  }
  for (Partition partition : finished) {
    Status status = FinishRestore(partition, tasks_.at(partition));
    if (!status.ok()) {
      RejoinOrFail(status);
      return;
    }
  }
}

Status StreamThread::FinishRestore(Partition partition, TaskEntry& entry) {
  const std::string task_name = TaskId{partition}.ToString();
  for (auto it = restoring_.begin(); it != restoring_.end();) {
    if (it->second.task == partition) {
      shared_->metrics->SetRestoreRemaining(task_name, it->second.store, 0);
      it = restoring_.erase(it);
    } else {
      ++it;
    }
  }
  STREAMS_RETURN_IF_ERROR(
      entry.task->InitializeProcessors().WithContext("initializing task " + task_name));
  entry.restoring = false;
  const double seconds =
      std::chrono::duration<double>(SteadyClock::now() - entry.restore_started).count();
  spdlog::info("[{}] task {}: restored {} changelog records in {:.3f} s", name_, task_name,
               entry.restored_records, seconds);
  // Resume the input from the last commit (records fetched meanwhile were dropped).
  std::map<TopicPartition, Offset> rewind;
  std::map<TopicPartition, std::optional<Offset>> to_resume;
  for (const auto& tp : entry.inputs) {
    auto it = committed_positions_.find(tp);
    if (it != committed_positions_.end()) rewind.insert_or_assign(tp, it->second);
    to_resume.emplace(tp, std::nullopt);
  }
  STREAMS_RETURN_IF_ERROR(Seek(rewind).WithContext("rewinding the input of task " + task_name));
  STREAMS_RETURN_IF_ERROR(SetPaused(entry.inputs, /*pause=*/false));
  ReassignRestoreConsumer();
  UpdatePublishedTasks();
  last_state_metrics_ = {};  // Export the restored state's size at the next round.
  if (restoring_.empty() && state_.load() == State::kRestoring) SetState(State::kRunning);
  return Status::Ok();
}

}  // namespace streams::runtime::internal
