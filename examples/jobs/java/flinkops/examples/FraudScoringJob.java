package flinkops.examples;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.api.common.serialization.SimpleStringSchema;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.api.java.tuple.Tuple3;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonProcessingException;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.ParameterTool;

/**
 * Fraud scoring: velocity features per card over the last 30 minutes of event time, scored per authorization,
 * written exactly once to Kafka. {@code tests/support/fraud.py} recomputes every output record independently.
 *
 * <p>Pipeline (operator uids are fixed and the same for both models, so a savepoint of v1 restores into v2):
 *
 * <ul>
 *   <li>{@code source}: a {@link KafkaSource} on the input topic (values only, as strings). A fresh start reads
 *       from the earliest offset; a restore continues from the offsets stored in the checkpoint or savepoint.
 *       Offsets are also committed to the consumer group on checkpoints, for lag monitoring only.
 *   <li>{@code parse}: JSON {@code {"auth_id","card_id","merchant_id","amount_cents","ts","produced_at"}} (all
 *       integers) into an {@link Authorization}. A record that is not such JSON fails the job with
 *       {@link IllegalArgumentException} (no silent drop: the output must account for every input).
 *   <li>{@code score}: keyed by {@code card_id}. Keyed {@code ListState} holds the card's kept authorizations as
 *       {@code (ts, merchant_id, amount_cents)} in arrival order (a list, so the order is the same on the hashmap
 *       and RocksDB backends). For each authorization A in arrival order: drop every kept entry with
 *       {@code entry.ts <= A.ts - 1_800_000}, append A, and compute over the kept entries (A included):
 *       <ul>
 *         <li>{@code auth_count_30m} n = number of entries
 *         <li>{@code amount_sum_30m} s = sum of {@code amount_cents}
 *         <li>{@code distinct_merchants_30m} d = number of distinct {@code merchant_id}
 *         <li>{@code max_amount_30m} m = largest {@code amount_cents}
 *       </ul>
 *   <li>{@code sink}: a {@link KafkaSink} with {@link DeliveryGuarantee#EXACTLY_ONCE}: records become visible to
 *       {@code read_committed} consumers when the checkpoint that covers them completes. Key = the card id as
 *       decimal text, so one card stays in one output partition, in order.
 * </ul>
 *
 * <p>Score, in integer arithmetic (Java {@code long}, division truncates; all terms are non-negative) so that
 * Python reproduces it bit for bit:
 *
 * <pre>
 *   z        = WC*(n - 1) + WD*(d - 1) + WS*(s / 10000) + WM*(m / 10000)
 *   score_bp = 10000 * z / (z + K)          (basis points, 0 &lt;= score_bp &lt; 10000)
 *   score    = score_bp / 10000.0           (a double with at most 4 decimals)
 *
 *   model v1: WC = 20, WD = 10, WS = 1, WM = 3, K = 100
 *   model v2: WC = 10, WD = 30, WS = 2, WM = 2, K = 60
 * </pre>
 *
 * <p>Output value (JSON, fields in this order): {@code {"auth_id","card_id","ts","auth_count_30m",
 * "amount_sum_30m","distinct_merchants_30m","max_amount_30m","score","model","produced_at"}}; {@code model} is
 * {@code "v1"} or {@code "v2"}, {@code produced_at} is copied from the input so consumers can measure
 * end-to-end latency, everything else is an integer except {@code score}.
 *
 * <p>Arguments:
 *
 * <ul>
 *   <li>{@code --bootstrap-servers HOST:PORT[,...]} (required)
 *   <li>{@code --input-topic T} (default {@code card-auth}); {@code --output-topic T} (default
 *       {@code fraud-scores}). Both must exist: {@code main()} checks with the Kafka admin client and throws
 *       {@code IllegalStateException("Kafka topic 'T' does not exist on <bootstrap>; create it first")}.
 *   <li>{@code --group-id G} (default {@code fraud-scoring})
 *   <li>{@code --transactional-id-prefix P} (default {@code fraud-scoring}): must be unique per job writing to
 *       the cluster, and stay the same across upgrades so the sink can abort its own lingering transactions.
 *   <li>{@code --model v1|v2} (default v1)
 *   <li>{@code --checkpoint-interval MS} (default 0: the cluster configuration decides; exactly-once output
 *       needs checkpointing on).
 *   <li>{@code --record-cost-us N} (default 0): for load tests, {@code score} holds each record for N
 *       microseconds of wall-clock time before scoring it. The subtask waits parked rather than computing, so
 *       the cost uses no CPU yet counts as busy time: one {@code score} subtask handles at most about
 *       1,000,000 / N records per second, and its busy-time metric climbs towards 1 as the input approaches
 *       that. Output records are the same whatever N is. Must be {@code >= 0}.
 * </ul>
 *
 * <p>The producer's transaction timeout is {@code transaction.timeout.ms=900000} (15 minutes, the broker's
 * default {@code transaction.max.timeout.ms}): long enough that a transaction pending through a restart or an
 * upgrade is not aborted by the broker before the restored job commits it.
 */
