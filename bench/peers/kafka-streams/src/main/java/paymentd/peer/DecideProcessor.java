package paymentd.peer;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.apache.kafka.streams.state.KeyValueStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import payments.v1.Payments.Decision;
import payments.v1.Payments.PaymentConfirmation;
import payments.v1.Payments.PaymentKind;
import payments.v1.Payments.PaymentRequest;

/**
 * The "decide" processor: paymentd's DecideProcessor (src/payments/src/decide_processor.cc) on the
 * Kafka Streams Processor API. One confirmation per request; checks in paymentd's order:
 * PAN -> identity -> idempotency -> timestamp -> field validation -> refund / rate limit, 24 h
 * amount, fraud -> approve.
 */
final class DecideProcessor implements Processor<String, PaymentRequest, String, PaymentConfirmation> {
  static final String IDEMPOTENCY = "idempotency";
  static final String PAYMENTS = "payments";
  static final String CUSTOMERS = "customers";
  static final String INDEX_SUFFIX = "-ttl-index";

  private static final Logger log = LoggerFactory.getLogger(DecideProcessor.class);
  private static final byte ENTRY_PAYMENT = 1;
  private static final byte ENTRY_REFUND_DECISION = 2;

  private final PeerConfig config;
  private final long purgeIntervalMs;
  private final TokenBucket bucket;
  private ProcessorContext<String, PaymentConfirmation> context;
  private TtlStore idempotency;
  private TtlStore payments;
  private TtlStore customers;

  DecideProcessor(PeerConfig config, long purgeIntervalMs) {
    this.config = config;
    this.purgeIntervalMs = purgeIntervalMs;
    this.bucket = new TokenBucket(config.rateLimitPerMinute, config.rateLimitBurst);
  }

  private TtlStore store(String name, long ttl) {
    KeyValueStore<Bytes, byte[]> data = context.getStateStore(name);
    KeyValueStore<Bytes, byte[]> index = context.getStateStore(name + INDEX_SUFFIX);
    return new TtlStore(data, index, ttl);
  }

  @Override
  public void init(ProcessorContext<String, PaymentConfirmation> context) {
    this.context = context;
    idempotency = store(IDEMPOTENCY, config.idempotencyRetentionMs);
    payments = store(PAYMENTS, config.refundWindowMs);
    customers = store(CUSTOMERS, config.customerRetentionMs);
    long n = idempotency.rebuildIndex() + payments.rebuildIndex() + customers.rebuildIndex();
    if (n > 0) log.info("task {}: TTL index rebuilt over {} stored entries", context.taskId(), n);
    // paymentd purges expired entries at every commit; here: every commit interval.
    context.schedule(Duration.ofMillis(purgeIntervalMs), PunctuationType.WALL_CLOCK_TIME, t -> purge());
  }

  private void purge() {
    long st = streamTime();
    idempotency.purge(st);
    payments.purge(st);
    customers.purge(st);
  }

  private long streamTime() {
    return Math.max(0, context.currentStreamTimeMs());
  }

  // ------------------------------------------------------------------ values

  /** IdempotencyRecord: 32-byte fingerprint, then the confirmation as first emitted. */
  private static byte[] decisionValue(byte[] fingerprint, PaymentConfirmation c) {
    byte[] conf = c.toByteArray();
    byte[] out = new byte[32 + conf.length];
    System.arraycopy(fingerprint, 0, out, 0, 32);
    System.arraycopy(conf, 0, out, 32, conf.length);
    return out;
  }

  private record StoredDecision(byte[] fingerprint, byte[] confirmation) {
    PaymentConfirmation parse() {
      try {
        return PaymentConfirmation.parseFrom(confirmation);
      } catch (InvalidProtocolBufferException e) {
        throw new IllegalStateException("corrupt stored confirmation", e);
      }
    }
  }

  private static StoredDecision parseDecision(byte[] v, int offset) {
    return new StoredDecision(
        Arrays.copyOfRange(v, offset, offset + 32), Arrays.copyOfRange(v, offset + 32, v.length));
  }

  /** An approved PAYMENT (PaymentRecord). */
  private record PaymentRecord(long amount, String currency, long refunded, long approvedAtMs) {
    byte[] serialize() {
      byte[] cur = currency.getBytes(StandardCharsets.UTF_8);
      ByteBuffer b = ByteBuffer.allocate(1 + 24 + 4 + cur.length);
      b.put(ENTRY_PAYMENT).putLong(amount).putLong(refunded).putLong(approvedAtMs);
      b.putInt(cur.length).put(cur);
      return b.array();
    }

