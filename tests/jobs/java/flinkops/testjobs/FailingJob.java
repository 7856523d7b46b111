package flinkops.testjobs;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.ParameterTool;

/**
 * Runs, then throws from a map function after --after N records (default 100) at --rate N records/s
 * (default 50). The restart strategy is "none", so the job ends FAILED with the deliberate message.
 */
public final class FailingJob {
    private FailingJob() {}

    public static void main(String[] args) throws Exception {
        ParameterTool params = ParameterTool.fromArgs(args);
        long after = params.getLong("after", 100L);
        long rate = params.getLong("rate", 50L);

        Configuration conf = new Configuration();
        conf.set(RestartStrategyOptions.RESTART_STRATEGY, "none");
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        DataGeneratorSource<Long> source =
                new DataGeneratorSource<>(
                        index -> index, Long.MAX_VALUE, RateLimiterStrategy.perSecond(rate), Types.LONG);
        env.fromSource(source, WatermarkStrategy.noWatermarks(), "numbers")
                .uid("numbers")
                .map(new FailAfter(after))
                .uid("fail-after")
                .name("fail-after")
                .sinkTo(new DiscardingSink<>())
                .uid("discard");
        env.execute("flinkops-test-failing");
    }

    public static final class FailAfter implements MapFunction<Long, Long> {
        private final long after;
        private long seen;

        FailAfter(long after) {
            this.after = after;
        }

        @Override
        public Long map(Long value) {
            seen++;
            if (seen > after) {
                throw new IllegalStateException(
                        "flinkops-test: deliberate failure after " + after + " records");
            }
            return value;
        }
    }
}
