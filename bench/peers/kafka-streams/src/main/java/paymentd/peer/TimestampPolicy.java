package paymentd.peer;

import java.util.concurrent.ConcurrentHashMap;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.streams.processor.TimestampExtractor;

/**
 * paymentd's TimestampPolicy as a Kafka Streams TimestampExtractor. A record timestamp that is
 * negative or after 9999-12-31 is TIMESTAMP_INVALID; one more than payments.max.clock.skew.ms ahead
 * of max(partition time, wall clock) is TIMESTAMP_TOO_FAR_AHEAD (not checked before the partition's
 * first record, as in paymentd). Kafka Streams would drop a record with a negative timestamp and
 * let a far-future one move stream time, so for such a record the extractor returns the current
 * partition time (0 before the first record) and leaves its verdict for the processor, keyed by
 * topic/partition/offset. Only rejected records are noted, so the map stays tiny.
 */
final class TimestampPolicy implements TimestampExtractor {
  static final long MAX_VALID_TIMESTAMP_MS = 253402300799999L;

  enum Verdict {
    VALID,
    INVALID,
    TOO_FAR_AHEAD
  }

  record Rejected(Verdict verdict, long rawTimestamp) {}

  private static final ConcurrentHashMap<String, Rejected> REJECTED = new ConcurrentHashMap<>();

  private final long maxLeadMs;

  TimestampPolicy(long maxLeadMs) {
    this.maxLeadMs = maxLeadMs;
  }

  static String key(String topic, int partition, long offset) {
    return topic + '\0' + partition + '\0' + offset;
  }

  /** The verdict of a rejected record (removing it), or null when it was valid. */
  static Rejected take(String topic, int partition, long offset) {
    if (REJECTED.isEmpty()) return null;
    return REJECTED.remove(key(topic, partition, offset));
  }

  @Override
  public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
    long t = record.timestamp();
    Verdict verdict = Verdict.VALID;
    if (t < 0 || t > MAX_VALID_TIMESTAMP_MS) {
      verdict = Verdict.INVALID;
    } else if (partitionTime >= 0) {
      long reference = Math.max(partitionTime, System.currentTimeMillis());
      if (t - reference > maxLeadMs) verdict = Verdict.TOO_FAR_AHEAD;
    }
    if (verdict == Verdict.VALID) return t;
    REJECTED.put(key(record.topic(), record.partition(), record.offset()), new Rejected(verdict, t));
    return Math.max(partitionTime, 0);
  }
}