    static PaymentRecord parse(byte[] v) {
      ByteBuffer b = ByteBuffer.wrap(v, 1, v.length - 1);
      long amount = b.getLong();
      long refunded = b.getLong();
      long at = b.getLong();
      byte[] cur = new byte[b.getInt()];
      b.get(cur);
      return new PaymentRecord(amount, new String(cur, StandardCharsets.UTF_8), refunded, at);
    }
  }

  private static byte[] refundDecisionEntry(byte[] fingerprint, PaymentConfirmation c) {
    byte[] d = decisionValue(fingerprint, c);
    byte[] out = new byte[1 + d.length];
    out[0] = ENTRY_REFUND_DECISION;
    System.arraycopy(d, 0, out, 1, d.length);
    return out;
  }

  // ------------------------------------------------------------------ processing

  private static PaymentConfirmation.Builder echo(PaymentRequest r) {
    return PaymentConfirmation.newBuilder()
        .setIdempotencyKey(r.getIdempotencyKey())
        .setCustomerId(r.getCustomerId())
        .setMerchantId(r.getMerchantId())
        .setKindValue(r.getKindValue())
        .setAmountMinor(r.getAmountMinor())
        .setCurrency(r.getCurrency())
        .setRefundOf(r.getRefundOf());
  }

  private static void decline(PaymentConfirmation.Builder c, String code, String message) {
    c.setDecision(Decision.DECLINED).setDeclineCode(code).setDeclineMessage(message);
  }

  private static void approve(PaymentConfirmation.Builder c) {
    c.setDecision(Decision.APPROVED).clearDeclineCode().clearDeclineMessage();
  }

  private static String redact(String s) {
    return new String(Pan.redactPans(s.getBytes(StandardCharsets.UTF_8)), StandardCharsets.UTF_8);
  }

  private void emit(String key, PaymentConfirmation c, long timestamp) {
    context.forward(new Record<>(key, c, timestamp));
  }

