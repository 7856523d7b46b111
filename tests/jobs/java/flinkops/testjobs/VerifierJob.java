package flinkops.testjobs;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.UUID;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.serialization.SimpleStringEncoder;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExternalizedCheckpointRetention;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.file.sink.FileSink;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.filesystem.OutputFileConfig;
import org.apache.flink.streaming.api.functions.sink.filesystem.bucketassigners.BasePathBucketAssigner;
import org.apache.flink.streaming.api.functions.sink.filesystem.rollingpolicies.OnCheckpointRollingPolicy;
import org.apache.flink.util.Collector;
import org.apache.flink.util.ParameterTool;

/**
 * The verifier job: proves record by record that a stateful job lost nothing, duplicated nothing and carried
 * its keyed state across upgrades, restores and failures. {@code tests/support/verifier.py} checks its output.
 *
 * <p>Pipeline (operator uids are fixed and identical in every logic version, so a savepoint or checkpoint of
 * one version restores into another):
 *
 * <ul>
 *   <li>{@code source}: a checkpointed {@link DataGeneratorSource} emitting seq = 0, 1, ..., records-1 at
 *       parallelism 1, so the sequence is globally ordered and a restore replays exactly from the position
 *       stored in the checkpoint.
 *   <li>{@code counter}: keyed by {@code key = seq % keys}; a per-key {@code ValueState<Long>} counts the
 *       records of the key. When nothing is lost or duplicated and state survived, every record has
 *       {@code count == seq / keys + 1}.
 *   <li>{@code sink}: an exactly-once {@link FileSink} (row format, {@link OnCheckpointRollingPolicy}) writing
 *       into the output directory itself (no bucket sub-directories). A part file becomes visible as
 *       {@code part-<uuid>-<n>.csv} when the checkpoint that closed it completes; in-progress and pending
 *       files are hidden ({@code .part-...inprogress...}).
 * </ul>
 *
 * <p>The keyed operator and the sink run at the cluster's {@code parallelism.default}; max parallelism is
 * pinned to 128 so key groups stay stable across rescaling.
 *
 * <p>Arguments:
 *
 * <ul>
 *   <li>{@code --output DIR} (required): where committed part files go.
 *   <li>{@code --records N} (default 0): emit seq 0..N-1 then FINISH; 0 means unbounded.
 *   <li>{@code --rate N} (default 100): records per second; 0 means as fast as possible.
 *   <li>{@code --keys N} (default 64).
 *   <li>{@code --logic v1|v2|v3} (default v1). v1 writes {@code seq,key,count,v1}. v2 writes
 *       {@code seq,key,count,v2,check} where {@code check = (count - 1) * keys + key} (equals seq when the
 *       state is right), so the switch is visible line by line. v3 writes like v2 tagged {@code v3} and each
 *       counter subtask throws once it has processed {@code --fail-after} records since it (re)started; v3
 *       sets the restart strategy to "none", so the job ends FAILED.
 *   <li>{@code --fail-after N} (default 100): see v3.
 *   <li>{@code --trace DIR} (optional): at-least-once side channel. The counter appends every seq it
 *       processes, one per line and flushed per record, to its own file {@code DIR/trace-<subtask>-<uuid>.txt}
 *       (a new file per task start), so seqs processed more than once (replayed after a restore) can be
 *       counted.
 *   <li>{@code --trace-timestamps} (optional flag, with {@code --trace}): each trace line is
 *       {@code seq,epochMillis} (the wall-clock time the counter processed the record) instead of {@code seq},
 *       so benchmarks can tell when output stopped and resumed around an upgrade or a recovery.
 *   <li>{@code --checkpoint-interval MS} (default 1000): 0 leaves checkpointing to the cluster config.
 * </ul>
 *
 * <p>Checkpoint settings and FileSink in Flink 2.2: output is committed only when a checkpoint completes, so
 * checkpointing must be on (exactly-once mode). {@code execution.checkpointing.checkpoints-after-tasks-finish}
 * (default true in 2.x, set explicitly here) is what lets a bounded run commit its last records: once the
 * source ends, the sink flushes at end of input and the tasks wait for one final checkpoint before the job
 * reaches FINISHED; with it off, the records after the last checkpoint would stay pending forever.
 * {@code execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION} keeps the
 * checkpoints of a cancelled job so a last-state upgrade or restore can use them. After a stop-with-savepoint
 * every sink subtask has committed everything before the savepoint; after a cancel, kill or failure the
 * records of the last completed checkpoint may still be pending until the next run restores and commits
 * them.
 */
public final class VerifierJob {
    private VerifierJob() {}

