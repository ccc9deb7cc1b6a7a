package paymentd.peer;

import com.google.protobuf.ByteString;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import payments.v1.Payments.PaymentKind;
import payments.v1.Payments.PaymentRequest;

/**
 * The stateless checks of paymentd (src/payments/src/validation.cc, currencies.cc), same order, same
 * codes. Lengths are in UTF-8 bytes, as in paymentd.
 */
final class Validation {
  private Validation() {}

  /** A decline: its stable code and a human-readable message. */
  record Decline(String code, String message) {}

  // The active ISO 4217 alphabetic codes, exactly paymentd's list (sorted).
  private static final String[] ACTIVE_CURRENCIES = {
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP",
    "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP",
    "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS",
    "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW",
    "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD",
    "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN",
    "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR",
    "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL",
    "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY",
    "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES",
    "VND", "VUV", "WST", "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG", "XDR",
    "XOF", "XPD", "XPF", "XPT", "XSU", "XUA", "YER", "ZAR", "ZMW", "ZWG", "ZWL",
  };

  static boolean isActiveCurrency(String code) {
    return Arrays.binarySearch(ACTIVE_CURRENCIES, code) >= 0;
  }

  /** U+0000-U+001F, U+007F, U+0080-U+009F, on UTF-8 bytes like paymentd. */
  static boolean hasControlCharacter(ByteString text) {
    int n = text.size();
    for (int i = 0; i < n; ++i) {
      int c = text.byteAt(i) & 0xff;
      if (c < 0x20 || c == 0x7F) return true;
      if (c == 0xC2 && i + 1 < n) {
        int next = text.byteAt(i + 1) & 0xff;
        if (next >= 0x80 && next <= 0x9F) return true;
      }
    }
    return false;
  }

  /** Metadata entries sorted by key bytes (unsigned), like std::sort of string_views. */
  static List<Map.Entry<ByteString, ByteString>> sortedMetadata(PaymentRequest r) {
    List<Map.Entry<ByteString, ByteString>> out = new ArrayList<>(r.getMetadataCount());
    for (Map.Entry<String, String> e : r.getMetadataMap().entrySet()) {
      out.add(Map.entry(ByteString.copyFromUtf8(e.getKey()), ByteString.copyFromUtf8(e.getValue())));
    }
    out.sort(
        (a, b) -> {
          int c = ByteString.unsignedLexicographicalComparator().compare(a.getKey(), b.getKey());
          return c != 0
              ? c
              : ByteString.unsignedLexicographicalComparator().compare(a.getValue(), b.getValue());
        });
    return out;
  }

  private static String truncateUtf8(ByteString s, int max) {
    if (s.size() <= max) return s.toStringUtf8();
    int n = max;
    while (n > 0 && (s.byteAt(n) & 0xC0) == 0x80) --n;
    return s.substring(0, n).toStringUtf8() + "...";
  }

  /** Where a PAN was found (record key, fields in field order, sorted metadata), or null. */
  static String findPanField(PaymentRequest r, byte[] recordKey) {
    if (Pan.containsPan(recordKey)) return "record key";
    String[] names = {
      "idempotency_key", "customer_id", "merchant_id", "currency", "refund_of", "payment_method_token"
    };
    ByteString[] values = {
      r.getIdempotencyKeyBytes(), r.getCustomerIdBytes(), r.getMerchantIdBytes(),
      r.getCurrencyBytes(), r.getRefundOfBytes(), r.getPaymentMethodTokenBytes()
    };
    for (int i = 0; i < names.length; ++i) {
      if (values[i].size() >= 13 && Pan.containsPan(values[i].toByteArray())) return names[i];
    }
    if (r.getMetadataCount() == 0) return null;
    for (Map.Entry<ByteString, ByteString> e : sortedMetadata(r)) {
      if (Pan.containsPan(e.getKey().toByteArray())) return "metadata key";
      if (Pan.containsPan(e.getValue().toByteArray())) {
        return "metadata value of '" + truncateUtf8(e.getKey(), 64) + "'";
      }
    }
    return null;
  }

