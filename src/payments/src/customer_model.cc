#include "customer_model.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace payments::internal {
namespace {

using streams::Result;
using streams::Status;
using streams::state::KeyValueStore;

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) return std::numeric_limits<int64_t>::max();
  return out;
}

void AppendBigEndian(std::string& out, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

// The smallest key greater than every key starting with `prefix` ("" when
// there is none: Range then reads to the end).
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    auto last = static_cast<unsigned char>(prefix.back());
    if (last != 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return prefix;
}

Result<ApprovalEntry> ParseEntry(const KeyValueStore& store, std::string_view bytes) {
  ApprovalEntry entry;
  if (!entry.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) ||
      entry.amount_minor() < 0 || entry.count() <= 0) {
    return Status::Corruption("an approval entry of store '" + store.name() +
                              "' is not a valid payments.internal.ApprovalEntry");
  }
  return entry;
}

Status Inconsistent(std::string_view what) {
  return Status::Corruption("the " + std::string(what) +
                            " of a customer do not match its stored approvals");
}

// Moves `value` to the front of `list`, keeping at most `limit` entries.
void MoveToFront(google::protobuf::RepeatedPtrField<std::string>& list, const std::string& value,
                 size_t limit) {
  auto it = std::find(list.begin(), list.end(), value);
  if (it != list.end()) {
    std::rotate(list.begin(), it, it + 1);
    return;
  }
  *list.Add() = value;
  std::rotate(list.begin(), list.end() - 1, list.end());
  while (static_cast<size_t>(list.size()) > limit) list.RemoveLast();
}

// The WindowTotal of `currency` (sorted by currency), or its insertion index.
std::pair<int, bool> FindTotal(const CustomerState& state, std::string_view currency) {
  const auto& totals = state.window_totals();
  auto it = std::lower_bound(
      totals.begin(), totals.end(), currency,
      [](const WindowTotal& t, std::string_view c) { return std::string_view(t.currency()) < c; });
  return {static_cast<int>(it - totals.begin()),
          it != totals.end() && std::string_view(it->currency()) == currency};
}

}  // namespace

// ---------------------------------------------------------------- keys

std::string ApprovalKeyPrefix(std::string_view customer_id) {
  std::string prefix;
  prefix.reserve(5 + customer_id.size());
  prefix.push_back(static_cast<char>(0xff));
  AppendBigEndian(prefix, static_cast<uint32_t>(customer_id.size()), 4);
  prefix.append(customer_id);
  return prefix;
}

std::string ApprovalKey(std::string_view customer_id, int64_t seq) {
  std::string key = ApprovalKeyPrefix(customer_id);
  AppendBigEndian(key, static_cast<uint64_t>(seq), 8);
  return key;
}

// ---------------------------------------------------------------- pure parts

int64_t CustomerTime(const CustomerState& state, int64_t record_ms) {
  return std::max(state.last_event_ms(), record_ms);
}

TokenBucketValue BucketOf(const CustomerState& state) {
  return TokenBucketValue{state.bucket().milli_tokens(), state.bucket().last_refill_ms(),
                          state.bucket().remainder()};
}

void SetBucket(CustomerState& state, const TokenBucketValue& value) {
  auto* bucket = state.mutable_bucket();
  bucket->set_milli_tokens(value.milli_tokens);
  bucket->set_last_refill_ms(value.last_refill_ms);
  bucket->set_remainder(value.remainder);
}