    public static void main(String[] args) throws Exception {
        ParameterTool params = ParameterTool.fromArgs(args);
        String output = params.getRequired("output");
        long records = params.getLong("records", 0L);
        double rate = params.getDouble("rate", 100.0);
        int keys = params.getInt("keys", 64);
        String logic = params.get("logic", "v1");
        long failAfter = params.getLong("fail-after", 100L);
        String trace = params.get("trace", null);
        boolean traceTimestamps = params.has("trace-timestamps");
        long checkpointInterval = params.getLong("checkpoint-interval", 1000L);
        if (!logic.equals("v1") && !logic.equals("v2") && !logic.equals("v3")) {
            throw new IllegalArgumentException("--logic must be v1, v2 or v3, got " + logic);
        }
        if (keys <= 0 || records < 0 || rate < 0 || failAfter < 0) {
            throw new IllegalArgumentException("--keys must be > 0; --records, --rate, --fail-after >= 0");
        }

        Configuration conf = new Configuration();
        if (checkpointInterval > 0) {
            conf.set(CheckpointingOptions.CHECKPOINTING_INTERVAL, Duration.ofMillis(checkpointInterval));
        }
        conf.set(CheckpointingOptions.CHECKPOINTING_CONSISTENCY_MODE, CheckpointingMode.EXACTLY_ONCE);
        conf.set(
                CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION,
                ExternalizedCheckpointRetention.RETAIN_ON_CANCELLATION);
        conf.set(CheckpointingOptions.ENABLE_CHECKPOINTS_AFTER_TASKS_FINISH, true);
        if (logic.equals("v3")) {
            conf.set(RestartStrategyOptions.RESTART_STRATEGY, "none");
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setMaxParallelism(128);

        DataGeneratorSource<Long> source =
                new DataGeneratorSource<>(
                        index -> index,
                        records == 0 ? Long.MAX_VALUE : records,
                        rate == 0 ? RateLimiterStrategy.noOp() : RateLimiterStrategy.perSecond(rate),
                        Types.LONG);
        FileSink<String> sink =
                FileSink.forRowFormat(
                                new org.apache.flink.core.fs.Path(output),
                                new SimpleStringEncoder<String>("UTF-8"))
                        .withRollingPolicy(OnCheckpointRollingPolicy.build())
                        .withBucketAssigner(new BasePathBucketAssigner<>())
                        .withOutputFileConfig(
                                OutputFileConfig.builder().withPartPrefix("part").withPartSuffix(".csv").build())
                        .build();

        final long keyCount = keys;
        env.fromSource(source, WatermarkStrategy.noWatermarks(), "source")
                .uid("source")
                .setParallelism(1)
                .keyBy(seq -> seq % keyCount)
                .process(new Counter(keys, logic, failAfter, trace, traceTimestamps))
                .uid("counter")
                .name("counter")
                .sinkTo(sink)
                .uid("sink")
                .name("sink");
        env.execute("flinkops-verifier-" + logic);
    }

    /** Counts records per key in keyed state and emits one output line per record. */
    public static final class Counter extends KeyedProcessFunction<Long, Long, String> {
        private final int keys;
        private final String logic;
        private final long failAfter;
        private final String traceDir;
        private final boolean traceTimestamps;
        private transient ValueState<Long> count;
        private transient long processed;
        private transient BufferedWriter trace;

        Counter(int keys, String logic, long failAfter, String traceDir, boolean traceTimestamps) {
            this.keys = keys;
            this.logic = logic;
            this.failAfter = failAfter;
            this.traceDir = traceDir;
            this.traceTimestamps = traceTimestamps;
        }

        @Override
        public void open(OpenContext openContext) throws IOException {
            count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Types.LONG));
            processed = 0L;
            if (traceDir != null) {
                Path dir = Paths.get(traceDir);
                Files.createDirectories(dir);
                int subtask = getRuntimeContext().getTaskInfo().getIndexOfThisSubtask();
                Path file = dir.resolve("trace-" + subtask + "-" + UUID.randomUUID() + ".txt");
                trace =
                        Files.newBufferedWriter(
                                file,
                                StandardCharsets.UTF_8,
                                StandardOpenOption.CREATE_NEW,
                                StandardOpenOption.WRITE,
                                StandardOpenOption.APPEND);
            }
        }

        @Override
        public void processElement(Long seq, Context ctx, Collector<String> out) throws Exception {
            processed++;
            if (logic.equals("v3") && processed > failAfter) {
                throw new IllegalStateException(
                        "flinkops-verifier: deliberate v3 failure after " + failAfter + " records");
            }
            if (trace != null) {
                trace.write(Long.toString(seq));
                if (traceTimestamps) {
                    trace.write(',');
                    trace.write(Long.toString(System.currentTimeMillis()));
                }
                trace.write('\n');
                trace.flush();
            }
            Long current = count.value();
            long next = current == null ? 1L : current + 1L;
            count.update(next);
            long key = ctx.getCurrentKey();
            String line = seq + "," + key + "," + next + "," + logic;
            if (!logic.equals("v1")) {
                line = line + "," + ((next - 1L) * keys + key);
            }
            out.collect(line);
        }

        @Override
        public void close() throws Exception {
            if (trace != null) {
                trace.close();
                trace = null;
            }
        }
    }
}
