package paymentd.peer;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import payments.v1.Payments.PaymentConfirmation;

/**
 * Compares two confirmation topics decided from the same requests topic (e.g. paymentd's and the
 * peer's), request by request (source partition and offset), ignoring source_topic. Reads both
 * with read_committed up to their last stable offsets.
 *
 * <p>usage: diff --bootstrap-servers HOST:PORT --a TOPIC --b TOPIC [--max-examples 10]
 */
final class ConfirmationDiff {
  private ConfirmationDiff() {}

  static Map<String, PaymentConfirmation> read(String bootstrap, String topic) throws Exception {
    Properties p = new Properties();
    p.setProperty(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.setProperty(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    p.setProperty(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    Map<String, PaymentConfirmation> out = new HashMap<>();
    try (KafkaConsumer<byte[], byte[]> c =
        new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      List<TopicPartition> tps = new ArrayList<>();
      for (PartitionInfo pi : c.partitionsFor(topic, Duration.ofSeconds(10))) {
        tps.add(new TopicPartition(topic, pi.partition()));
      }
      c.assign(tps);
      c.seekToBeginning(tps);
      Map<TopicPartition, Long> end = c.endOffsets(tps);
      long deadline = System.currentTimeMillis() + 120_000;
      while (System.currentTimeMillis() < deadline) {
        boolean done = true;
        for (TopicPartition tp : tps) if (c.position(tp) < end.get(tp)) done = false;
        if (done) break;
        for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
          PaymentConfirmation conf = PaymentConfirmation.parseFrom(r.value());
          out.put(conf.getSourcePartition() + "/" + conf.getSourceOffset(), conf);
        }
      }
    }
    return out;
  }

  public static void main(String[] args) throws Exception {
    String bootstrap = null, a = null, b = null;
    int maxExamples = 10;
    for (int i = 0; i + 1 < args.length; i += 2) {
      switch (args[i]) {
        case "--bootstrap-servers" -> bootstrap = args[i + 1];
        case "--a" -> a = args[i + 1];
        case "--b" -> b = args[i + 1];
        case "--max-examples" -> maxExamples = Integer.parseInt(args[i + 1]);
        default -> throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    Map<String, PaymentConfirmation> ca = read(bootstrap, a);
    Map<String, PaymentConfirmation> cb = read(bootstrap, b);
    long same = 0, differ = 0, onlyA = 0, onlyB = 0;
    Map<String, Long> kinds = new TreeMap<>();
    int shown = 0;
    for (Map.Entry<String, PaymentConfirmation> e : ca.entrySet()) {
      PaymentConfirmation y = cb.get(e.getKey());
      if (y == null) {
        ++onlyA;
        continue;
      }
      PaymentConfirmation x = e.getValue().toBuilder().clearSourceTopic().build();
      y = y.toBuilder().clearSourceTopic().build();
      if (x.equals(y)) {
        ++same;
        continue;
      }
      ++differ;
      String kind =
          (x.getDecisionValue() == 1 ? "APPROVED" : x.getDeclineCode()) + " vs "
              + (y.getDecisionValue() == 1 ? "APPROVED" : y.getDeclineCode());
      if (x.getDecision() == y.getDecision() && x.getDeclineCode().equals(y.getDeclineCode())) {
        kind += " (other fields)";
      }
      kinds.merge(kind, 1L, Long::sum);
      if (shown++ < maxExamples) {
        System.out.println("differs at " + e.getKey() + ":\n  a: " + x.toString().replace("\n", " ")
            + "\n  b: " + y.toString().replace("\n", " "));
      }
    }
    for (String k : cb.keySet()) if (!ca.containsKey(k)) ++onlyB;
    System.out.printf(
        "diff: a=%s (%d) b=%s (%d) identical=%d different=%d only_a=%d only_b=%d%n",
        a, ca.size(), b, cb.size(), same, differ, onlyA, onlyB);
    if (!kinds.isEmpty()) System.out.println("diff: by kind: " + kinds);
    System.exit(differ == 0 && onlyA == 0 && onlyB == 0 ? 0 : 1);
  }
}