void ApplyApprovedPaymentStats(CustomerState& state, const payments::v1::PaymentRequest& request,
                               int64_t now_ms) {
  // Lifetime stats, sorted by currency.
  auto* stats = state.mutable_currency_stats();
  auto it = std::lower_bound(
      stats->begin(), stats->end(), request.currency(),
      [](const CurrencyStats& s, const std::string& c) { return s.currency() < c; });
  if (it == stats->end() || it->currency() != request.currency()) {
    const int index = static_cast<int>(it - stats->begin());
    CurrencyStats* added = stats->Add();
    added->set_currency(request.currency());
    // Bubble the new entry into place.
    for (int i = stats->size() - 1; i > index; --i) stats->SwapElements(i, i - 1);
    it = stats->begin() + index;
  }
  it->set_approved_count(it->approved_count() + 1);
  it->set_approved_sum_minor(SaturatingAdd(it->approved_sum_minor(), request.amount_minor()));

  MoveToFront(*state.mutable_known_merchants(), request.merchant_id(), kKnownMerchantsLimit);
  MoveToFront(*state.mutable_known_currencies(), request.currency(), kKnownCurrenciesLimit);
  state.set_approved_payments(state.approved_payments() + 1);
  state.set_last_event_ms(std::max(state.last_event_ms(), now_ms));
}

// ---------------------------------------------------------------- CustomerLedger

Result<CustomerLedger> CustomerLedger::Load(KeyValueStore& records, KeyValueStore& approvals,
                                            std::string customer_id, int64_t record_ms,
                                            int64_t earliest_ms) {
  CustomerLedger ledger(records, approvals, std::move(customer_id));
  STREAMS_ASSIGN_OR_RETURN(std::optional<std::string> stored, records.Get(ledger.customer_id_));
  if (stored) {
    if (!ledger.state_.ParseFromString(*stored)) {
      return Status::Corruption("a value of store '" + records.name() +
                                "' is not a valid payments.internal.CustomerState");
    }
    ledger.known_ = true;
    if (ledger.state_.layout() > kCustomerStateLayout) {
      return Status::Corruption("a value of store '" + records.name() + "' has layout " +
                                std::to_string(ledger.state_.layout()) +
                                ", newer than this version understands");
    }
    if (ledger.state_.layout() < kCustomerStateLayout) STREAMS_RETURN_IF_ERROR(ledger.Migrate());
  } else {
    ledger.state_.set_layout(kCustomerStateLayout);
  }
  ledger.now_ms_ = std::max(CustomerTime(ledger.state_, record_ms), earliest_ms);
  if (ledger.known_) {
    STREAMS_RETURN_IF_ERROR(ledger.AdvanceTo(ledger.now_ms_));
  } else {
    ledger.state_.set_window_end_ms(ledger.now_ms_);
  }
  return ledger;
}

Result<std::optional<ApprovalEntry>> CustomerLedger::FindEntry(int64_t seq) {
  STREAMS_ASSIGN_OR_RETURN(std::optional<std::string> stored,
                           approvals_->Get(ApprovalKey(customer_id_, seq)));
  if (!stored) return std::optional<ApprovalEntry>();
  STREAMS_ASSIGN_OR_RETURN(ApprovalEntry entry, ParseEntry(*approvals_, *stored));
  return std::optional<ApprovalEntry>(std::move(entry));
}

template <typename Fn>
Result<int64_t> CustomerLedger::WalkBack(int64_t start_seq, __int128 cutoff, Fn&& fn) {
  int64_t seq = start_seq;
  while (seq > state_.oldest_stored_seq()) {
    STREAMS_ASSIGN_OR_RETURN(std::optional<ApprovalEntry> entry, FindEntry(seq - 1));
    // Expired (customers store TTL): it and the older ones are at or before
    // every cutoff this request can use (Load's earliest_ms).
    if (!entry || entry->at_ms() <= cutoff) break;
    fn(*entry);
    --seq;
  }
  return seq;
}

