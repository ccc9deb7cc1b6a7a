package paymentd.peer;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import payments.v1.Payments.PaymentConfirmation;

/**
 * Measures throughput as seen by a downstream consumer: reads the confirmations topic with
 * isolation.level=read_committed from the beginning and notes the wall-clock time at which the first
 * and the last (the --expected-th) confirmation became visible. Start it before the app.
 *
 * <p>usage: timer --bootstrap-servers HOST:PORT [--topic payments.confirmations] --expected N
 * [--idle-timeout-s 120]
 */
final class ConfirmationTimer {
  private ConfirmationTimer() {}

  public static void main(String[] args) throws Exception {
    String bootstrap = null;
    String topic = "payments.confirmations";
    long expected = -1;
    long idleTimeoutS = 120;
    for (int i = 0; i + 1 < args.length; i += 2) {
      switch (args[i]) {
        case "--bootstrap-servers" -> bootstrap = args[i + 1];
        case "--topic" -> topic = args[i + 1];
        case "--expected" -> expected = Long.parseLong(args[i + 1]);
        case "--idle-timeout-s" -> idleTimeoutS = Long.parseLong(args[i + 1]);
        default -> throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    if (bootstrap == null || expected <= 0) {
      System.err.println(
          "usage: timer --bootstrap-servers HOST:PORT [--topic T] --expected N [--idle-timeout-s S]");
      System.exit(2);
    }
    Properties p = new Properties();
    p.setProperty(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.setProperty(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    p.setProperty(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    p.setProperty(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "5000");
    try (KafkaConsumer<byte[], byte[]> consumer =
        new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      List<TopicPartition> tps = new ArrayList<>();
      long waitUntil = System.currentTimeMillis() + idleTimeoutS * 1000;
      while (tps.isEmpty()) {
        List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(10));
        if (infos != null) for (PartitionInfo pi : infos) tps.add(new TopicPartition(topic, pi.partition()));
        if (tps.isEmpty()) {
          if (System.currentTimeMillis() > waitUntil) throw new IllegalStateException("no topic " + topic);
          Thread.sleep(200);
        }
      }
      consumer.assign(tps);
      consumer.seekToBeginning(tps);
      System.out.printf("timer: waiting for %d confirmations on %s (%d partitions)%n", expected, topic, tps.size());
      System.out.flush();
      long count = 0;
      long firstNs = 0;
      long lastNs = 0;
      long lastProgressNs = System.nanoTime();
      long lastReportNs = lastProgressNs;
      Map<String, Long> byCode = new TreeMap<>();
      long replays = 0;
      while (count < expected) {
        ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
        long now = System.nanoTime();
        if (records.isEmpty()) {
          if (now - lastProgressNs > idleTimeoutS * 1_000_000_000L) break;
          continue;
        }
        if (count == 0) firstNs = now;
        for (ConsumerRecord<byte[], byte[]> r : records) {
          PaymentConfirmation c = PaymentConfirmation.parseFrom(r.value());
          String code = c.getDecisionValue() == 1 ? "APPROVED" : c.getDeclineCode();
          byCode.merge(code, 1L, Long::sum);
          if (c.getReplay()) ++replays;
        }
        count += records.count();
        lastNs = now;
        lastProgressNs = now;
        if (now - lastReportNs > 5_000_000_000L) {
          System.err.printf("timer: %d confirmations, %.1f s since the first%n", count, (now - firstNs) / 1e9);
          lastReportNs = now;
        }
      }
      double seconds = (lastNs - firstNs) / 1e9;
      System.out.printf(
          "timer: confirmations=%d expected=%d first_to_last_s=%.3f confirmations_per_s=%.0f replays=%d%n",
          count, expected, seconds, seconds > 0 ? count / seconds : 0.0, replays);
      System.out.println("timer: by decision: " + byCode);
      System.exit(count >= expected ? 0 : 3);
    }
  }
}
