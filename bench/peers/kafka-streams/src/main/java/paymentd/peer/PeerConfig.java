package paymentd.peer;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;

/**
 * The payments.* settings, same keys, defaults and ranges as paymentd's PaymentsConfig
 * (src/payments/src/payments_config.cc). Every other key is a Kafka Streams / client property,
 * except the peer's own peer.* keys.
 */
final class PeerConfig {
  static final long DAY_MS = 24L * 60 * 60 * 1000;
  private static final long MAX_DURATION_MS = Long.MAX_VALUE / 1000;

  /** key -> [default, description] */
  static final Map<String, String[]> KEYS = new LinkedHashMap<>();

  static {
    KEYS.put("payments.requests.topic", new String[] {"payments.requests", "requests topic"});
    KEYS.put(
        "payments.confirmations.topic", new String[] {"payments.confirmations", "confirmations topic"});
    KEYS.put("payments.max.amount.minor", new String[] {"100000000", "largest amount_minor"});
    KEYS.put("payments.idempotency.retention.ms", new String[] {"86400000", "decision retention"});
    KEYS.put("payments.rate.limit.per.minute", new String[] {"60", "token refill per minute"});
    KEYS.put("payments.rate.limit.burst", new String[] {"20", "token bucket capacity"});
    KEYS.put("payments.daily.amount.limit.minor", new String[] {"5000000", "rolling 24 h limit"});
    KEYS.put("payments.fraud.threshold", new String[] {"0.95", "fraud score threshold"});
    KEYS.put("payments.refund.window.ms", new String[] {"2592000000", "refund window"});
    KEYS.put("payments.string.max.length", new String[] {"128", "longest string field (bytes)"});
    KEYS.put("payments.metadata.max.entries", new String[] {"20", "most metadata entries"});
    KEYS.put("payments.max.clock.skew.ms", new String[] {"3600000", "timestamp lead bound"});
    KEYS.put("payments.customer.retention.ms", new String[] {"2592000000", "customer state TTL"});
  }

  final String requestsTopic;
  final String confirmationsTopic;
  final long maxAmountMinor;
  final long idempotencyRetentionMs;
  final long rateLimitPerMinute;
  final long rateLimitBurst;
  final long dailyAmountLimitMinor;
  final int fraudThresholdBp;
  final long refundWindowMs;
  final int stringMaxLength;
  final int metadataMaxEntries;
  final long maxClockSkewMs;
  final long customerRetentionMs;

  PeerConfig(Properties p) {
    for (String k : p.stringPropertyNames()) {
      if (k.startsWith("payments.") && !KEYS.containsKey(k)) {
        throw new IllegalArgumentException("unknown configuration key " + k);
      }
    }
    requestsTopic = str(p, "payments.requests.topic");
    confirmationsTopic = str(p, "payments.confirmations.topic");
    maxAmountMinor = num(p, "payments.max.amount.minor", 1, Long.MAX_VALUE);
    idempotencyRetentionMs = num(p, "payments.idempotency.retention.ms", 1, MAX_DURATION_MS);
    rateLimitPerMinute = num(p, "payments.rate.limit.per.minute", 1, 1_000_000);
    rateLimitBurst = num(p, "payments.rate.limit.burst", 1, 1_000_000);
    dailyAmountLimitMinor = num(p, "payments.daily.amount.limit.minor", 1, Long.MAX_VALUE);
    fraudThresholdBp = basisPoints(p, "payments.fraud.threshold");
    refundWindowMs = num(p, "payments.refund.window.ms", 1, MAX_DURATION_MS);
    stringMaxLength = (int) num(p, "payments.string.max.length", 1, 1 << 20);
    metadataMaxEntries = (int) num(p, "payments.metadata.max.entries", 0, 10_000);
    maxClockSkewMs = num(p, "payments.max.clock.skew.ms", 1, MAX_DURATION_MS);
    customerRetentionMs = num(p, "payments.customer.retention.ms", 2 * DAY_MS, MAX_DURATION_MS);
  }

  private static String raw(Properties p, String key) {
    return p.getProperty(key, KEYS.get(key)[0]).trim();
  }

  private static String str(Properties p, String key) {
    String v = raw(p, key);
    if (v.isEmpty()) throw new IllegalArgumentException(key + " is empty");
    return v;
  }

  private static long num(Properties p, String key, long min, long max) {
    String v = raw(p, key);
    long n;
    try {
      n = Long.parseLong(v);
    } catch (NumberFormatException e) {
      n = Long.MIN_VALUE;
    }
    if (n < min || n > max) {
      throw new IllegalArgumentException(
          "invalid value '" + v + "' for " + key + ": expected an integer in [" + min + ", " + max
              + "]");
    }
    return n;
  }

  /** A decimal in [0, 1] with at most 4 decimals, exactly (0.95 = 9500 bp), like paymentd. */
  static int basisPoints(Properties p, String key) {
    String v = raw(p, key);
    if (!v.matches("[0-9]*(\\.[0-9]+)?") || v.isEmpty() || v.startsWith(".") && v.length() == 1) {
      throw new IllegalArgumentException("invalid value '" + v + "' for " + key);
    }
    java.math.BigDecimal d = new java.math.BigDecimal(v.startsWith(".") ? "0" + v : v);
    java.math.BigDecimal bp = d.multiply(java.math.BigDecimal.valueOf(10000));
    if (bp.stripTrailingZeros().scale() > 0 || bp.compareTo(java.math.BigDecimal.valueOf(10000)) > 0) {
      throw new IllegalArgumentException(
          "invalid value '" + v + "' for " + key + ": expected a decimal in [0, 1] with at most 4"
              + " decimals");
    }
    return bp.intValueExact();
  }
}
