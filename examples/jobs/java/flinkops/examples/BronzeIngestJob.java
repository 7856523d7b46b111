package flinkops.examples;

import java.time.Duration;
import java.time.ZoneOffset;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.serialization.SimpleStringEncoder;
import org.apache.flink.api.common.serialization.SimpleStringSchema;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.file.sink.FileSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.core.execution.CheckpointingMode;
import org.apache.flink.core.fs.Path;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.filesystem.OutputFileConfig;
import org.apache.flink.streaming.api.functions.sink.filesystem.bucketassigners.DateTimeBucketAssigner;
import org.apache.flink.streaming.api.functions.sink.filesystem.rollingpolicies.OnCheckpointRollingPolicy;
import org.apache.flink.util.ParameterTool;

/**
 * Bronze ingestion: copies every record value of a Kafka topic, unchanged, into hourly JSON-lines files (the raw
 * "bronze" layer of a lake), exactly once.
 *
 * <p>Pipeline (fixed uids):
 *
 * <ul>
 *   <li>{@code source}: a {@link KafkaSource} reading record values as UTF-8 strings; a fresh start reads from
 *       the earliest offset, a restore from the offsets in the checkpoint or savepoint.
 *   <li>{@code sink}: a row-format {@link FileSink} writing one line per record value into
 *       {@code <output>/dt=yyyy-MM-dd/hour=HH/part-<uuid>-<n>.jsonl}, the bucket being the UTC hour in which
 *       the record was ingested (processing time, not the record's own time: bronze keeps data as it arrived).
 *       With {@link OnCheckpointRollingPolicy}, part files are rolled and committed when a checkpoint
 *       completes; until then they are hidden in-progress or pending files ({@code .part-...}). So a reader
 *       that only lists committed files sees every record exactly once, even across failures and upgrades.
 * </ul>
 *
 * <p>Arguments:
 *
 * <ul>
 *   <li>{@code --bootstrap-servers HOST:PORT[,...]} (required)
 *   <li>{@code --topic T} (required): must exist; {@code main()} throws
 *       {@code IllegalStateException("Kafka topic 'T' does not exist on <bootstrap>; create it first")}.
 *   <li>{@code --group-id G} (default {@code bronze-<topic>})
 *   <li>{@code --output URI} (required), e.g. {@code s3://bucket/bronze/<topic>/} or {@code file:///tmp/bronze/}.
 *   <li>{@code --checkpoint-interval MS} (default 0: the cluster configuration decides; nothing is committed
 *       without checkpoints).
 * </ul>
 */
public final class BronzeIngestJob {
    private BronzeIngestJob() {}

    public static void main(String[] args) throws Exception {
        ParameterTool params = ParameterTool.fromArgs(args);
        String bootstrap = params.getRequired("bootstrap-servers");
        String topic = params.getRequired("topic");
        String groupId = params.get("group-id", "bronze-" + topic);
        String output = params.getRequired("output");
        long checkpointInterval = params.getLong("checkpoint-interval", 0L);
        if (checkpointInterval < 0) {
            throw new IllegalArgumentException("--checkpoint-interval must be >= 0");
        }
        KafkaTopics.requireTopics(bootstrap, topic);

        Configuration conf = new Configuration();
        if (checkpointInterval > 0) {
            conf.set(CheckpointingOptions.CHECKPOINTING_INTERVAL, Duration.ofMillis(checkpointInterval));
            conf.set(CheckpointingOptions.CHECKPOINTING_CONSISTENCY_MODE, CheckpointingMode.EXACTLY_ONCE);
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setMaxParallelism(128);

        KafkaSource<String> source =
                KafkaSource.<String>builder()
                        .setBootstrapServers(bootstrap)
                        .setTopics(topic)
                        .setGroupId(groupId)
                        .setStartingOffsets(OffsetsInitializer.earliest())
                        .setValueOnlyDeserializer(new SimpleStringSchema())
                        .build();
        FileSink<String> sink =
                FileSink.forRowFormat(new Path(output), new SimpleStringEncoder<String>("UTF-8"))
                        .withBucketAssigner(
                                new DateTimeBucketAssigner<String>("'dt='yyyy-MM-dd'/hour='HH", ZoneOffset.UTC))
                        .withRollingPolicy(OnCheckpointRollingPolicy.build())
                        .withOutputFileConfig(
                                OutputFileConfig.builder().withPartPrefix("part").withPartSuffix(".jsonl").build())
                        .build();

        env.fromSource(source, WatermarkStrategy.noWatermarks(), "source")
                .uid("source")
                .name("source: " + topic)
                .sinkTo(sink)
                .uid("sink")
                .name("sink: bronze files");
        env.execute("bronze-ingest-" + topic);
    }
}
