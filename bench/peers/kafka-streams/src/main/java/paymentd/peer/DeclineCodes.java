package paymentd.peer;

/** paymentd's stable decline codes (src/payments/include/payments/decline_codes.h). */
final class DeclineCodes {
  private DeclineCodes() {}

  static final String PAN_NOT_ALLOWED = "PAN_NOT_ALLOWED";
  static final String MISSING_FIELD = "MISSING_FIELD";
  static final String INVALID_IDENTIFIER = "INVALID_IDENTIFIER";
  static final String KEY_MISMATCH = "KEY_MISMATCH";
  static final String IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED";
  static final String TIMESTAMP_INVALID = "TIMESTAMP_INVALID";
  static final String TIMESTAMP_TOO_FAR_AHEAD = "TIMESTAMP_TOO_FAR_AHEAD";
  static final String FIELD_TOO_LONG = "FIELD_TOO_LONG";
  static final String INVALID_KIND = "INVALID_KIND";
  static final String REFUND_OF_REQUIRED = "REFUND_OF_REQUIRED";
  static final String INVALID_AMOUNT = "INVALID_AMOUNT";
  static final String AMOUNT_TOO_LARGE = "AMOUNT_TOO_LARGE";
  static final String UNKNOWN_CURRENCY = "UNKNOWN_CURRENCY";
  static final String UNKNOWN_PAYMENT = "UNKNOWN_PAYMENT";
  static final String PAYMENT_NOT_APPROVED = "PAYMENT_NOT_APPROVED";
  static final String REFUND_CURRENCY_MISMATCH = "REFUND_CURRENCY_MISMATCH";
  static final String REFUND_EXCEEDS_PAYMENT = "REFUND_EXCEEDS_PAYMENT";
  static final String RATE_LIMITED = "RATE_LIMITED";
  static final String AMOUNT_LIMIT_EXCEEDED = "AMOUNT_LIMIT_EXCEEDED";
  static final String FRAUD_SUSPECTED = "FRAUD_SUSPECTED";
}
