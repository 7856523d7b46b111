package flinkops.examples;

import java.util.regex.Pattern;
import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.accumulators.LongCounter;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.serialization.SimpleStringEncoder;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple4;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExecutionOptions;
import org.apache.flink.connector.file.sink.FileSink;
import org.apache.flink.connector.file.src.FileSource;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.core.fs.Path;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.filesystem.OutputFileConfig;
import org.apache.flink.streaming.api.functions.sink.filesystem.bucketassigners.BasePathBucketAssigner;
import org.apache.flink.util.ParameterTool;

/**
 * Conversions batch: totals of partner conversions per hour, a bounded job that ends FINISHED (or FAILED with a
 * clear cause on bad input). {@code examples/conversions-batch/generate.py} writes the input and computes the
 * expected totals independently.
 *
 * <p>Input: every file below {@code --input}, recursively (e.g. {@code raw/hour=2026-01-01T00/part-0.csv});
 * files whose names start with {@code .} or {@code _} are skipped (Flink's default file filter). Each line is
 * {@code conversion_id,partner_id,hour,amount_cents} without a header: {@code conversion_id} and
 * {@code amount_cents} are non-negative integers, {@code partner_id} is a non-empty word
 * ({@code [A-Za-z0-9_-]+}) and {@code hour} is {@code yyyy-MM-ddTHH}. Any other line, including a blank one,
 * throws {@code IllegalArgumentException("malformed conversion record: '<line>'")}, so the run ends FAILED with
 * that cause rather than producing totals that silently miss records.
 *
 * <p>Output: lines {@code hour,partner_id,conversions,revenue_cents}, one per (hour, partner) that has any
 * conversion, in no particular order, in {@code <output>/part-<uuid>-<n>.csv} (committed when the job
 * finishes).
 *
 * <p>Pipeline (fixed uids): {@code source} (bounded {@link FileSource} with {@link TextLineInputFormat}),
 * {@code parse} (strict parsing; accumulator {@code records} counts parsed lines), {@code sum} (keyed by hour and
 * partner, sums the count and the amount; in BATCH mode only the final sum per key is emitted), {@code format}
 * (accumulator {@code groups} counts output lines) and {@code sink} ({@link FileSink}). The accumulators appear
 * under {@code userTaskAccumulators} of Flink's REST {@code GET /jobs/:id/accumulators}.
 *
 * <p>Arguments: {@code --input URI} (required) and {@code --output URI} (required), e.g.
 * {@code s3://bucket/conversions/raw/} and {@code s3://bucket/conversions/hourly/}, or {@code file://} paths.
 */
public final class ConversionsBatchJob {
    private ConversionsBatchJob() {}

    public static void main(String[] args) throws Exception {
        ParameterTool params = ParameterTool.fromArgs(args);
        String input = params.getRequired("input");
        String output = params.getRequired("output");

        Configuration conf = new Configuration();
        conf.set(ExecutionOptions.RUNTIME_MODE, RuntimeExecutionMode.BATCH);
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);

        FileSource<String> source =
                FileSource.forRecordStreamFormat(new TextLineInputFormat(), new Path(input)).build();
        FileSink<String> sink =
                FileSink.forRowFormat(new Path(output), new SimpleStringEncoder<String>("UTF-8"))
                        .withBucketAssigner(new BasePathBucketAssigner<>())
                        .withOutputFileConfig(
                                OutputFileConfig.builder().withPartPrefix("part").withPartSuffix(".csv").build())
                        .build();

        env.fromSource(source, WatermarkStrategy.noWatermarks(), "source")
                .uid("source")
                .name("source: conversions")
                .map(new ParseConversion())
                .uid("parse")
                .name("parse")
                .keyBy(record -> record.f0 + "," + record.f1, Types.STRING)
                .reduce((a, b) -> Tuple4.of(a.f0, a.f1, a.f2 + b.f2, a.f3 + b.f3))
                .uid("sum")
                .name("sum per hour and partner")
                .map(new FormatTotal())
                .uid("format")
                .name("format")
                .sinkTo(sink)
                .uid("sink")
                .name("sink: hourly totals");
        env.execute("conversions-batch");
    }

    /** Parses {@code conversion_id,partner_id,hour,amount_cents} into (hour, partner_id, 1, amount_cents). */
    public static final class ParseConversion extends RichMapFunction<String, Tuple4<String, String, Long, Long>> {
        private static final long serialVersionUID = 1L;

        private static final Pattern HOUR = Pattern.compile("\\d{4}-\\d{2}-\\d{2}T\\d{2}");
        private static final Pattern WORD = Pattern.compile("[A-Za-z0-9_-]+");
        private static final Pattern NUMBER = Pattern.compile("\\d{1,18}");
        private transient LongCounter records;

        @Override
        public void open(OpenContext openContext) {
            records = new LongCounter();
            getRuntimeContext().addAccumulator("records", records);
        }

        @Override
        public Tuple4<String, String, Long, Long> map(String line) {
            String[] fields = line.split(",", -1);
            if (fields.length != 4
                    || !NUMBER.matcher(fields[0]).matches()
                    || !WORD.matcher(fields[1]).matches()
                    || !HOUR.matcher(fields[2]).matches()
                    || !NUMBER.matcher(fields[3]).matches()) {
                throw new IllegalArgumentException("malformed conversion record: '" + line + "'");
            }
            records.add(1L);
            return Tuple4.of(fields[2], fields[1], 1L, Long.parseLong(fields[3]));
        }
    }

    /** Formats one total as {@code hour,partner_id,conversions,revenue_cents} and counts the groups. */
    public static final class FormatTotal extends RichMapFunction<Tuple4<String, String, Long, Long>, String> {
        private static final long serialVersionUID = 1L;

        private transient LongCounter groups;

        @Override
        public void open(OpenContext openContext) {
            groups = new LongCounter();
            getRuntimeContext().addAccumulator("groups", groups);
        }

        @Override
        public String map(Tuple4<String, String, Long, Long> total) {
            groups.add(1L);
            return total.f0 + "," + total.f1 + "," + total.f2 + "," + total.f3;
        }
    }
}
