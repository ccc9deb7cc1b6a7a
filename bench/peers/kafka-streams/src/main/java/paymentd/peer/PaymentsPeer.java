package paymentd.peer;

import com.google.protobuf.InvalidProtocolBufferException;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.streams.AutoOffsetReset;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.LogAndContinueExceptionHandler;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.state.Stores;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import payments.v1.Payments.PaymentConfirmation;
import payments.v1.Payments.PaymentRequest;

/**
 * The Kafka Streams peer of paymentd: reads PaymentRequest records, writes one PaymentConfirmation
 * per request, exactly once (processing.guarantee=exactly_once_v2), state in RocksDB stores backed
 * by changelog topics. Usage: see usage() and README.md.
 */
public final class PaymentsPeer {
  private static final Logger log = LoggerFactory.getLogger(PaymentsPeer.class);

  private static final String USAGE =
      String.join(
          "\n",
          "usage: payments-peer [--config FILE]... [--set KEY=VALUE]... [options]",
          "  --bootstrap-servers HOST:PORT   bootstrap.servers (required)",
          "  --application-id ID             application.id (default payments-peer)",
          "  --requests-topic T              payments.requests.topic (default payments.requests)",
          "  --confirmations-topic T         payments.confirmations.topic (default payments.confirmations)",
          "  --state-dir DIR                 state.dir (default /tmp/payments-peer)",
          "  --threads N                     num.stream.threads (default 1)",
          "  --commit-interval-ms MS         commit.interval.ms (default 100)",
          "  --partitions N                  create the requests and confirmations topics with N",
          "                                  partitions when missing (peer.create.topics.partitions; 0 = no)",
          "Keys: payments.* as paymentd (README.md), peer.*, anything else goes to Kafka Streams",
          "(and its clients: consumer./producer./admin. prefixes). Later options win.");

  private PaymentsPeer() {}