  @Override
  public void process(Record<String, PaymentRequest> record) {
    final PaymentRequest request = record.value();
    final String recordKey = record.key() == null ? "" : record.key();
    final long streamTime = streamTime();
    TimestampPolicy.Verdict verdict = TimestampPolicy.Verdict.VALID;
    long rawTimestamp = record.timestamp();
    PaymentConfirmation.Builder c = echo(request);
    RecordMetadata md = context.recordMetadata().orElse(null);
    if (md != null) {
      TimestampPolicy.Rejected rejected = TimestampPolicy.take(md.topic(), md.partition(), md.offset());
      if (rejected != null) {
        verdict = rejected.verdict();
        rawTimestamp = rejected.rawTimestamp();
      }
      c.setSourceTopic(md.topic()).setSourcePartition(md.partition()).setSourceOffset(md.offset());
    }
    // A rejected timestamp is answered at the stream time (the extractor returned it).
    final long at = verdict == TimestampPolicy.Verdict.VALID ? record.timestamp() : streamTime;
    c.setDecidedAtMs(at);

    // 1. PAN: redact everything echoed, store nothing.
    String panField = Validation.findPanField(request, recordKey.getBytes(StandardCharsets.UTF_8));
    if (panField != null) {
      c.setIdempotencyKey(redact(request.getIdempotencyKey()))
          .setCustomerId(redact(request.getCustomerId()))
          .setMerchantId(redact(request.getMerchantId()))
          .setCurrency(redact(request.getCurrency()))
          .setRefundOf(redact(request.getRefundOf()));
      c.setPaymentId(
          Fingerprint.paymentIdFor(c.getCustomerIdBytes(), c.getIdempotencyKeyBytes()));
      decline(
          c,
          DeclineCodes.PAN_NOT_ALLOWED,
          "a card number was found in the " + panField + "; send a payment_method_token instead");
      emit(redact(recordKey), c.build(), at);
      return;
    }
    c.setPaymentId(
        Fingerprint.paymentIdFor(request.getCustomerIdBytes(), request.getIdempotencyKeyBytes()));

    // 2. Identity.
    Validation.Decline identity = Validation.validateIdentity(request, recordKey);
    if (identity != null) {
      decline(c, identity.code(), identity.message());
      emit(recordKey, c.build(), at);
      return;
    }

    // 3. Idempotency: the idempotency store, then (a REFUND's decision) the payments store.
    final byte[] key =
        Fingerprint.decisionKey(request.getCustomerIdBytes(), request.getIdempotencyKeyBytes());
    final byte[] fingerprint = Fingerprint.requestFingerprint(request);
    StoredDecision previous = null;
    byte[] stored = idempotency.get(key, streamTime);
    byte[] sameKeyEntry = null;
    if (stored != null) {
      previous = parseDecision(stored, 0);
    } else {
      sameKeyEntry = payments.get(key, streamTime);
      if (sameKeyEntry != null && sameKeyEntry[0] == ENTRY_REFUND_DECISION) {
        previous = parseDecision(sameKeyEntry, 1);
      }
    }
    if (previous != null) {
      if (Arrays.equals(previous.fingerprint(), fingerprint)) {
        PaymentConfirmation.Builder replay = previous.parse().toBuilder().setReplay(true);
        replay
            .setSourceTopic(c.getSourceTopic())
            .setSourcePartition(c.getSourcePartition())
            .setSourceOffset(c.getSourceOffset());
        emit(recordKey, replay.build(), at);
        return;
      }
      decline(
          c,
          DeclineCodes.IDEMPOTENCY_KEY_REUSED,
          "idempotency_key was already used for a request with different parameters");
      emit(recordKey, c.build(), at);
      return;
    }
    if (sameKeyEntry != null
        && sameKeyEntry[0] == ENTRY_PAYMENT
        && refundable(PaymentRecord.parse(sameKeyEntry), streamTime)) {
      decline(
          c,
          DeclineCodes.IDEMPOTENCY_KEY_REUSED,
          "idempotency_key names an approved payment that is still refundable");
      emit(recordKey, c.build(), at);
      return;
    }

    // 4. Timestamp.
    if (verdict == TimestampPolicy.Verdict.INVALID) {
      decline(
          c,
          DeclineCodes.TIMESTAMP_INVALID,
          "the record timestamp " + rawTimestamp
              + " is negative or after 9999-12-31; not decided, nothing stored");
      emit(recordKey, c.build(), at);
      return;
    }
    if (verdict == TimestampPolicy.Verdict.TOO_FAR_AHEAD) {
      decline(
          c,
          DeclineCodes.TIMESTAMP_TOO_FAR_AHEAD,
          "the record timestamp " + rawTimestamp + " is more than " + config.maxClockSkewMs
              + " ms ahead of stream time " + at + " and of the clock; not decided, nothing stored");
      emit(recordKey, c.build(), at);
      return;
    }

    // 5. Field validation: stored (first decision wins) unless the ids are too long.
    Validation.Decline invalid = Validation.validateFields(request, config);
    if (invalid != null) {
      decline(c, invalid.code(), invalid.message());
      PaymentConfirmation out = c.build();
      if (request.getCustomerIdBytes().size() <= config.stringMaxLength
          && request.getIdempotencyKeyBytes().size() <= config.stringMaxLength) {
        idempotency.put(key, decisionValue(fingerprint, out), streamTime);
      }
      emit(recordKey, out, at);
      return;
    }

    // 6. Business rules.
    if (request.getKindValue() == PaymentKind.REFUND_VALUE) {
      decideRefund(request, c, streamTime);
      PaymentConfirmation out = c.build();
      payments.put(key, refundDecisionEntry(fingerprint, out), streamTime);
      emit(recordKey, out, at);
    } else {
      decidePayment(request, key, at, c, streamTime);
      PaymentConfirmation out = c.build();
      if (!DeclineCodes.RATE_LIMITED.equals(out.getDeclineCode())) {
        idempotency.put(key, decisionValue(fingerprint, out), streamTime);
      }
      emit(recordKey, out, at);
    }
  }

  private boolean refundable(PaymentRecord p, long streamTime) {
    return streamTime - p.approvedAtMs() < config.refundWindowMs;
  }

