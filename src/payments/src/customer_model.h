// Internal: the per-customer model kept in the "customers" store: the small
// CustomerState record (token bucket, lifetime stats, known merchants and
// currencies, running sums of the rolling windows) and one ApprovalEntry per
// approved PAYMENT of the last 24 h under its own key.
//
// Approvals are numbered per customer (seq = 0, 1, 2, ... in approval order);
// their customer times never decrease, so every window is a contiguous seq
// range and its ends are found by point reads (no scans). With
// E = window_end_ms and L = last_event_ms (E >= L):
//  - stored entries: seqs [oldest_stored_seq, next) = the approvals with
//    at_ms > L - 24 h (an approval deletes those it pushes out);
//  - window_totals: seqs [window_start_seq, next) = at_ms > E - 24 h;
//  - last_hour_count: seqs [hour_start_seq, next) = at_ms > E - 1 h;
//  - a request at customer time now >= L moves E up to now, subtracting the
//    approvals that left the windows; when now < E (a late record after a
//    declined later one) it adds, for this request only, the stored approvals
//    below the window starts with at_ms > now - 24 h (or now - 1 h).
// So every check sees exactly the approvals with at_ms > now - 24 h (and
// at_ms > now - 1 h for velocity), as when they were kept in one list.
//
// Cost per request: O(1 + approvals that left a window since the customer's
// previous request) point reads and writes, independent of how many approvals
// are in the windows; a late record also reads the approvals between its time
// and E. The CustomerState value is bounded (its lists are bounded by the
// number of currencies and kKnown*Limit).
//
// Expiry: the customers store has a TTL (payments.customer.retention.ms, R).
// The record is rewritten by every approval and at least once per 24 h of
// customer time while the customer sends PAYMENTs (AdvanceTo), so only a
// customer idle for about R expires (record and entries; it then starts over).
// An entry is written with its approval's record, so it never outlives it.
// Requests are judged at customer time >= stream time - (R - 24 h) (Load's
// earliest_ms), so every entry a window can still count (at_ms > now - 24 h,
// written at stream time >= at_ms) is unexpired; entries that did expire are
// skipped where they could only be out of every window, and when one is
// missing from the sums' range the sums are rebuilt from the entries present.
//
// Thread safety: a CustomerLedger is a per-request value used by the one
// thread that drives the task; the free functions are pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "payments/fraud_scorer.h"
#include "payments/token_bucket.h"
#include "payments/v1/payments.pb.h"
#include "payments_state.pb.h"
#include "streams/result.h"
#include "streams/state/key_value_store.h"
#include "streams/status.h"

namespace payments::internal {

inline constexpr int64_t kDailyWindowMs = 24LL * 60 * 60 * 1000;
inline constexpr int64_t kVelocityWindowMs = 60LL * 60 * 1000;
// CustomerState.layout written by this version.
inline constexpr int32_t kCustomerStateLayout = 1;

// 0xFF, 4-byte big-endian length of customer_id, customer_id: the prefix of
// every ApprovalEntry key of the customer.
std::string ApprovalKeyPrefix(std::string_view customer_id);
// The key of approval `seq` (>= 0) of the customer: the prefix, then seq as 8
// bytes big-endian. Keys of one customer sort by seq.
std::string ApprovalKey(std::string_view customer_id, int64_t seq);

// The customer's event time for a request at `record_ms`: never goes back.
int64_t CustomerTime(const CustomerState& state, int64_t record_ms);

TokenBucketValue BucketOf(const CustomerState& state);
void SetBucket(CustomerState& state, const TokenBucketValue& value);

// One customer's model for the duration of one request.
class CustomerLedger {
 public:
  // Reads the customer's record from `records` (key customer_id) for a
  // request at `record_ms`; `approvals` holds the ApprovalEntry keys (both
  // borrowed, may be the same store; must outlive the ledger). Migrates a
  // layout-0 record (stages its approvals as entries) and moves the window
  // sums up to the customer time (the record itself is staged by
  // SaveIfChanged or Approve). The customer time is also at least
  // `earliest_ms` (stream time - (customer retention - 24 h)). Errors: store
  // errors, Corruption of a stored value.
  static streams::Result<CustomerLedger> Load(streams::state::KeyValueStore& records,
                                              streams::state::KeyValueStore& approvals,
                                              std::string customer_id, int64_t record_ms,
                                              int64_t earliest_ms);

  // Whether the customer has a record (has had an approved PAYMENT).
  bool known() const { return known_; }
  // The customer time of this request.
  int64_t now_ms() const { return now_ms_; }
  const CustomerState& state() const { return state_; }

  // Approved amount in `currency` with at_ms > now - 24 h, saturating at
  // INT64_MAX. Errors: store errors, Corruption.
  streams::Result<int64_t> ApprovedInWindow(std::string_view currency);
  // Number of approvals with at_ms > now - 1 h. Errors: store errors, Corruption.
  streams::Result<int64_t> ApprovalsLastHour();
  // The scorer's view (recent_approvals only when `with_recent_approvals`,
  // read from the store). Errors: store errors, Corruption.
  streams::Result<CustomerProfile> Profile(bool with_recent_approvals);

  // Stages the approval of `request` at now (at most once per ledger): its ApprovalEntry, the
  // bucket `bucket_after`, the sums, lifetime stats and known lists, and the deletion of the
  // entries that no request can count any more (at_ms <= now - 24 h). Errors: store errors,
  // Corruption (inconsistent sums).
  streams::Status Approve(const payments::v1::PaymentRequest& request,
                          const TokenBucketValue& bucket_after);

  // For a request that changes nothing else: stages the record when Load
  // changed it (migration, approvals that left a window, 24 h of customer time
  // since its last write); otherwise no write.
  // Errors: store errors.
  streams::Status SaveIfChanged();

 private:
  CustomerLedger(streams::state::KeyValueStore& records, streams::state::KeyValueStore& approvals,
                 std::string customer_id)
      : records_(&records), approvals_(&approvals), customer_id_(std::move(customer_id)) {}

  streams::Status Migrate();
  // Moves window_end_ms up to now, subtracting what left the windows.
  streams::Status AdvanceTo(int64_t now_ms);
  // Recomputes the window sums, starts and the oldest stored seq for customer
  // time now from the entries present (after one expired). O(entries stored).
  streams::Status Rebuild(int64_t now_ms);
  // The stored entry `seq`; std::nullopt when absent (expired); Corruption when invalid.
  streams::Result<std::optional<ApprovalEntry>> FindEntry(int64_t seq);
  // Walks down from start_seq - 1 (not below oldest_stored_seq) while the
  // entries are present and have at_ms > cutoff, calling fn(entry) for each;
  // returns the lowest seq walked (start_seq when none).
  template <typename Fn>
  streams::Result<int64_t> WalkBack(int64_t start_seq, __int128 cutoff, Fn&& fn);
  streams::Status AddToWindow(const std::string& currency, int64_t amount, int64_t count);
  streams::Status SubtractFromWindow(const std::string& currency, int64_t amount, int64_t count);

  streams::state::KeyValueStore* records_;
  streams::state::KeyValueStore* approvals_;
  std::string customer_id_;
  CustomerState state_;
  bool known_ = false;
  bool changed_ = false;
  int64_t now_ms_ = 0;
};

// Records an approved PAYMENT in the lifetime stats and the known merchant
// and currency lists (bounded, most recent first) and sets last_event_ms.
void ApplyApprovedPaymentStats(CustomerState& state, const payments::v1::PaymentRequest& request,
                               int64_t now_ms);

}  // namespace payments::internal