Status CustomerLedger::Migrate() {
  // Layout 0 kept the approvals of (L - 24 h, L] in `recent`, ascending at_ms.
  const int64_t last = state_.last_event_ms();
  const __int128 day_cutoff = static_cast<__int128>(last) - kDailyWindowMs;
  const __int128 hour_cutoff = static_cast<__int128>(last) - kVelocityWindowMs;
  google::protobuf::RepeatedPtrField<RecentApproval> recent;
  recent.Swap(state_.mutable_recent());
  state_.set_layout(kCustomerStateLayout);
  state_.set_window_end_ms(last);
  state_.clear_window_totals();
  state_.set_last_hour_count(0);
  int64_t seq = 0;
  state_.set_next_approval_seq(0);
  state_.set_oldest_stored_seq(0);
  state_.set_window_start_seq(0);
  std::optional<int64_t> hour_start;
  int64_t previous_at = std::numeric_limits<int64_t>::min();
  for (const RecentApproval& r : recent) {
    if (r.at_ms() < previous_at || r.at_ms() > last || r.amount_minor() < 0 || r.count() <= 0) {
      return Status::Corruption("a legacy value of store '" + records_->name() +
                                "' has an invalid list of recent approvals");
    }
    previous_at = r.at_ms();
    if (r.at_ms() <= day_cutoff) continue;
    ApprovalEntry entry;
    entry.set_at_ms(r.at_ms());
    entry.set_currency(r.currency());
    entry.set_amount_minor(r.amount_minor());
    entry.set_count(r.count());
    STREAMS_RETURN_IF_ERROR(
        approvals_->Put(ApprovalKey(customer_id_, seq), entry.SerializeAsString()));
    STREAMS_RETURN_IF_ERROR(AddToWindow(r.currency(), r.amount_minor(), r.count()));
    if (seq == 0) {
      state_.set_oldest_stored_ms(r.at_ms());
      state_.set_window_start_ms(r.at_ms());
    }
    if (r.at_ms() > hour_cutoff) {
      state_.set_last_hour_count(state_.last_hour_count() + r.count());
      if (!hour_start) {
        hour_start = seq;
        state_.set_hour_start_ms(r.at_ms());
      }
    }
    ++seq;
  }
  state_.set_next_approval_seq(seq);
  state_.set_hour_start_seq(hour_start.value_or(seq));
  changed_ = true;
  return Status::Ok();
}

Status CustomerLedger::AdvanceTo(int64_t now_ms) {
  if (now_ms <= state_.window_end_ms()) return Status::Ok();
  // The stored window end is the customer time of the record's last write:
  // rewrite the record (restarting its TTL in the customers store) at least
  // once per 24 h of customer time while the customer sends requests.
  if (static_cast<__int128>(now_ms) - state_.window_end_ms() >= kDailyWindowMs) changed_ = true;
  const int64_t next = state_.next_approval_seq();
  const __int128 day_cutoff = static_cast<__int128>(now_ms) - kDailyWindowMs;
  const __int128 hour_cutoff = static_cast<__int128>(now_ms) - kVelocityWindowMs;
  const bool windows_empty = state_.window_start_seq() == next && state_.hour_start_seq() == next;
  if (!windows_empty && state_.last_event_ms() <= day_cutoff) {
    // Every approval (at_ms <= last_event_ms) left both windows: the same
    // result as the loops below, without reading entries (which may have
    // expired by now).
    state_.set_window_start_seq(next);
    state_.clear_window_totals();
    state_.set_hour_start_seq(next);
    state_.set_last_hour_count(0);
    state_.set_window_end_ms(now_ms);
    changed_ = true;
    return Status::Ok();
  }
  // Approvals that left the 24 h window (at_ms <= now - 24 h), oldest first.
  if (state_.window_start_seq() < next && state_.window_start_ms() <= day_cutoff) {
    int64_t seq = state_.window_start_seq();
    for (; seq < next; ++seq) {
      STREAMS_ASSIGN_OR_RETURN(std::optional<ApprovalEntry> entry, FindEntry(seq));
      if (!entry) return Rebuild(now_ms);  // expired: its amount is gone
      if (entry->at_ms() > day_cutoff) {
        state_.set_window_start_ms(entry->at_ms());
        break;
      }
      STREAMS_RETURN_IF_ERROR(
          SubtractFromWindow(entry->currency(), entry->amount_minor(), entry->count()));
    }
    state_.set_window_start_seq(seq);
    if ((seq == next) != (state_.window_totals_size() == 0)) return Inconsistent("24 h sums");
    changed_ = true;
  }
  // Approvals that left the velocity window (at_ms <= now - 1 h).
  if (state_.hour_start_seq() < next && state_.hour_start_ms() <= hour_cutoff) {
    int64_t seq = state_.hour_start_seq();
    for (; seq < next; ++seq) {
      STREAMS_ASSIGN_OR_RETURN(std::optional<ApprovalEntry> entry, FindEntry(seq));
      if (!entry) return Rebuild(now_ms);
      if (entry->at_ms() > hour_cutoff) {
        state_.set_hour_start_ms(entry->at_ms());
        break;
      }
      if (entry->count() > state_.last_hour_count()) return Inconsistent("last-hour count");
      state_.set_last_hour_count(state_.last_hour_count() - entry->count());
    }
    state_.set_hour_start_seq(seq);
    if ((seq == next) != (state_.last_hour_count() == 0)) return Inconsistent("last-hour count");
    changed_ = true;
  }
  state_.set_window_end_ms(now_ms);
  return Status::Ok();
}