  private void decidePayment(
      PaymentRequest r, byte[] key, long recordMs, PaymentConfirmation.Builder c, long streamTime) {
    final byte[] customerKey = r.getCustomerIdBytes().toByteArray();
    final long earliest = streamTime - (config.customerRetentionMs - PeerConfig.DAY_MS);
    byte[] raw = customers.get(customerKey, streamTime);
    final boolean known = raw != null;
    final CustomerState state = known ? CustomerState.parse(raw) : new CustomerState();
    // Customer time: never goes back, and at least stream time - (retention - 24 h).
    final long now = Math.max(Math.max(state.lastEventMs, recordMs), earliest);
    final TokenBucket.Value tokens = known ? bucket.refill(state.bucket(), now) : bucket.full(now);
    if (!known) state.lastWriteCustomerMs = now;
    // Keep-alive: rewrite the record at least once per 24 h of customer time (TTL restart).
    final boolean keepAlive = known && now - state.lastWriteCustomerMs >= PeerConfig.DAY_MS;

    final long lastHour = known ? state.approvalsLastHour(now) : 0;
    final int score = FraudScorer.scoreBasisPoints(r, known ? state : null, lastHour);
    c.setFraudScore(score / 10000.0);

    String declineCode = null;
    if (!bucket.hasToken(tokens)) {
      decline(
          c,
          DeclineCodes.RATE_LIMITED,
          "more than " + config.rateLimitPerMinute + " payments per minute (burst "
              + config.rateLimitBurst + ")");
      declineCode = DeclineCodes.RATE_LIMITED;
    } else {
      long approved = known ? state.approvedInWindow(r.getCurrency(), now) : 0;
      if (approved > config.dailyAmountLimitMinor - r.getAmountMinor()) {
        decline(
            c,
            DeclineCodes.AMOUNT_LIMIT_EXCEEDED,
            approved + " " + r.getCurrency()
                + " minor units already approved in the last 24 h; the limit is "
                + config.dailyAmountLimitMinor);
        declineCode = DeclineCodes.AMOUNT_LIMIT_EXCEEDED;
      } else if (score > config.fraudThresholdBp) {
        decline(
            c,
            DeclineCodes.FRAUD_SUSPECTED,
            "fraud score " + score + " bp is above the threshold of " + config.fraudThresholdBp
                + " bp");
        declineCode = DeclineCodes.FRAUD_SUSPECTED;
      }
    }
    if (declineCode != null) {
      if (keepAlive) {
        state.lastWriteCustomerMs = now;
        customers.put(customerKey, state.serialize(), streamTime);
      }
      return;
    }
    approve(c);
    state.setBucket(bucket.take(tokens));
    state.approve(r.getMerchantId(), r.getCurrency().intern(), r.getAmountMinor(), now);
    state.lastWriteCustomerMs = Math.max(state.lastWriteCustomerMs, now);
    customers.put(customerKey, state.serialize(), streamTime);
    payments.put(
        key, new PaymentRecord(r.getAmountMinor(), r.getCurrency(), 0, recordMs).serialize(),
        streamTime);
  }

  private void decideRefund(PaymentRequest r, PaymentConfirmation.Builder c, long streamTime) {
    byte[] originalKey =
        Fingerprint.decisionKey(r.getCustomerIdBytes(), ByteString.copyFromUtf8(r.getRefundOf()));
    byte[] entry = payments.get(originalKey, streamTime);
    if (entry == null || entry[0] != ENTRY_PAYMENT) {
      byte[] decided = idempotency.get(originalKey, streamTime);
      if (decided != null) {
        PaymentConfirmation d = parseDecision(decided, 0).parse();
        if (d.getKind() == PaymentKind.PAYMENT && d.getDecision() == Decision.DECLINED) {
          decline(c, DeclineCodes.PAYMENT_NOT_APPROVED, "the payment named by refund_of was declined");
          return;
        }
      }
      decline(
          c,
          DeclineCodes.UNKNOWN_PAYMENT,
          "no refundable payment of this customer has the idempotency key named by refund_of");
      return;
    }
    PaymentRecord p = PaymentRecord.parse(entry);
    if (!refundable(p, streamTime)) {
      decline(
          c, DeclineCodes.UNKNOWN_PAYMENT, "the payment named by refund_of is older than the refund window");
      return;
    }
    if (!p.currency().equals(r.getCurrency())) {
      decline(
          c,
          DeclineCodes.REFUND_CURRENCY_MISMATCH,
          "the payment was made in " + p.currency() + ", not " + r.getCurrency());
      return;
    }
    long refundable = p.amount() - p.refunded();
    if (r.getAmountMinor() > refundable) {
      decline(
          c,
          DeclineCodes.REFUND_EXCEEDS_PAYMENT,
          refundable + " minor units of the payment are left to refund");
      return;
    }
    approve(c);
    payments.put(
        originalKey,
        new PaymentRecord(p.amount(), p.currency(), p.refunded() + r.getAmountMinor(), p.approvedAtMs())
            .serialize(),
        streamTime);
  }
}