public final class FraudScoringJob {
    /** Length of the feature window in event time. */
    static final long WINDOW_MS = 30L * 60L * 1000L;

    private FraudScoringJob() {}

    public static void main(String[] args) throws Exception {
        ParameterTool params = ParameterTool.fromArgs(args);
        String bootstrap = params.getRequired("bootstrap-servers");
        String inputTopic = params.get("input-topic", "card-auth");
        String outputTopic = params.get("output-topic", "fraud-scores");
        String groupId = params.get("group-id", "fraud-scoring");
        String transactionalIdPrefix = params.get("transactional-id-prefix", "fraud-scoring");
        String model = params.get("model", "v1");
        long checkpointInterval = params.getLong("checkpoint-interval", 0L);
        long recordCostMicros = params.getLong("record-cost-us", 0L);
        Model.of(model); // validates before anything else
        if (checkpointInterval < 0) {
            throw new IllegalArgumentException("--checkpoint-interval must be >= 0");
        }
        if (recordCostMicros < 0) {
            throw new IllegalArgumentException("--record-cost-us must be >= 0");
        }
        KafkaTopics.requireTopics(bootstrap, inputTopic, outputTopic);

        Configuration conf = new Configuration();
        if (checkpointInterval > 0) {
            conf.set(CheckpointingOptions.CHECKPOINTING_INTERVAL, Duration.ofMillis(checkpointInterval));
            conf.set(CheckpointingOptions.CHECKPOINTING_CONSISTENCY_MODE, CheckpointingMode.EXACTLY_ONCE);
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setMaxParallelism(128); // key groups stay stable when the job is rescaled

        KafkaSource<String> source =
                KafkaSource.<String>builder()
                        .setBootstrapServers(bootstrap)
                        .setTopics(inputTopic)
                        .setGroupId(groupId)
                        .setStartingOffsets(OffsetsInitializer.earliest())
                        .setValueOnlyDeserializer(new SimpleStringSchema())
                        .build();
        KafkaSink<Tuple2<String, String>> sink =
                KafkaSink.<Tuple2<String, String>>builder()
                        .setBootstrapServers(bootstrap)
                        .setRecordSerializer(
                                KafkaRecordSerializationSchema.<Tuple2<String, String>>builder()
                                        .setTopic(outputTopic)
                                        .setKeySerializationSchema(new KeyBytes())
                                        .setValueSerializationSchema(new ValueBytes())
                                        .build())
                        .setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE)
                        .setTransactionalIdPrefix(transactionalIdPrefix)
                        .setProperty("transaction.timeout.ms", "900000")
                        .build();

        env.fromSource(source, WatermarkStrategy.noWatermarks(), "source")
                .uid("source")
                .name("source: " + inputTopic)
                .map(new ParseAuthorization())
                .uid("parse")
                .name("parse")
                .keyBy(auth -> auth.cardId, Types.LONG)
                .process(new ScoreCard(model, TimeUnit.MICROSECONDS.toNanos(recordCostMicros)))
                .uid("score")
                .name("score " + model)
                .sinkTo(sink)
                .uid("sink")
                .name("sink: " + outputTopic);
        env.execute("fraud-scoring-" + model);
    }

    /** The score weights of one model; see the class Javadoc for the formula. */
    static final class Model {
        final long wc;
        final long wd;
        final long ws;
        final long wm;
        final long k;

        private Model(long wc, long wd, long ws, long wm, long k) {
            this.wc = wc;
            this.wd = wd;
            this.ws = ws;
            this.wm = wm;
            this.k = k;
        }

        static Model of(String name) {
            switch (name) {
                case "v1":
                    return new Model(20L, 10L, 1L, 3L, 100L);
                case "v2":
                    return new Model(10L, 30L, 2L, 2L, 60L);
                default:
                    throw new IllegalArgumentException("--model must be v1 or v2, got " + name);
            }
        }

        /** The score in basis points (0..9999) for the window features. */
        long scoreBasisPoints(long count, long sum, long distinct, long max) {
            long z = wc * (count - 1L) + wd * (distinct - 1L) + ws * (sum / 10000L) + wm * (max / 10000L);
            return 10000L * z / (z + k);
        }
    }

    /** Parses the input JSON; a malformed record fails the job (see {@link Authorization#fromJson}). */
    public static final class ParseAuthorization extends RichMapFunction<String, Authorization> {
        private static final long serialVersionUID = 1L;

