#!/usr/bin/env python3
"""A real Kafka client (confluent-kafka, librdkafka's Python binding) for
sealog's tests and benchmarks: creates topics, produces messages, reads a
topic back.

  kafka_peer.py create BROKERS TOPIC PARTITIONS
  kafka_peer.py produce BROKERS TOPIC            (JSON lines on stdin:
        {"value": str|null, "value_b64": str, "key": str, "partition": int,
         "headers": [[name, value], ...]})
  kafka_peer.py bulk BROKERS TOPIC PARTITIONS N [BYTES] [PER_BATCH]
        (message i, value {"n":i,...} padded to about BYTES, key "i", to
         partition i % PARTITIONS; at most PER_BATCH messages in one
         record batch)
  kafka_peer.py read BROKERS TOPIC N TIMEOUT_S
        (prints N messages as JSON lines: partition, offset, value_b64,
         headers)
"""
import base64
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def create(brokers, topic, partitions):
    admin = AdminClient({"bootstrap.servers": brokers})
    futures = admin.create_topics([NewTopic(topic, num_partitions=int(partitions), replication_factor=1)])
    for _, f in futures.items():
        try:
            f.result(30)
        except KafkaException as e:
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise
    # Wait until the metadata shows every partition.
    deadline = time.time() + 30
    while time.time() < deadline:
        md = admin.list_topics(topic, timeout=5)
        t = md.topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == int(partitions):
            return
        time.sleep(0.1)
    raise SystemExit(f"topic {topic} not ready")


def producer(brokers, per_batch=10000):
    return Producer({
        "bootstrap.servers": brokers,
        "linger.ms": 20 if per_batch > 1 else 0,
        "batch.num.messages": per_batch,
        "message.max.bytes": 10485760,
        "queue.buffering.max.messages": 1000000,
        "enable.idempotence": False,
    })


def delivered(errors):
    def cb(err, _msg):
        if err is not None:
            errors.append(str(err))
    return cb


def produce(brokers, topic):
    p = producer(brokers)
    errors = []
    n = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        m = json.loads(line)
        if "value_b64" in m:
            value = base64.b64decode(m["value_b64"])
        elif m.get("value") is None:
            value = None
        else:
            value = m["value"].encode()
        kw = {"value": value, "on_delivery": delivered(errors)}
        if "key" in m:
            kw["key"] = m["key"]
        if "partition" in m:
            kw["partition"] = m["partition"]
        if "headers" in m:
            kw["headers"] = [(k, v.encode() if isinstance(v, str) else v) for k, v in m["headers"]]
        while True:
            try:
                p.produce(topic, **kw)
                break
            except BufferError:
                p.poll(0.1)
        n += 1
    left = p.flush(60)
    if left or errors:
        raise SystemExit(f"{left} undelivered, errors: {errors[:3]}")
    print(n)


def bulk(brokers, topic, partitions, count, size=0, per_batch=10000):
    p = producer(brokers, int(per_batch))
    errors = []
    partitions, count, size = int(partitions), int(count), int(size)
    for i in range(count):
        body = {"n": i, "msg": "bulk message"}
        value = json.dumps(body, separators=(",", ":"))
        if size > len(value):
            body["pad"] = "x" * (size - len(value) - 9)
            value = json.dumps(body, separators=(",", ":"))
        while True:
            try:
                p.produce(topic, value=value.encode(), key=str(i).encode(),
                          partition=i % partitions, on_delivery=delivered(errors))
                break
            except BufferError:
                p.poll(0.1)
        if i % 10000 == 0:
            p.poll(0)
    left = p.flush(120)
    if left or errors:
        raise SystemExit(f"{left} undelivered, errors: {errors[:3]}")
    print(count)


def read(brokers, topic, count, timeout):
    c = Consumer({
        "bootstrap.servers": brokers,
        "group.id": f"kafka-peer-{time.time()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    c.subscribe([topic])
    got = 0
    deadline = time.time() + float(timeout)
    while got < int(count) and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        print(json.dumps({
            "partition": m.partition(),
            "offset": m.offset(),
            "value_b64": base64.b64encode(m.value() or b"").decode(),
            "headers": [[k, (v or b"").decode(errors="replace")] for k, v in (m.headers() or [])],
        }), flush=True)
        got += 1
    c.close()


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"create": create, "produce": produce, "bulk": bulk, "read": read}[cmd](*args)