Status CustomerLedger::Rebuild(int64_t now_ms) {
  const int64_t next = state_.next_approval_seq();
  const __int128 day_cutoff = static_cast<__int128>(now_ms) - kDailyWindowMs;
  const __int128 hour_cutoff = static_cast<__int128>(now_ms) - kVelocityWindowMs;
  state_.clear_window_totals();
  state_.set_last_hour_count(0);
  std::optional<int64_t> oldest;
  std::optional<int64_t> window_start;
  std::optional<int64_t> hour_start;
  {
    STREAMS_ASSIGN_OR_RETURN(
        auto it, approvals_->Range(ApprovalKey(customer_id_, state_.oldest_stored_seq()),
                                   ApprovalKey(customer_id_, next)));
    for (; it->Valid(); it->Next()) {
      const std::string_view key = it->key();
      if (key.size() < 8) return Inconsistent("approval keys");
      uint64_t seq = 0;
      for (size_t i = key.size() - 8; i < key.size(); ++i) {
        seq = (seq << 8) | static_cast<unsigned char>(key[i]);
      }
      STREAMS_ASSIGN_OR_RETURN(ApprovalEntry e, ParseEntry(*approvals_, it->value()));
      if (!oldest) {
        oldest = static_cast<int64_t>(seq);
        state_.set_oldest_stored_ms(e.at_ms());
      }
      if (e.at_ms() > day_cutoff) {
        STREAMS_RETURN_IF_ERROR(AddToWindow(e.currency(), e.amount_minor(), e.count()));
        if (!window_start) {
          window_start = static_cast<int64_t>(seq);
          state_.set_window_start_ms(e.at_ms());
        }
      }
      if (e.at_ms() > hour_cutoff) {
        state_.set_last_hour_count(SaturatingAdd(state_.last_hour_count(), e.count()));
        if (!hour_start) {
          hour_start = static_cast<int64_t>(seq);
          state_.set_hour_start_ms(e.at_ms());
        }
      }
    }
    STREAMS_RETURN_IF_ERROR(it->status());
  }
  state_.set_oldest_stored_seq(oldest.value_or(next));
  state_.set_window_start_seq(window_start.value_or(next));
  state_.set_hour_start_seq(hour_start.value_or(next));
  state_.set_window_end_ms(now_ms);
  changed_ = true;
  return Status::Ok();
}

Status CustomerLedger::AddToWindow(const std::string& currency, int64_t amount, int64_t count) {
  auto [index, found] = FindTotal(state_, currency);
  auto* totals = state_.mutable_window_totals();
  if (!found) {
    WindowTotal* added = totals->Add();
    added->set_currency(currency);
    for (int i = totals->size() - 1; i > index; --i) totals->SwapElements(i, i - 1);
  }
  WindowTotal& total = *totals->Mutable(index);
  int64_t new_amount = 0;
  int64_t new_count = 0;
  if (__builtin_add_overflow(total.amount_minor(), amount, &new_amount) ||
      __builtin_add_overflow(total.count(), count, &new_count)) {
    return Status::Corruption("the 24 h window sum of a customer overflows");
  }
  total.set_amount_minor(new_amount);
  total.set_count(new_count);
  return Status::Ok();
}

