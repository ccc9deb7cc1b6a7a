// payments-verify's checks of payments-sink's output (tools/sink_check.h):
// the ledger comparison and the CDC topic checks, on hand-made inputs.
#include "tools/sink_check.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace payments::tools {
namespace {

using payments::v1::PaymentConfirmation;

PaymentConfirmation Confirmation(const std::string& id, int64_t amount,
                                 payments::v1::PaymentKind kind = payments::v1::PAYMENT,
                                 const std::string& refund_of = "") {
  PaymentConfirmation c;
  c.set_payment_id(id);
  c.set_idempotency_key("idem-" + id);
  c.set_customer_id("cust");
  c.set_merchant_id("m1");
  c.set_currency("EUR");
  c.set_kind(kind);
  c.set_amount_minor(amount);
  c.set_decision(payments::v1::APPROVED);
  c.set_refund_of(refund_of);
  return c;
}

ReadRecord Cdc(int64_t offset, const std::string& id, const std::string& op,
               const std::string& payment_id, int64_t refunded) {
  ReadRecord r;
  r.topic = "payments.cdc";
  r.offset = streams::Offset(offset);
  r.value =
      nlohmann::json{{"op", op},
                     {"after", {{"payment_id", payment_id}, {"refunded_amount_minor", refunded}}}}
          .dump();
  r.headers.push_back(streams::Header{"id", id});
  return r;
}

// A payment of 100 and a refund of 30 of it: 3 rows' worth of changes.
payments_sink::Ledger Expected() {
  return payments_sink::ExpectedLedger(
      {Confirmation("pay_a", 100), Confirmation("pay_r", 30, payments::v1::REFUND, "idem-pay_a")});
}

TEST(SinkCheckTest, ExpectedLedgerAppliesRefundsToTheirPayment) {
  const payments_sink::Ledger e = Expected();
  EXPECT_EQ(e.status.at("pay_a"), "PARTIALLY_REFUNDED");
  EXPECT_EQ(e.refunded.at("pay_a"), 30);
  EXPECT_EQ(e.balances.at({"m1", "EUR"}), 70);
  EXPECT_EQ(e.changes, 3);  // c pay_a, c pay_r, u pay_a.
}

TEST(SinkCheckTest, CompareLedgersNamesEveryKindOfDifference) {
  const payments_sink::Ledger expected = Expected();
  EXPECT_TRUE(payments_sink::CompareLedgers(expected, expected).empty());
  payments_sink::Ledger actual = expected;
  actual.status.erase("pay_r");
  actual.refunded["pay_a"] = 60;
  actual.balances[{"m1", "EUR"}] = 140;
  actual.status["pay_x"] = "APPROVED";
  const std::vector<std::string> d = payments_sink::CompareLedgers(expected, actual);
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d[0], "refunded_amount: pay_a has 60, expected 30");
  EXPECT_EQ(d[1], "missing_row: pay_r");
  EXPECT_EQ(d[2], "unexpected_row: pay_x (APPROVED)");
  EXPECT_EQ(d[3], "balance: m1/EUR is 140, expected 70");
}

TEST(SinkCheckTest, CdcWithEveryEventOnceOrRedeliveredPasses) {
  SinkCheckReport report;
  SetExpectation(Expected(), report);
  CheckCdc(Expected(),
           {Cdc(0, "e1", "c", "pay_a", 0), Cdc(1, "e2", "c", "pay_r", 0),
            Cdc(2, "e3", "u", "pay_a", 30), Cdc(3, "e3", "u", "pay_a", 30)},
           10, report);
  EXPECT_TRUE(report.ok()) << report.ToText();
  EXPECT_EQ(report.cdc_events, 4u);
  EXPECT_EQ(report.cdc_distinct_ids, 3u);
}

TEST(SinkCheckTest, CdcMissingOrOutOfOrderEventsAreViolations) {
  SinkCheckReport missing;
  CheckCdc(Expected(), {Cdc(0, "e1", "c", "pay_a", 0), Cdc(1, "e2", "c", "pay_r", 0)}, 10, missing);
  EXPECT_EQ(missing.violations.count("cdc_missing_event"), 1u) << missing.ToText();

  SinkCheckReport disordered;
  CheckCdc(Expected(),
           {Cdc(0, "e3", "u", "pay_a", 30), Cdc(1, "e1", "c", "pay_a", 0),
            Cdc(2, "e2", "c", "pay_r", 0)},
           10, disordered);
  EXPECT_EQ(disordered.violations.count("cdc_out_of_order"), 1u) << disordered.ToText();

  SinkCheckReport bad;
  ReadRecord no_id = Cdc(0, "e1", "c", "pay_a", 0);
  no_id.headers.clear();
  CheckCdc(Expected(), {no_id}, 10, bad);
  EXPECT_EQ(bad.violations.count("cdc_bad_event"), 1u) << bad.ToText();
}

}  // namespace
}  // namespace payments::tools
