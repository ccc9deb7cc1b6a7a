#include "stream_thread.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <thread>

#include "fault_injection.h"

namespace streams::runtime::internal {

FaultInjection& Faults() {
  static FaultInjection faults;
  return faults;
}

namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

constexpr milliseconds kStateMetricsInterval(5000);
// Standby placement: how often the group is described while it is stable,
// and how soon again after a rebalance or while one is under way.
constexpr milliseconds kStandbyRefreshInterval(10000);
constexpr milliseconds kStandbyRefreshAfterRebalance(500);

std::string ThreadName(const StreamsConfig& config, int index) {
  return config.application_id() + "-" + config.instance_id() + "-StreamThread-" +
         std::to_string(index);
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
      name_(ThreadName(*shared->config, index)),
      transactional_id_(shared->config->application_id() + "-" + shared->config->instance_id() +
                        "-" + std::to_string(index)),
      collector_(shared->config->exactly_once(), name_),
      producer_(*shared->config, name_, transactional_id_, &collector_, &stop_requested_),
      changelog_reader_(shared, name_, &stop_requested_),
      task_manager_(shared, name_, &collector_, &changelog_reader_, &stop_requested_,
                    [this] { UpdatePublishedTasks(); }) {
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
  task_manager_.SetConsumer(consumer_.get());
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Life cycle

Status StreamThread::Start() {
  STREAMS_RETURN_IF_ERROR(CreateConsumer());
  STREAMS_RETURN_IF_ERROR(changelog_reader_.Create());
  STREAMS_RETURN_IF_ERROR(producer_.Create());
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
  std::vector<TaskId> ids = task_manager_.task_ids();
  const size_t restoring = task_manager_.restoring_count();
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
  Status init = producer_.InitTransactions();
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
  if (!failed && !task_manager_.empty()) {
    Status committed = CommitCycle();
    if (!committed.ok()) shutdown_status_ = committed;
  } else if (collector_.in_transaction() && producer_.get() != nullptr) {
    AbortCycle(Status::Aborted("shutting down after an error"));
  }
  CloseAllTasks(/*clean=*/!failed);
  task_manager_.CloseStandbys();
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
    task_manager_.SetConsumer(nullptr);
    consumer_.reset();
  }
  changelog_reader_.Close();
  producer_.Close();
  if (state_.load() != State::kError) SetState(State::kDead);
  spdlog::info("[{}] stopped", name_);
}

// ---------------------------------------------------------------------------
// The processing loop

bool StreamThread::HasCycleWork() const {
  return cycle_records_ > 0 || collector_.sent_in_cycle() > 0 || collector_.in_transaction() ||
         task_manager_.HasUncommittedWork();
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
  if (AdaptiveCommitDue()) return true;
  return task_manager_.CommitRequested();
}

bool StreamThread::AdaptiveCommitDue() const {
  // commit.adaptive: with the input caught up (the last poll found nothing
  // more), the cycle commits once its first record has waited as long as the
  // previous commit took. Light load: every record is committed within a few
  // commit durations; heavy load (the consumer never runs dry): cycles grow
  // up to commit.interval.ms, and each transaction carries more records.
  return config_.adaptive_commit() && caught_up_ && cycle_records_ > 0 &&
         SteadyClock::now() - cycle_first_record_ >= last_commit_duration_;
}

void StreamThread::RunOnce() {
  if (rejoin_requested_ && SteadyClock::now() >= rejoin_not_before_) {
    Rejoin();
    return;
  }
  const bool restoring = changelog_reader_.restoring();
  milliseconds timeout = restoring ? milliseconds(0) : config_.poll_timeout();
  if (!restoring && HasCycleWork()) {
    int64_t left = config_.commit_interval().count() -
                   (shared_->clock->Now().millis() - cycle_start_.millis());
    timeout = std::clamp(milliseconds(left), milliseconds(0), timeout);
    if (config_.adaptive_commit() && cycle_records_ > 0) {
      const auto linger = last_commit_duration_ - (SteadyClock::now() - cycle_first_record_);
      timeout = std::clamp(std::chrono::ceil<milliseconds>(linger), milliseconds(0), timeout);
    }
  }
  const int aborts_before = consecutive_aborts_;
  int64_t polled = 0;
  caught_up_ = false;
  while (polled < config_.max_poll_records() && !stop_requested_.load()) {
    rd_kafka_message_t* message =
        rd_kafka_consumer_poll(consumer_.get(), polled == 0 ? TimeoutMs(timeout) : 0);
    if (message == nullptr) {
      caught_up_ = true;
      break;
    }
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
  changelog_reader_.PollIdle();
  if (rejoin_requested_) return;  // At the next round, after its backoff.

  if (changelog_reader_.restoring()) {
    RestoreStep(polled > 0 ? milliseconds(0) : std::min(config_.poll_timeout(), milliseconds(50)));
    if (state_.load() == State::kError) return;
  } else if (changelog_reader_.has_standbys()) {
    RestoreStep(milliseconds(0));  // The group consumer's poll waited already.
    if (state_.load() == State::kError) return;
  }
  MaybeRefreshStandbys();

  collector_.PollDeliveries();
  if (!collector_.delivery_error().ok()) {
    HandleCycleError(collector_.delivery_error());
    return;
  }

  Status punctuated = task_manager_.PunctuateWallClock();
  if (!punctuated.ok()) {
    HandleCycleError(punctuated);
    return;
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

void StreamThread::HandleConsumerError(const rd_kafka_message_t* message) {
  if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return;
  Status status = KafkaStatus(message->err, "consumer");
  if (message->err == RD_KAFKA_RESP_ERR__FATAL) {
    char reason[512] = {};
    const rd_kafka_resp_err_t cause = rd_kafka_fatal_error(consumer_.get(), reason, sizeof(reason));
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
    std::string what = message->rkt != nullptr ? std::string(rd_kafka_topic_name(message->rkt)) +
                                                     "-" + std::to_string(message->partition) + ": "
                                               : std::string();
    spdlog::warn("[{}] consumer error: {}{}", name_, what, rd_kafka_message_errstr(message));
  }
}

void StreamThread::ProcessMessage(rd_kafka_message_t* message) {
  if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    HandleConsumerError(message);
    return;
  }
  using Kind = TaskManager::ProcessOutcome::Kind;
  TaskManager::ProcessOutcome outcome = task_manager_.Process(message);
  switch (outcome.kind) {
    case Kind::kSkipped:
      return;
    case Kind::kError:
      HandleCycleError(outcome.status);
      return;
    case Kind::kPermanent:
      if (config_.processing_exception_handler() == ProcessingExceptionHandler::kFail) {
        shared_->metrics->AddProcessingException("fail");
        Fail(outcome.status.WithContext("processing.exception.handler=fail"));
        return;
      }
      shared_->metrics->AddProcessingException("dead_letter");
      spdlog::warn(
          "[{}] {}@{} cannot be processed: {}; the cycle is replayed with it "
          "dead-lettered",
          name_, outcome.partition.ToString(), outcome.offset.value(), outcome.status.ToString());
      task_manager_.MarkPoison(outcome.partition, outcome.offset, outcome.status);
      AbortCycle(outcome.status, /*backoff=*/false);
      return;
    case Kind::kProcessed:
      if (cycle_records_ == 0) cycle_first_record_ = SteadyClock::now();
      ++cycle_records_;
      if (outcome.timestamp.millis() >= 0) cycle_timestamps_.push_back(outcome.timestamp.millis());
      return;
  }
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
  last_commit_duration_ =
      std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - started);

  // The Kafka side is committed: now the local state of every task.
  const std::vector<Partition> broken = task_manager_.CommitLocal(collector_.acked_next_offsets());

  // Metrics of the committed cycle.
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
  ResetCycle();
  consecutive_aborts_ = 0;
  UpdateLagAndStateMetrics(/*state_metrics=*/false);

  for (Partition partition : broken) {
    Status reopened = task_manager_.Reopen(partition);
    if (!reopened.ok()) {
      RejoinOrFail(reopened);
      return reopened;
    }
    if (changelog_reader_.IsRestoring(partition)) SetState(State::kRestoring);
  }
  return Status::Ok();
}

void StreamThread::ResetCycle() {
  collector_.EndCycle();
  cycle_records_ = 0;
  cycle_timestamps_.clear();
  cycle_start_ = shared_->clock->Now();
}

Status StreamThread::FlushOutputs() {
  Status flushed = collector_.Flush(config_.transaction_timeout());
  if (!collector_.delivery_error().ok()) {
    return Status::Aborted("delivery failed: " + collector_.delivery_error().message());
  }
  if (!flushed.ok()) return Status::Aborted(flushed.message());
  return Status::Ok();
}

Status StreamThread::CommitTransactional() {
  STREAMS_RETURN_IF_ERROR(task_manager_.PrepareCommit());
  STREAMS_RETURN_IF_ERROR(collector_.EnsureTransaction());
  STREAMS_RETURN_IF_ERROR(FlushOutputs());
  PartitionList offsets = task_manager_.OffsetsToCommit();
  return producer_.CommitTransaction(offsets.get(), consumer_.get());
}

Status StreamThread::CommitAtLeastOnce() {
  STREAMS_RETURN_IF_ERROR(task_manager_.PrepareCommit());
  STREAMS_RETURN_IF_ERROR(FlushOutputs());
  PartitionList list = task_manager_.OffsetsToCommit();
  if (list->cnt == 0) return Status::Ok();
  auto deadline = SteadyClock::now() + config_.transaction_timeout();
  milliseconds backoff(20);
  while (true) {
    for (int i = 0; i < list->cnt; ++i) list->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
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
  if (config_.exactly_once() && collector_.in_transaction() && producer_.get() != nullptr) {
    Status aborted = producer_.AbortTransaction();
    if (!aborted.ok()) {
      RecoverFromFatal(aborted.WithContext("the transaction could not be aborted"));
      return;
    }
  }
  Status sought = task_manager_.AbortAndRewind();
  ResetCycle();
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
  Status created = producer_.Recreate();
  if (!created.ok()) {
    if (!stop_requested_.load()) Fail(created.WithContext("re-creating the producer"));
    return;
  }
  ResetCycle();
  if (!in_rebalance_) rejoin_requested_ = true;
}

void StreamThread::CloseAllTasks(bool clean) {
  if (task_manager_.empty()) return;
  task_manager_.CloseAll(clean);
  // Nothing of the cycle outlives its tasks.
  collector_.EndCycle();
  cycle_records_ = 0;
  cycle_timestamps_.clear();
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
                                         queue_events(changelog_reader_.restore_consumer(), true));
  shared_->metrics->SetClientQueueEvents(name_, "offsets",
                                         queue_events(changelog_reader_.offsets_client(), false));
  shared_->metrics->SetClientQueueEvents(name_, "producer", queue_events(producer_.get(), false));
  task_manager_.UpdateMetrics(state_metrics);
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
    if (!task_manager_.Owns(Partition(owned->elems[i].partition))) {
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

Status StreamThread::AssignTasks(rd_kafka_topic_partition_list_t* partitions) {
  STREAMS_RETURN_IF_ERROR(task_manager_.Assign(partitions, /*incremental=*/cooperative_));
  if (!HasCycleWork()) cycle_start_ = shared_->clock->Now();
  return Status::Ok();
}

void StreamThread::OnAssign(rd_kafka_topic_partition_list_t* partitions) {
  shared_->stats->Add([](KafkaStreamsStats& s) { s.rebalances += 1; });
  shared_->metrics->AddRebalance();
  standby_refresh_at_ = SteadyClock::now() + kStandbyRefreshAfterRebalance;
  spdlog::info("[{}] assigned{}: {}", name_, cooperative_ ? " (incremental)" : "",
               PartitionListString(partitions));
  if (cooperative_) {
    OnIncrementalAssign(partitions);
    return;
  }
  SetState(State::kRebalancing);
  CloseAllTasks(/*clean=*/true);  // Eager: should be empty already.
  if (stop_requested_.load()) {
    // Stopping (the assignment arrived while closing): take nothing.
    AssignNothing();
    return;
  }
  Status status = AssignTasks(partitions);
  if (status.ok()) {
    consecutive_assignment_failures_ = 0;
    SetState(changelog_reader_.restoring() ? State::kRestoring : State::kRunning);
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
    SetState(changelog_reader_.restoring() ? State::kRestoring : State::kRunning);
    return;
  }
  // A failed assignment keeps nothing: the open cycle is aborted and every
  // task closed, the added partitions are taken (the protocol requires it)
  // and the thread rejoins, which revokes them all again.
  if (HasCycleWork()) AbortCycle(status, /*backoff=*/false);
  CloseAllTasks(/*clean=*/false);
  // Deliberately ignored: Assign may have assigned them already (the error
  // then says so); either way the rejoin below revokes everything.
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
  if (!task_manager_.empty()) {
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
  for (int i = 0; i < partitions->cnt; ++i) {
    revoked.insert(Partition(partitions->elems[i].partition));
  }
  const bool owns_revoked = std::any_of(revoked.begin(), revoked.end(),
                                        [&](Partition p) { return task_manager_.Owns(p); });
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
  task_manager_.Close(revoked, clean);
  Status unassigned = AssignIncrementally(partitions, /*add=*/false);
  if (!unassigned.ok()) spdlog::warn("[{}] {}", name_, unassigned.ToString());
  if (task_manager_.empty()) SetState(State::kRebalancing);
}

// ---------------------------------------------------------------------------
// Standby tasks

void StreamThread::MaybeRefreshStandbys() {
  // Not while an active task restores: opening standby stores (RocksDB, a
  // watermark lookup per changelog) would delay the active tasks; the
  // placement waits until they run.
  if (config_.num_standby_replicas() <= 0 || SteadyClock::now() < standby_refresh_at_ ||
      changelog_reader_.offsets_client() == nullptr || changelog_reader_.restoring()) {
    return;
  }
  const std::set<std::string> topics(shared_->topology->source_topics().begin(),
                                     shared_->topology->source_topics().end());
  Result<std::vector<GroupMember>> members =
      DescribeGroupMembers(changelog_reader_.offsets_client(), config_.application_id(), topics,
                           config_.offsets_lookup_timeout());
  if (!members.ok()) {
    spdlog::debug("[{}] standby placement postponed: {}", name_, members.status().ToString());
    standby_refresh_at_ = SteadyClock::now() + kStandbyRefreshAfterRebalance;
    return;
  }
  standby_refresh_at_ = SteadyClock::now() + kStandbyRefreshInterval;
  const std::string instance = InstanceOfClientId(name_ + "-consumer");
  task_manager_.UpdateStandbys(StandbyTasksFor(*members, instance, config_.num_standby_replicas()));
  shared_->metrics->SetStandbyTasks(name_, static_cast<int64_t>(task_manager_.standby_count()));
}

// ---------------------------------------------------------------------------
// Restore

void StreamThread::RestoreStep(milliseconds timeout) {
  Result<std::vector<ChangelogReader::Restored>> restored = changelog_reader_.Restore(timeout);
  if (!restored.ok()) {
    Fail(restored.status());
    return;
  }
  for (const ChangelogReader::Restored& task : *restored) {
    Status status = task_manager_.FinishRestore(task);
    if (!status.ok()) {
      RejoinOrFail(status);
      return;
    }
  }
  if (!restored->empty()) {
    last_state_metrics_ = {};  // Export the restored state's size at the next round.
    if (!changelog_reader_.restoring() && state_.load() == State::kRestoring) {
      SetState(State::kRunning);
    }
  }
}

}  // namespace streams::runtime::internal