        private transient ObjectMapper mapper;

        @Override
        public void open(OpenContext openContext) {
            mapper = new ObjectMapper();
        }

        @Override
        public Authorization map(String value) {
            JsonNode node;
            try {
                node = mapper.readTree(value);
            } catch (JsonProcessingException e) {
                throw new IllegalArgumentException("malformed authorization (not JSON): '" + value + "'", e);
            }
            return Authorization.fromJson(node, value);
        }
    }

    /** Keeps one card's last 30 minutes of authorizations and emits (card key, scored JSON) per authorization. */
    public static final class ScoreCard extends KeyedProcessFunction<Long, Authorization, Tuple2<String, String>> {
        private static final long serialVersionUID = 1L;

        private final String modelName;
        /** Wall-clock time each record holds the subtask, in nanoseconds (0: none); see {@link #spend}. */
        private final long recordCostNanos;
        private transient Model model;
        private transient ObjectMapper mapper;
        /** (ts, merchant_id, amount_cents) of the kept authorizations, in arrival order. */
        private transient ListState<Tuple3<Long, Long, Long>> window;

        ScoreCard(String modelName, long recordCostNanos) {
            this.modelName = modelName;
            this.recordCostNanos = recordCostNanos;
        }

        @Override
        public void open(OpenContext openContext) {
            model = Model.of(modelName);
            mapper = new ObjectMapper();
            TypeInformation<Tuple3<Long, Long, Long>> entryType = Types.TUPLE(Types.LONG, Types.LONG, Types.LONG);
            window = getRuntimeContext().getListState(new ListStateDescriptor<>("window", entryType));
        }

        @Override
        public void processElement(Authorization auth, Context ctx, Collector<Tuple2<String, String>> out)
                throws Exception {
            spend(recordCostNanos);
            long horizon = auth.ts - WINDOW_MS;
            List<Tuple3<Long, Long, Long>> kept = new ArrayList<>();
            Iterable<Tuple3<Long, Long, Long>> stored = window.get();
            if (stored != null) {
                for (Tuple3<Long, Long, Long> entry : stored) {
                    if (entry.f0 > horizon) {
                        kept.add(entry);
                    }
                }
            }
            kept.add(Tuple3.of(auth.ts, auth.merchantId, auth.amountCents));
            window.update(kept);

            long sum = 0L;
            long max = 0L;
            Set<Long> merchants = new HashSet<>();
            for (Tuple3<Long, Long, Long> entry : kept) {
                sum += entry.f2;
                max = Math.max(max, entry.f2);
                merchants.add(entry.f1);
            }
            long count = kept.size();
            long distinct = merchants.size();
            double score = model.scoreBasisPoints(count, sum, distinct, max) / 10000.0;

            ObjectNode node = mapper.createObjectNode();
            node.put("auth_id", auth.authId);
            node.put("card_id", auth.cardId);
            node.put("ts", auth.ts);
            node.put("auth_count_30m", count);
            node.put("amount_sum_30m", sum);
            node.put("distinct_merchants_30m", distinct);
            node.put("max_amount_30m", max);
            node.put("score", score);
            node.put("model", modelName);
            node.put("produced_at", auth.producedAt);
            out.collect(Tuple2.of(Long.toString(auth.cardId), mapper.writeValueAsString(node)));
        }
    }

    /**
     * Holds the calling thread for {@code nanos} of wall-clock time without using a core: parked, not spinning,
     * so a load test can make a subtask slow (and its busy time high) on a machine with few cores. A park may
     * return early (spuriously, or at a timer's granularity), so it parks again until the deadline. An
     * interrupted thread (the task being cancelled) returns at once: the park would not block anyway, and
     * cancelling must not wait.
     */
    static void spend(long nanos) {
        if (nanos <= 0L) {
            return;
        }
        long deadline = System.nanoTime() + nanos;
        for (long left = nanos; left > 0L; left = deadline - System.nanoTime()) {
            if (Thread.currentThread().isInterrupted()) {
                return;
            }
            LockSupport.parkNanos(left);
        }
    }

    /** The Kafka message key: the card id as decimal text. */
    static final class KeyBytes implements SerializationSchema<Tuple2<String, String>> {
        private static final long serialVersionUID = 1L;

        @Override
        public byte[] serialize(Tuple2<String, String> element) {
            return element.f0.getBytes(StandardCharsets.UTF_8);
        }
    }

    /** The Kafka message value: the scored JSON. */
    static final class ValueBytes implements SerializationSchema<Tuple2<String, String>> {
        private static final long serialVersionUID = 1L;

        @Override
        public byte[] serialize(Tuple2<String, String> element) {
            return element.f1.getBytes(StandardCharsets.UTF_8);
        }
    }
}