  static Properties defaults() {
    Properties p = new Properties();
    p.setProperty(StreamsConfig.APPLICATION_ID_CONFIG, "payments-peer");
    p.setProperty(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    p.setProperty(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "100");
    p.setProperty(StreamsConfig.NUM_STREAM_THREADS_CONFIG, "1");
    p.setProperty(StreamsConfig.STATE_DIR_CONFIG, "/tmp/payments-peer");
    p.setProperty("auto.offset.reset", "earliest");
    // paymentd's defaults (its --print-config): 64 MiB record cache, 500 records per poll.
    p.setProperty(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "67108864");
    p.setProperty("max.poll.records", "500");
    p.setProperty(
        StreamsConfig.DESERIALIZATION_EXCEPTION_HANDLER_CLASS_CONFIG,
        LogAndContinueExceptionHandler.class.getName());
    p.setProperty("peer.create.topics.partitions", "0");
    p.setProperty("peer.create.topics.replication.factor", "1");
    return p;
  }

  static Properties parseArgs(String[] args) throws IOException {
    Properties p = defaults();
    Map<String, String> flags =
        Map.of(
            "--bootstrap-servers", "bootstrap.servers",
            "--application-id", "application.id",
            "--requests-topic", "payments.requests.topic",
            "--confirmations-topic", "payments.confirmations.topic",
            "--state-dir", "state.dir",
            "--threads", "num.stream.threads",
            "--commit-interval-ms", "commit.interval.ms",
            "--partitions", "peer.create.topics.partitions");
    for (int i = 0; i < args.length; ++i) {
      String a = args[i];
      if (a.equals("-h") || a.equals("--help")) {
        System.out.println(USAGE);
        System.exit(0);
      }
      if (i + 1 >= args.length) throw new IllegalArgumentException("missing value after " + a);
      String v = args[++i];
      if (a.equals("--config")) {
        try (InputStream in = new FileInputStream(v)) {
          Properties f = new Properties();
          f.load(in);
          for (String k : f.stringPropertyNames()) p.setProperty(k, f.getProperty(k).trim());
        }
      } else if (a.equals("--set")) {
        int eq = v.indexOf('=');
        if (eq <= 0) throw new IllegalArgumentException("--set expects KEY=VALUE, got '" + v + "'");
        p.setProperty(v.substring(0, eq).trim(), v.substring(eq + 1).trim());
      } else if (flags.containsKey(a)) {
        p.setProperty(flags.get(a), v);
      } else {
        throw new IllegalArgumentException("unknown option " + a + "\n" + USAGE);
      }
    }
    if (p.getProperty("bootstrap.servers", "").isEmpty()) {
      throw new IllegalArgumentException("bootstrap.servers is required\n" + USAGE);
    }
    return p;
  }

  static final class RequestDeserializer implements Deserializer<PaymentRequest> {
    @Override
    public PaymentRequest deserialize(String topic, byte[] data) {
      if (data == null) throw new SerializationException("null value: not a PaymentRequest");
      try {
        return PaymentRequest.parseFrom(data);
      } catch (InvalidProtocolBufferException e) {
        // No card number can reach the log: the message names no content.
        throw new SerializationException("value is not a payments.v1.PaymentRequest");
      }
    }
  }

  static final class ConfirmationSerializer implements Serializer<PaymentConfirmation> {
    @Override
    public byte[] serialize(String topic, PaymentConfirmation data) {
      return data == null ? null : data.toByteArray();
    }
  }

  static Topology buildTopology(PeerConfig config, long commitIntervalMs) {
    Topology t = new Topology();
    t.addSource(
        AutoOffsetReset.earliest(),
        "requests",
        new TimestampPolicy(config.maxClockSkewMs),
        new StringDeserializer(),
        new RequestDeserializer(),
        config.requestsTopic);
    t.addProcessor(
        "decide", () -> new DecideProcessor(config, Math.max(commitIntervalMs, 10)), "requests");
    for (String store :
        List.of(DecideProcessor.IDEMPOTENCY, DecideProcessor.PAYMENTS, DecideProcessor.CUSTOMERS)) {
      t.addStateStore(
          Stores.keyValueStoreBuilder(
                  Stores.persistentKeyValueStore(store), Serdes.Bytes(), Serdes.ByteArray())
              .withCachingEnabled(),
          "decide");
      t.addStateStore(
          Stores.keyValueStoreBuilder(
                  Stores.persistentKeyValueStore(store + DecideProcessor.INDEX_SUFFIX),
                  Serdes.Bytes(),
                  Serdes.ByteArray())
              .withCachingEnabled()
              .withLoggingDisabled(),
          "decide");
    }
    t.addSink(
        "confirmations",
        config.confirmationsTopic,
        new StringSerializer(),
        new ConfirmationSerializer(),
        "decide");
    return t;
  }

  static void createTopics(Properties p, PeerConfig config) throws Exception {
    int partitions = Integer.parseInt(p.getProperty("peer.create.topics.partitions"));
    if (partitions <= 0) return;
    short rf = Short.parseShort(p.getProperty("peer.create.topics.replication.factor"));
    Properties ap = new Properties();
    ap.setProperty(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, p.getProperty("bootstrap.servers"));
    try (Admin admin = Admin.create(ap)) {
      Set<String> existing = admin.listTopics().names().get();
      List<NewTopic> missing = new ArrayList<>();
      for (String topic : List.of(config.requestsTopic, config.confirmationsTopic)) {
        if (!existing.contains(topic)) missing.add(new NewTopic(topic, partitions, rf));
      }
      for (NewTopic nt : missing) {
        try {
          admin.createTopics(List.of(nt)).all().get();
          log.info("created topic {} with {} partitions", nt.name(), partitions);
        } catch (ExecutionException e) {
          if (!(e.getCause() instanceof TopicExistsException)) throw e;
        }
      }
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length > 0 && args[0].equals("diff")) {
      ConfirmationDiff.main(java.util.Arrays.copyOfRange(args, 1, args.length));
      return;
    }
    if (args.length > 0 && args[0].equals("timer")) {
      ConfirmationTimer.main(java.util.Arrays.copyOfRange(args, 1, args.length));
      return;
    }
    Properties p;
    PeerConfig config;
    try {
      p = parseArgs(args);
      config = new PeerConfig(p);
    } catch (IllegalArgumentException e) {
      System.err.println("payments-peer: " + e.getMessage());
      System.exit(2);
      return;
    }
    createTopics(p, config);
    Properties streamsProps = new Properties();
    for (String k : p.stringPropertyNames()) {
      if (!k.startsWith("payments.") && !k.startsWith("peer.")) streamsProps.setProperty(k, p.getProperty(k));
    }
    long commitIntervalMs = Long.parseLong(p.getProperty(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG));
    Topology topology = buildTopology(config, commitIntervalMs);
    log.info("topology:\n{}", topology.describe());
    KafkaStreams streams = new KafkaStreams(topology, streamsProps);
    CountDownLatch done = new CountDownLatch(1);
    AtomicBoolean ready = new AtomicBoolean();
    long started = System.nanoTime();
    streams.setStateListener(
        (now, before) -> {
          log.info("state {} -> {}", before, now);
          if (now == KafkaStreams.State.RUNNING && ready.compareAndSet(false, true)) {
            System.out.printf(
                "payments-peer: ready application.id=%s requests=%s confirmations=%s"
                    + " bootstrap.servers=%s startup_s=%.2f%n",
                p.getProperty("application.id"), config.requestsTopic, config.confirmationsTopic,
                p.getProperty("bootstrap.servers"), (System.nanoTime() - started) / 1e9);
            System.out.flush();
          }
          if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) done.countDown();
        });
    streams.setUncaughtExceptionHandler(
        e -> {
          log.error("stream thread failed", e);
          return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  streams.close(Duration.ofSeconds(30));
                  done.countDown();
                },
                "payments-peer-shutdown"));
    streams.start();
    done.await();
    boolean failed = streams.state() == KafkaStreams.State.ERROR;
    streams.close(Duration.ofSeconds(30));
    System.exit(failed ? 1 : 0);
  }
}
