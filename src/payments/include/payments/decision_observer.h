// DecisionObserver: a hook called for every confirmation the topology emits
// (the daemon counts metrics with it).
//
// Thread safety: implementations MUST be thread-safe: one observer is shared by
// every task of every stream thread, and OnDecision is called concurrently.
#pragma once

#include "payments/v1/payments.pb.h"

namespace payments {

class DecisionObserver {
 public:
  virtual ~DecisionObserver() = default;

  // Called once per emitted confirmation, right after it was forwarded to the
  // sink (so within the processing cycle, before the Kafka commit). The
  // confirmation is exactly the emitted one (redacted for PAN_NOT_ALLOWED;
  // replay=true for a replayed decision); the reference is valid only during
  // the call. At-least-once: when a cycle aborts (or the process crashes
  // before its commit), its records are processed again and their decisions
  // are observed again on the retry. Must not throw and should be fast.
  virtual void OnDecision(const payments::v1::PaymentConfirmation& confirmation) = 0;
};

}  // namespace payments
