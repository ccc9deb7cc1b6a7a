package paymentd.peer;

import com.google.protobuf.ByteString;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.List;
import java.util.Map;
import payments.v1.Payments.PaymentRequest;

/**
 * RequestFingerprint, DecisionKey and PaymentIdFor, byte for byte as paymentd computes them
 * (src/payments/src/fingerprint.cc), so the peer's payment_ids equal paymentd's.
 */
final class Fingerprint {
  private Fingerprint() {}

  private static final byte[] VERSION = "payments.fingerprint.v1".getBytes(StandardCharsets.UTF_8);

  private static final ThreadLocal<MessageDigest> SHA256 =
      ThreadLocal.withInitial(
          () -> {
            try {
              return MessageDigest.getInstance("SHA-256");
            } catch (NoSuchAlgorithmException e) {
              throw new IllegalStateException(e);
            }
          });

  static byte[] sha256(byte[] data) {
    MessageDigest md = SHA256.get();
    md.reset();
    return md.digest(data);
  }

  private static void u64(ByteArrayOutputStream out, long v) {
    for (int shift = 56; shift >= 0; shift -= 8) out.write((int) (v >>> shift) & 0xff);
  }

  private static void u32(ByteArrayOutputStream out, int v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.write((v >>> shift) & 0xff);
  }

  private static void str(ByteArrayOutputStream out, ByteString s) {
    u64(out, s.size());
    out.writeBytes(s.toByteArray());
  }

  /** SHA-256 of the canonical encoding (created_at_ms excluded), 32 bytes. */
  static byte[] requestFingerprint(PaymentRequest r) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(128);
    u64(out, VERSION.length);
    out.writeBytes(VERSION);
    str(out, r.getMerchantIdBytes());
    u64(out, (long) r.getKindValue());
    u64(out, r.getAmountMinor());
    str(out, r.getCurrencyBytes());
    str(out, r.getRefundOfBytes());
    str(out, r.getPaymentMethodTokenBytes());
    List<Map.Entry<ByteString, ByteString>> md = Validation.sortedMetadata(r);
    u64(out, md.size());
    for (Map.Entry<ByteString, ByteString> e : md) {
      str(out, e.getKey());
      str(out, e.getValue());
    }
    return sha256(out.toByteArray());
  }

  /** 0xFE, u32 len, customer_id, u32 len, idempotency_key. */
  static byte[] decisionKey(ByteString customerId, ByteString idempotencyKey) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(9 + customerId.size() + idempotencyKey.size());
    out.write(0xFE);
    u32(out, customerId.size());
    out.writeBytes(customerId.toByteArray());
    u32(out, idempotencyKey.size());
    out.writeBytes(idempotencyKey.toByteArray());
    return out.toByteArray();
  }

  /** "pay_" + the first 96 bits of SHA-256(DecisionKey) as letters a-p. */
  static String paymentIdFor(ByteString customerId, ByteString idempotencyKey) {
    byte[] d = sha256(decisionKey(customerId, idempotencyKey));
    StringBuilder sb = new StringBuilder(28).append("pay_");
    for (int i = 0; i < 12; ++i) {
      sb.append((char) ('a' + ((d[i] >> 4) & 0xF)));
      sb.append((char) ('a' + (d[i] & 0xF)));
    }
    return sb.toString();
  }
}
