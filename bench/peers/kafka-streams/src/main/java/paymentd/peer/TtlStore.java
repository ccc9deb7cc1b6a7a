package paymentd.peer;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * Event-time TTL over a Kafka Streams persistent (RocksDB, changelogged) key-value store, the way
 * paymentd's state layer does it (state/README.md, "TTL"): the value is prefixed with the 8-byte
 * big-endian stream time of the write; an entry is expired once write_time + ttl <= stream time
 * (reads hide it); purge() walks an expiry index ordered by (write time, key) up to stream time -
 * ttl and deletes the expired entries (tombstones reach the changelog). The index is a second,
 * unlogged RocksDB store, rebuilt from the data store when the task starts (rebuildIndex), since
 * Kafka Streams restores only logged stores.
 */
final class TtlStore {
  final KeyValueStore<Bytes, byte[]> data;
  final KeyValueStore<Bytes, byte[]> index;
  final long ttlMs;
  private static final byte[] EMPTY = new byte[0];

  TtlStore(KeyValueStore<Bytes, byte[]> data, KeyValueStore<Bytes, byte[]> index, long ttlMs) {
    this.data = data;
    this.index = index;
    this.ttlMs = ttlMs;
  }

  private static long writeTime(byte[] raw) {
    return ByteBuffer.wrap(raw, 0, 8).getLong();
  }

  private boolean expired(long writeTime, long streamTime) {
    // write_time + ttl <= stream_time, without overflow (ttl <= Long.MAX_VALUE / 1000).
    return streamTime - writeTime >= ttlMs;
  }

  /** The live value, or null when absent or expired. */
  byte[] get(byte[] key, long streamTime) {
    byte[] raw = data.get(Bytes.wrap(key));
    if (raw == null || expired(writeTime(raw), streamTime)) return null;
    return Arrays.copyOfRange(raw, 8, raw.length);
  }

  /** The stream time of the live value's write, or Long.MIN_VALUE. */
  long writeTimeOf(byte[] key, long streamTime) {
    byte[] raw = data.get(Bytes.wrap(key));
    if (raw == null || expired(writeTime(raw), streamTime)) return Long.MIN_VALUE;
    return writeTime(raw);
  }

  void put(byte[] key, byte[] value, long streamTime) {
    byte[] raw = new byte[8 + value.length];
    ByteBuffer.wrap(raw).putLong(streamTime);
    System.arraycopy(value, 0, raw, 8, value.length);
    data.put(Bytes.wrap(key), raw);
    index.put(Bytes.wrap(indexKey(streamTime, key)), EMPTY);
  }

  private static byte[] indexKey(long writeTime, byte[] key) {
    byte[] k = new byte[8 + key.length];
    ByteBuffer.wrap(k).putLong(writeTime);
    System.arraycopy(key, 0, k, 8, key.length);
    return k;
  }

  /** Deletes every entry with write_time <= streamTime - ttl; returns how many. */
  int purge(long streamTime) {
    long cutoff = streamTime - ttlMs;
    if (cutoff < 0) return 0; // write times are >= 0
    List<Bytes> done = new ArrayList<>();
    int deleted = 0;
    // Index keys are (write time big-endian, key) with write times >= 0, so byte order is time
    // order. Only the expired range is read: every key with write time <= cutoff is below the
    // 8-byte bound cutoff + 1 (the bound itself is never a key, keys are non-empty). A full scan
    // would copy every cached key at every call.
    Bytes from = Bytes.wrap(new byte[8]);
    Bytes to = Bytes.wrap(ByteBuffer.allocate(8).putLong(cutoff + 1).array());
    try (KeyValueIterator<Bytes, byte[]> it = index.range(from, to)) {
      while (it.hasNext()) {
        KeyValue<Bytes, byte[]> e = it.next();
        byte[] ik = e.key.get();
        long wt = ByteBuffer.wrap(ik, 0, 8).getLong();
        if (wt > cutoff) break;
        done.add(e.key);
        byte[] key = Arrays.copyOfRange(ik, 8, ik.length);
        byte[] raw = data.get(Bytes.wrap(key));
        // A key rewritten later (or deleted) left a stale index entry: no tombstone for it.
        if (raw != null && writeTime(raw) == wt) {
          data.delete(Bytes.wrap(key));
          ++deleted;
        }
      }
    }
    for (Bytes k : done) index.delete(k);
    return deleted;
  }

  /** Index entries for every stored value (after a restore). Returns the number of entries. */
  long rebuildIndex() {
    long n = 0;
    try (KeyValueIterator<Bytes, byte[]> it = data.all()) {
      while (it.hasNext()) {
        KeyValue<Bytes, byte[]> e = it.next();
        index.put(Bytes.wrap(indexKey(writeTime(e.value), e.key.get())), EMPTY);
        ++n;
      }
    }
    return n;
  }
}