Status CustomerLedger::SubtractFromWindow(const std::string& currency, int64_t amount,
                                          int64_t count) {
  auto [index, found] = FindTotal(state_, currency);
  if (!found) return Inconsistent("24 h sums");
  auto* totals = state_.mutable_window_totals();
  WindowTotal& total = *totals->Mutable(index);
  if (amount > total.amount_minor() || count > total.count()) return Inconsistent("24 h sums");
  total.set_amount_minor(total.amount_minor() - amount);
  total.set_count(total.count() - count);
  if (total.count() == 0) {
    if (total.amount_minor() != 0) return Inconsistent("24 h sums");
    totals->DeleteSubrange(index, 1);
  }
  return Status::Ok();
}

Result<int64_t> CustomerLedger::ApprovedInWindow(std::string_view currency) {
  auto [index, found] = FindTotal(state_, currency);
  int64_t sum = found ? state_.window_totals(index).amount_minor() : 0;
  if (now_ms_ < state_.window_end_ms()) {
    // A late request: the stored approvals below the window start with
    // at_ms > now - 24 h count for it too.
    STREAMS_RETURN_IF_ERROR(WalkBack(state_.window_start_seq(),
                                     static_cast<__int128>(now_ms_) - kDailyWindowMs,
                                     [&](const ApprovalEntry& e) {
                                       if (e.currency() == currency) {
                                         sum = SaturatingAdd(sum, e.amount_minor());
                                       }
                                     })
                                .status());
  }
  return sum;
}

Result<int64_t> CustomerLedger::ApprovalsLastHour() {
  int64_t count = state_.last_hour_count();
  if (now_ms_ < state_.window_end_ms()) {
    STREAMS_RETURN_IF_ERROR(
        WalkBack(state_.hour_start_seq(), static_cast<__int128>(now_ms_) - kVelocityWindowMs,
                 [&](const ApprovalEntry& e) { count = SaturatingAdd(count, e.count()); })
            .status());
  }
  return count;
}

Result<CustomerProfile> CustomerLedger::Profile(bool with_recent_approvals) {
  CustomerProfile profile;
  profile.now_ms = now_ms_;
  profile.approved_payments = state_.approved_payments();
  for (const CurrencyStats& s : state_.currency_stats()) {
    profile.currency_stats.push_back(
        payments::CurrencyStats{s.currency(), s.approved_count(), s.approved_sum_minor()});
  }
  profile.known_merchants.assign(state_.known_merchants().begin(), state_.known_merchants().end());
  profile.known_currencies.assign(state_.known_currencies().begin(),
                                  state_.known_currencies().end());
  STREAMS_ASSIGN_OR_RETURN(int64_t last_hour, ApprovalsLastHour());
  profile.approvals_last_hour = last_hour;
  if (!with_recent_approvals || state_.oldest_stored_seq() == state_.next_approval_seq()) {
    return profile;  // not asked for, or nothing stored
  }
  // Every approval with at_ms > now - 24 h, those of the same time and
  // currency merged (in order of first appearance within a time).
  int64_t first = state_.window_start_seq();
  if (now_ms_ < state_.window_end_ms()) {
    STREAMS_ASSIGN_OR_RETURN(first, WalkBack(first, static_cast<__int128>(now_ms_) - kDailyWindowMs,
                                             [](const ApprovalEntry&) {}));
  }
  const std::string prefix = ApprovalKeyPrefix(customer_id_);
  STREAMS_ASSIGN_OR_RETURN(auto it,
                           approvals_->Range(ApprovalKey(customer_id_, first), PrefixEnd(prefix)));
  auto& recent = profile.recent_approvals;
  for (; it->Valid(); it->Next()) {
    STREAMS_ASSIGN_OR_RETURN(ApprovalEntry e, ParseEntry(*approvals_, it->value()));
    bool merged = false;
    for (auto r = recent.rbegin(); r != recent.rend() && r->at_ms == e.at_ms(); ++r) {
      if (r->currency == e.currency()) {
        r->amount_minor = SaturatingAdd(r->amount_minor, e.amount_minor());
        r->count += e.count();
        merged = true;
        break;
      }
    }
    if (!merged) {
      recent.push_back(
          payments::RecentApproval{e.at_ms(), e.currency(), e.amount_minor(), e.count()});
    }
  }
  STREAMS_RETURN_IF_ERROR(it->status());
  return profile;
}