  /** ValidateIdentity: MISSING_FIELD / INVALID_IDENTIFIER of the ids, KEY_MISMATCH. */
  static Decline validateIdentity(PaymentRequest r, String recordKey) {
    if (r.getIdempotencyKey().isEmpty()) {
      return new Decline(DeclineCodes.MISSING_FIELD, "idempotency_key is required");
    }
    if (r.getCustomerId().isEmpty()) {
      return new Decline(DeclineCodes.MISSING_FIELD, "customer_id is required");
    }
    if (hasControlCharacter(r.getCustomerIdBytes())) {
      return new Decline(DeclineCodes.INVALID_IDENTIFIER, "customer_id contains a control character");
    }
    if (hasControlCharacter(r.getIdempotencyKeyBytes())) {
      return new Decline(
          DeclineCodes.INVALID_IDENTIFIER, "idempotency_key contains a control character");
    }
    if (!recordKey.equals(r.getCustomerId())) {
      return new Decline(
          DeclineCodes.KEY_MISMATCH,
          "the record key must equal customer_id (requests are partitioned by customer)");
    }
    return null;
  }

  /** ValidateFields: checks 5-12, after the idempotency lookup. */
  static Decline validateFields(PaymentRequest r, PeerConfig c) {
    int limit = c.stringMaxLength;
    String[] names = {
      "idempotency_key", "customer_id", "merchant_id", "currency", "refund_of", "payment_method_token"
    };
    ByteString[] values = {
      r.getIdempotencyKeyBytes(), r.getCustomerIdBytes(), r.getMerchantIdBytes(),
      r.getCurrencyBytes(), r.getRefundOfBytes(), r.getPaymentMethodTokenBytes()
    };
    for (int i = 0; i < names.length; ++i) {
      if (values[i].size() > limit) {
        return new Decline(
            DeclineCodes.FIELD_TOO_LONG,
            names[i] + " is " + values[i].size() + " bytes long; the limit is " + limit);
      }
    }
    if (r.getMetadataCount() > c.metadataMaxEntries) {
      return new Decline(
          DeclineCodes.FIELD_TOO_LONG,
          "metadata has " + r.getMetadataCount() + " entries; the limit is " + c.metadataMaxEntries);
    }
    if (r.getMetadataCount() > 0) {
      for (Map.Entry<ByteString, ByteString> e : sortedMetadata(r)) {
        if (e.getKey().size() > limit) {
          return new Decline(
              DeclineCodes.FIELD_TOO_LONG,
              "a metadata key is " + e.getKey().size() + " bytes long; the limit is " + limit);
        }
        if (e.getValue().size() > limit) {
          return new Decline(
              DeclineCodes.FIELD_TOO_LONG,
              "metadata value of '" + e.getKey().toStringUtf8() + "' is " + e.getValue().size()
                  + " bytes long; the limit is " + limit);
        }
      }
    }
    if (hasControlCharacter(r.getMerchantIdBytes())) {
      return new Decline(DeclineCodes.INVALID_IDENTIFIER, "merchant_id contains a control character");
    }
    if (hasControlCharacter(r.getRefundOfBytes())) {
      return new Decline(DeclineCodes.INVALID_IDENTIFIER, "refund_of contains a control character");
    }
    boolean isPayment = r.getKindValue() == PaymentKind.PAYMENT_VALUE;
    boolean isRefund = r.getKindValue() == PaymentKind.REFUND_VALUE;
    if (!isPayment && !isRefund) {
      return new Decline(
          DeclineCodes.INVALID_KIND, "kind must be PAYMENT or REFUND, got " + r.getKindValue());
    }
    if (r.getMerchantId().isEmpty()) {
      return new Decline(DeclineCodes.MISSING_FIELD, "merchant_id is required");
    }
    if (r.getCurrency().isEmpty()) {
      return new Decline(DeclineCodes.MISSING_FIELD, "currency is required");
    }
    if (isPayment && r.getPaymentMethodToken().isEmpty()) {
      return new Decline(
          DeclineCodes.MISSING_FIELD, "payment_method_token is required for a PAYMENT");
    }
    if (isRefund && r.getRefundOf().isEmpty()) {
      return new Decline(
          DeclineCodes.REFUND_OF_REQUIRED,
          "a REFUND must name the refunded payment's idempotency key in refund_of");
    }
    if (r.getAmountMinor() <= 0) {
      return new Decline(
          DeclineCodes.INVALID_AMOUNT, "amount_minor must be positive, got " + r.getAmountMinor());
    }
    if (r.getAmountMinor() > c.maxAmountMinor) {
      return new Decline(
          DeclineCodes.AMOUNT_TOO_LARGE,
          "amount_minor " + r.getAmountMinor() + " is above the maximum of " + c.maxAmountMinor);
    }
    if (!isActiveCurrency(r.getCurrency())) {
      return new Decline(
          DeclineCodes.UNKNOWN_CURRENCY,
          "currency '" + r.getCurrency() + "' is not an active ISO 4217 code (upper-case, e.g. EUR)");
    }
    return null;
  }

  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
