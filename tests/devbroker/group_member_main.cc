// devbroker_test_member: a consumer-group member in its own process, so a
// test can SIGKILL it (it then stops heartbeating without leaving).
//
//   devbroker_test_member BOOTSTRAP GROUP TOPIC SESSION_TIMEOUT_MS
//
// Prints "assigned N" whenever its assignment changes. Exits by itself
// after 60 s so it can never outlive a crashed test by long.

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s BOOTSTRAP GROUP TOPIC SESSION_TIMEOUT_MS\n",
                 argv[0]);
    return 2;
  }
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const char* kv[][2] = {{"bootstrap.servers", argv[1]},
                         {"group.id", argv[2]},
                         {"session.timeout.ms", argv[4]},
                         {"heartbeat.interval.ms", "300"},
                         {"auto.offset.reset", "earliest"},
                         {"enable.auto.commit", "false"},
                         {"fetch.wait.max.ms", "100"}};
  for (auto& p : kv) {
    if (rd_kafka_conf_set(conf, p[0], p[1], err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      std::fprintf(stderr, "%s: %s\n", p[0], err);
      return 2;
    }
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (rk == nullptr) {
    std::fprintf(stderr, "rd_kafka_new: %s\n", err);
    return 1;
  }
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* sub = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(sub, argv[3], RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(rk, sub);
  rd_kafka_topic_partition_list_destroy(sub);

  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int last = -1;
  while (std::chrono::steady_clock::now() < end) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m != nullptr) rd_kafka_message_destroy(m);
    rd_kafka_topic_partition_list_t* a = nullptr;
    if (rd_kafka_assignment(rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (a->cnt != last) {
        last = a->cnt;
        std::printf("assigned %d\n", last);
        std::fflush(stdout);
      }
      rd_kafka_topic_partition_list_destroy(a);
    }
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return 0;
}
