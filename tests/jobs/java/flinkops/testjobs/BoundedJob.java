package flinkops.testjobs;

import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.ParameterTool;

/** Processes --records N numbers (default 1000) and FINISHES. */
public final class BoundedJob {
    private BoundedJob() {}

    public static void main(String[] args) throws Exception {
        ParameterTool params = ParameterTool.fromArgs(args);
        long records = params.getLong("records", 1000L);

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.fromSequence(1, records)
                .uid("numbers")
                .map(value -> value * 2)
                .returns(Types.LONG)
                .uid("double")
                .sinkTo(new DiscardingSink<>())
                .uid("discard");
        env.execute("flinkops-test-bounded");
    }
}
