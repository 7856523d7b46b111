package flinkops.testjobs;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.ParameterTool;

/**
 * A rate-limited stream of longs with a keyed running count per key (state that checkpoints and savepoints
 * carry). Args: --rate N (records/s, default 50), --records N (default: practically unbounded),
 * --keys N (default 4), --checkpoint-interval MS (default: off, leave it to the cluster config).
 * Operator uids are fixed so that savepoints restore across resubmissions.
 */
public final class CountingJob {
    private CountingJob() {}

    public static void main(String[] args) throws Exception {
        ParameterTool params = ParameterTool.fromArgs(args);
        long rate = params.getLong("rate", 50L);
        long records = params.getLong("records", Long.MAX_VALUE);
        long keys = params.getLong("keys", 4L);
        long checkpointInterval = params.getLong("checkpoint-interval", 0L);

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        if (checkpointInterval > 0) {
            env.enableCheckpointing(checkpointInterval);
        }
        DataGeneratorSource<Long> source =
                new DataGeneratorSource<>(
                        index -> index, records, RateLimiterStrategy.perSecond(rate), Types.LONG);
        env.fromSource(source, WatermarkStrategy.noWatermarks(), "numbers")
                .uid("numbers")
                .keyBy(value -> value % keys)
                .map(new RunningCount())
                .uid("running-count")
                .name("running-count")
                .sinkTo(new DiscardingSink<>())
                .uid("discard");
        env.execute("flinkops-test-counting");
    }

    /** Emits (key, count so far) as a string; the count lives in keyed ValueState. */
    public static final class RunningCount extends RichMapFunction<Long, String> {
        private transient ValueState<Long> count;

        @Override
        public void open(OpenContext openContext) {
            count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Types.LONG));
        }

        @Override
        public String map(Long value) throws Exception {
            Long current = count.value();
            long next = current == null ? 1L : current + 1L;
            count.update(next);
            return value + "," + next;
        }
    }
}