Status CustomerLedger::Approve(const payments::v1::PaymentRequest& request,
                               const TokenBucketValue& bucket_after) {
  const int64_t now = now_ms_;
  const int64_t end = state_.window_end_ms();  // >= now: Load moved it
  const int64_t seq = state_.next_approval_seq();
  ApprovalEntry entry;
  entry.set_at_ms(now);
  entry.set_currency(request.currency());
  entry.set_amount_minor(request.amount_minor());
  entry.set_count(1);
  STREAMS_RETURN_IF_ERROR(
      approvals_->Put(ApprovalKey(customer_id_, seq), entry.SerializeAsString()));
  state_.set_next_approval_seq(seq + 1);
  if (state_.oldest_stored_seq() == seq) state_.set_oldest_stored_ms(now);
  // Counted when inside the windows the sums describe. A late approval that
  // is not (now <= end - 24 h) comes after approvals that are not either
  // (their at_ms <= now), so the counted seqs stay a suffix.
  if (static_cast<__int128>(now) > static_cast<__int128>(end) - kDailyWindowMs) {
    STREAMS_RETURN_IF_ERROR(AddToWindow(request.currency(), request.amount_minor(), 1));
    if (state_.window_start_seq() == seq) state_.set_window_start_ms(now);
  } else {
    if (state_.window_start_seq() != seq) return Inconsistent("24 h sums");
    state_.set_window_start_seq(seq + 1);
  }
  if (static_cast<__int128>(now) > static_cast<__int128>(end) - kVelocityWindowMs) {
    state_.set_last_hour_count(state_.last_hour_count() + 1);
    if (state_.hour_start_seq() == seq) state_.set_hour_start_ms(now);
  } else {
    if (state_.hour_start_seq() != seq) return Inconsistent("last-hour count");
    state_.set_hour_start_seq(seq + 1);
  }

  // last_event_ms becomes now: the approvals at or before now - 24 h can
  // never be counted again (every later request is at customer time >= now).
  // They are not counted in the sums (now <= end), so they lie below
  // window_start_seq.
  const __int128 day_cutoff = static_cast<__int128>(now) - kDailyWindowMs;
  int64_t oldest = state_.oldest_stored_seq();
  const int64_t window_start = state_.window_start_seq();
  if (oldest < window_start && state_.oldest_stored_ms() <= day_cutoff) {
    // With end == now, everything below the window start is at or before
    // now - 24 h: no need to read it.
    const bool all_below_expired = end == now;
    while (oldest < window_start) {
      if (!all_below_expired) {
        STREAMS_ASSIGN_OR_RETURN(std::optional<ApprovalEntry> e, FindEntry(oldest));
        if (!e) {  // expired (customers store TTL) and purged: nothing to delete
          ++oldest;
          continue;
        }
        if (e->at_ms() > day_cutoff) {
          state_.set_oldest_stored_ms(e->at_ms());
          break;
        }
      }
      STREAMS_RETURN_IF_ERROR(approvals_->Delete(ApprovalKey(customer_id_, oldest)));
      ++oldest;
    }
    if (oldest == window_start) state_.set_oldest_stored_ms(state_.window_start_ms());
    state_.set_oldest_stored_seq(oldest);
  }

  SetBucket(state_, bucket_after);
  ApplyApprovedPaymentStats(state_, request, now);
  changed_ = false;
  return records_->Put(customer_id_, state_.SerializeAsString());
}

Status CustomerLedger::SaveIfChanged() {
  if (!changed_) return Status::Ok();
  changed_ = false;
  return records_->Put(customer_id_, state_.SerializeAsString());
}

}  // namespace payments::internal
