package paymentd.peer;

import java.math.BigInteger;
import payments.v1.Payments.PaymentRequest;

/**
 * paymentd's DefaultFraudScorer (src/payments/src/fraud_scorer.cc): deterministic, integer basis
 * points, the same weights.
 */
final class FraudScorer {
  private FraudScorer() {}

  static final int FIRST_PAYMENT_BP = 2500;
  static final int NEW_MERCHANT_BP = 2000;
  static final int NEW_CURRENCY_BP = 1500;
  static final int AMOUNT_OVER_2X_BP = 2000;
  static final int AMOUNT_OVER_5X_BP = 3500;
  static final int AMOUNT_OVER_10X_BP = 5000;
  static final int VELOCITY_3_BP = 1000;
  static final int VELOCITY_6_BP = 2000;
  static final int VELOCITY_10_BP = 3000;

  /** The score of a PAYMENT for the customer's state before it; approvalsLastHour precomputed. */
  static int scoreBasisPoints(PaymentRequest r, CustomerState s, long approvalsLastHour) {
    if (s == null || s.approvedPayments == 0) return FIRST_PAYMENT_BP;
    int score = 0;
    if (!s.knownMerchants.contains(r.getMerchantId())) score += NEW_MERCHANT_BP;
    if (!s.knownCurrencies.contains(r.getCurrency())) score += NEW_CURRENCY_BP;
    CustomerState.CurrencyStats st = s.stats(r.getCurrency());
    if (st != null && st.count > 0) {
      // amount * count vs k * sum, exact (no division).
      BigInteger scaled = BigInteger.valueOf(r.getAmountMinor()).multiply(BigInteger.valueOf(st.count));
      BigInteger sum = BigInteger.valueOf(st.sum);
      if (scaled.compareTo(sum.multiply(BigInteger.TEN)) > 0) {
        score += AMOUNT_OVER_10X_BP;
      } else if (scaled.compareTo(sum.multiply(BigInteger.valueOf(5))) > 0) {
        score += AMOUNT_OVER_5X_BP;
      } else if (scaled.compareTo(sum.multiply(BigInteger.TWO)) > 0) {
        score += AMOUNT_OVER_2X_BP;
      }
    }
    if (approvalsLastHour >= 10) {
      score += VELOCITY_10_BP;
    } else if (approvalsLastHour >= 6) {
      score += VELOCITY_6_BP;
    } else if (approvalsLastHour >= 3) {
      score += VELOCITY_3_BP;
    }
    return Math.max(0, Math.min(score, 10000));
  }
}
