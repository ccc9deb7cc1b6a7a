package paymentd.peer;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * One customer's record in the "customers" store: token bucket, lifetime stats, the most recent
 * merchants and currencies, and the approved PAYMENTs of the last 24 h (a list inside the record,
 * where paymentd keeps one store entry per approval plus running sums: same decisions, simpler
 * layout; see README.md).
 */
final class CustomerState {
  static final int KNOWN_MERCHANTS_LIMIT = 50;
  static final int KNOWN_CURRENCIES_LIMIT = 20;
  private static final int VERSION = 1;

  static final class CurrencyStats {
    final String currency;
    long count;
    long sum;

    CurrencyStats(String currency, long count, long sum) {
      this.currency = currency;
      this.count = count;
      this.sum = sum;
    }
  }

  record Approval(long atMs, String currency, long amount) {}

  long bucketMilliTokens;
  long bucketLastRefillMs;
  long bucketRemainder;
  /** The largest customer time of the customer's approved payments. */
  long lastEventMs;
  long approvedPayments;
  /** Customer time of the record's last write (paymentd's window_end_ms): keep-alive rewrites. */
  long lastWriteCustomerMs;
  final List<CurrencyStats> stats = new ArrayList<>();
  final List<String> knownMerchants = new ArrayList<>();
  final List<String> knownCurrencies = new ArrayList<>();
  /** Ascending at_ms; exactly the approvals with at_ms > lastEventMs - 24 h (older ones pruned). */
  final List<Approval> approvals = new ArrayList<>();

  CurrencyStats stats(String currency) {
    for (CurrencyStats s : stats) if (s.currency.equals(currency)) return s;
    return null;
  }

  TokenBucket.Value bucket() {
    return new TokenBucket.Value(bucketMilliTokens, bucketLastRefillMs, bucketRemainder);
  }

  void setBucket(TokenBucket.Value v) {
    bucketMilliTokens = v.milliTokens();
    bucketLastRefillMs = v.lastRefillMs();
    bucketRemainder = v.remainder();
  }

  /** Approved amount in `currency` with at_ms > now - 24 h (saturating). */
  long approvedInWindow(String currency, long nowMs) {
    long cutoff = nowMs - PeerConfig.DAY_MS;
    long sum = 0;
    for (int i = approvals.size() - 1; i >= 0; --i) {
      Approval a = approvals.get(i);
      if (a.atMs <= cutoff) break;
      if (a.currency.equals(currency)) {
        sum = sum > Long.MAX_VALUE - a.amount ? Long.MAX_VALUE : sum + a.amount;
      }
    }
    return sum;
  }

  /** Approvals with at_ms in (now - 1 h, now]. */
  long approvalsLastHour(long nowMs) {
    long cutoff = nowMs - 60L * 60 * 1000;
    long n = 0;
    for (int i = approvals.size() - 1; i >= 0; --i) {
      Approval a = approvals.get(i);
      if (a.atMs <= cutoff) break;
      if (a.atMs <= nowMs) ++n;
    }
    return n;
  }

  private static void moveToFront(List<String> list, String value, int limit) {
    int i = list.indexOf(value);
    if (i >= 0) list.remove(i);
    list.add(0, value);
    while (list.size() > limit) list.remove(list.size() - 1);
  }

  /** Records an approved PAYMENT at customer time now. */
  void approve(String merchant, String currency, long amount, long nowMs) {
    approvals.add(new Approval(nowMs, currency, amount));
    long cutoff = nowMs - PeerConfig.DAY_MS;
    int drop = 0;
    while (drop < approvals.size() && approvals.get(drop).atMs <= cutoff) ++drop;
    if (drop > 0) approvals.subList(0, drop).clear();
    CurrencyStats s = stats(currency);
    if (s == null) {
      s = new CurrencyStats(currency, 0, 0);
      stats.add(s);
    }
    s.count += 1;
    s.sum = s.sum > Long.MAX_VALUE - amount ? Long.MAX_VALUE : s.sum + amount;
    moveToFront(knownMerchants, merchant, KNOWN_MERCHANTS_LIMIT);
    moveToFront(knownCurrencies, currency, KNOWN_CURRENCIES_LIMIT);
    approvedPayments += 1;
    lastEventMs = Math.max(lastEventMs, nowMs);
  }

  // ------------------------------------------------------------------ encoding

  private static void writeStr(DataOutputStream out, String s) throws IOException {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    out.writeInt(b.length);
    out.write(b);
  }

  private static String readStr(DataInputStream in) throws IOException {
    byte[] b = new byte[in.readInt()];
    in.readFully(b);
    return new String(b, StandardCharsets.UTF_8);
  }

  byte[] serialize() {
    try {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream(128 + approvals.size() * 24);
      DataOutputStream out = new DataOutputStream(bytes);
      out.writeByte(VERSION);
      out.writeLong(bucketMilliTokens);
      out.writeLong(bucketLastRefillMs);
      out.writeLong(bucketRemainder);
      out.writeLong(lastEventMs);
      out.writeLong(approvedPayments);
      out.writeLong(lastWriteCustomerMs);
      out.writeInt(stats.size());
      for (CurrencyStats s : stats) {
        writeStr(out, s.currency);
        out.writeLong(s.count);
        out.writeLong(s.sum);
      }
      out.writeInt(knownMerchants.size());
      for (String m : knownMerchants) writeStr(out, m);
      out.writeInt(knownCurrencies.size());
      for (String c : knownCurrencies) writeStr(out, c);
      out.writeInt(approvals.size());
      for (Approval a : approvals) {
        out.writeLong(a.atMs);
        writeStr(out, a.currency);
        out.writeLong(a.amount);
      }
      out.flush();
      return bytes.toByteArray();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static CustomerState parse(byte[] value) {
    try {
      DataInputStream in = new DataInputStream(new ByteArrayInputStream(value));
      int version = in.readByte();
      if (version != VERSION) {
        throw new IllegalStateException("customers store: unknown value version " + version);
      }
      CustomerState s = new CustomerState();
      s.bucketMilliTokens = in.readLong();
      s.bucketLastRefillMs = in.readLong();
      s.bucketRemainder = in.readLong();
      s.lastEventMs = in.readLong();
      s.approvedPayments = in.readLong();
      s.lastWriteCustomerMs = in.readLong();
      for (int n = in.readInt(); n > 0; --n) {
        s.stats.add(new CurrencyStats(readStr(in), in.readLong(), in.readLong()));
      }
      for (int n = in.readInt(); n > 0; --n) s.knownMerchants.add(readStr(in));
      for (int n = in.readInt(); n > 0; --n) s.knownCurrencies.add(readStr(in).intern());
      for (int n = in.readInt(); n > 0; --n) {
        s.approvals.add(new Approval(in.readLong(), readStr(in).intern(), in.readLong()));
      }
      return s;
    } catch (IOException e) {
      throw new IllegalStateException("customers store: corrupt value", e);
    }
  }
}
