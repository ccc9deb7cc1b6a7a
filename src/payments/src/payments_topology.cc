#include "payments/payments_topology.h"

#include <utility>

#include "decide_processor.h"
#include "payments/pan.h"
#include "streams/serde.h"
#include "streams/state/store_spec.h"

namespace payments {

streams::Result<std::unique_ptr<streams::Topology>> BuildPaymentsTopology(
    const PaymentsConfig& config, std::shared_ptr<const FraudScorer> scorer,
    DecisionObserver* observer) {
  STREAMS_RETURN_IF_ERROR(config.Validate());
  if (scorer == nullptr) scorer = DefaultFraudScorerInstance();
  auto shared_config = std::make_shared<const PaymentsConfig>(config);

  const std::string source(kRequestsSourceName);
  const std::string decide(kDecideProcessorName);
  streams::TopologyBuilder builder;
  builder.AddSource<std::string, payments::v1::PaymentRequest>(
      source, {config.requests_topic}, streams::StringSerdeInstance(),
      streams::ProtobufSerdeInstance<payments::v1::PaymentRequest>());
  builder.AddProcessor<internal::DecideProcessor>(
      decide,
      [shared_config, scorer, observer] {
        return std::make_unique<internal::DecideProcessor>(shared_config, scorer, observer);
      },
      {source});
  builder.AddStateStore(streams::state::StoreSpec{.name = std::string(kIdempotencyStoreName),
                                                  .kind = streams::state::StoreKind::kPersistent,
                                                  .ttl = config.idempotency_retention,
                                                  .logged = true},
                        {decide});
  builder.AddStateStore(streams::state::StoreSpec{.name = std::string(kPaymentsStoreName),
                                                  .kind = streams::state::StoreKind::kPersistent,
                                                  .ttl = config.refund_window,
                                                  .logged = true},
                        {decide});
  builder.AddStateStore(streams::state::StoreSpec{.name = std::string(kCustomersStoreName),
                                                  .kind = streams::state::StoreKind::kPersistent,
                                                  .ttl = config.customer_retention,
                                                  .logged = true},
                        {decide});
  // Records far ahead of stream time are declined (TIMESTAMP_TOO_FAR_AHEAD) and
  // do not move it, so one skewed clock cannot expire every entry of a partition.
  builder.SetTimestampPolicy(streams::TimestampPolicy{.max_lead = config.max_clock_skew});
  // An undecodable request is dead-lettered as raw bytes: mask card numbers in
  // its key, value and headers first.
  builder.SetDeadLetterRedactor(
      [](std::string_view bytes) { return RedactPanBytes(bytes); });
  builder.AddSink<std::string, payments::v1::PaymentConfirmation>(
      std::string(kConfirmationsSinkName), config.confirmations_topic,
      streams::StringSerdeInstance(),
      streams::ProtobufSerdeInstance<payments::v1::PaymentConfirmation>(), {decide});
  return std::move(builder).Build();
}

}  // namespace payments
