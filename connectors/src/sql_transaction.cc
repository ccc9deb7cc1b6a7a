#include "streams/connect/sql_transaction.h"

#include <algorithm>
#include <random>
#include <regex>
#include <thread>

namespace streams::connect {
namespace {

class RealSleeperImpl final : public Sleeper {
 public:
  void Sleep(std::chrono::milliseconds duration) override {
    std::this_thread::sleep_for(duration);
  }
};

// Removes "password=..." and "user:password@" from connection strings.
std::string RedactUri(const std::string& uri) {
  static const std::regex kKeyValue(R"(password\s*=\s*\S+)", std::regex::icase);
  static const std::regex kUserInfo(R"(://([^:/@]+):[^@/]*@)");
  std::string out = std::regex_replace(uri, kKeyValue, "password=***");
  return std::regex_replace(out, kUserInfo, "://$1:***@");
}

}  // namespace

Sleeper* RealSleeper() {
  static auto* sleeper = new RealSleeperImpl();
  return sleeper;
}

bool IsRetryableSqlState(std::string_view sqlstate) {
  return sqlstate == "40001" || sqlstate == "40P01";
}

Status TranslateSqlException(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) {
    return Status::Unavailable(std::string("database connection lost: ") + e.what());
  }
  // libpqxx 6 maps 40001 and 40P01 to transaction_rollback subclasses, which
  // are not sql_error and carry no SQLSTATE.
  if (dynamic_cast<const pqxx::serialization_failure*>(&e) != nullptr) {
    return Status::Aborted(std::string("SQLSTATE 40001: ") + e.what());
  }
  if (dynamic_cast<const pqxx::deadlock_detected*>(&e) != nullptr) {
    return Status::Aborted(std::string("SQLSTATE 40P01: ") + e.what());
  }
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const std::string state = sql->sqlstate();
    std::string msg = "SQLSTATE " + state + ": " + sql->what();
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    if (IsRetryableSqlState(state)) return Status::Aborted(msg);
    if (state.rfind("23", 0) == 0 || state.rfind("22", 0) == 0) {
      return Status::FailedPrecondition(msg);
    }
    if (state.rfind("42", 0) == 0) return Status::InvalidArgument(msg);
    if (state.rfind("08", 0) == 0) return Status::Unavailable(msg);
    return Status::Internal(msg);
  }
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    return Status::Unavailable(std::string("commit outcome unknown: ") + e.what());
  }
  return Status::Internal(std::string("database error: ") + e.what());
}

std::string SqlStateOf(const Status& status) {
  static constexpr std::string_view kPrefix = "SQLSTATE ";
  const std::string& msg = status.message();
  size_t at = msg.find(kPrefix);
  if (at != std::string::npos && msg.size() >= at + kPrefix.size() + 5) {
    return msg.substr(at + kPrefix.size(), 5);
  }
  if (status.code() == StatusCode::kUnavailable) return "08006";
  return "";
}

Result<std::unique_ptr<pqxx::connection>> Connect(const std::string& uri) {
  try {
    return std::make_unique<pqxx::connection>(uri);
  } catch (const pqxx::broken_connection& e) {
    return Status::Unavailable("cannot connect to " + RedactUri(uri) + ": " + e.what());
  } catch (const std::exception& e) {
    return Status::InvalidArgument("bad connection string " + RedactUri(uri) + ": " + e.what());
  }
}

Status RunTransaction(pqxx::connection& conn, const std::function<Status(pqxx::work&)>& body,
                      const RetryPolicy& policy, Sleeper* sleeper) {
  const int attempts = std::max(1, policy.max_attempts);
  std::chrono::milliseconds backoff = policy.initial_backoff;
  const double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  thread_local std::mt19937_64 rng{std::random_device{}()};
  Status last;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    try {
      pqxx::work txn(conn);
      Status status = body(txn);
      if (!status.ok()) {
        txn.abort();
        // A body that translated a 40001/40P01 itself is retried the same way.
        if (status.code() != StatusCode::kAborted || !IsRetryableSqlState(SqlStateOf(status))) {
          return status;
        }
        last = status;
        if (attempt < attempts) {
          if (policy.on_retry) policy.on_retry(SqlStateOf(last), attempt);
          sleeper->Sleep(std::chrono::milliseconds(static_cast<int64_t>(
              static_cast<double>(backoff.count()) *
              (jitter > 0 ? std::uniform_real_distribution<double>(1.0 - jitter, 1.0)(rng)
                          : 1.0))));
          backoff = std::min(policy.max_backoff, backoff * 2);
        }
        continue;
      }
      txn.commit();
      return Status::Ok();
    } catch (const pqxx::serialization_failure& e) {
      last = TranslateSqlException(e);
    } catch (const pqxx::deadlock_detected& e) {
      last = TranslateSqlException(e);
    } catch (const pqxx::sql_error& e) {
      last = TranslateSqlException(e);
      if (!IsRetryableSqlState(e.sqlstate())) return last;
    } catch (const std::exception& e) {
      return TranslateSqlException(e);
    }
    if (attempt < attempts) {
      if (policy.on_retry) policy.on_retry(SqlStateOf(last), attempt);
      std::chrono::milliseconds delay = backoff;
      if (jitter > 0) {
        std::uniform_real_distribution<double> factor(1.0 - jitter, 1.0);
        delay = std::chrono::milliseconds(
            static_cast<int64_t>(static_cast<double>(backoff.count()) * factor(rng)));
      }
      sleeper->Sleep(delay);
      backoff = std::min(policy.max_backoff, backoff * 2);
    }
  }
  return Status::Aborted("transaction still conflicting after " + std::to_string(attempts) +
                         " attempts: " + last.message());
}

}  // namespace streams::connect
