package flinkops.testjobs;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * Proves which secret values a job received without writing them anywhere: appends one line per start to the file
 * of --probe-out=PATH with the sha256 of --probe-password=VALUE and of the configuration values named by
 * --probe-keys=KEY,KEY (as the job's environment sees the cluster configuration), then runs CountingJob with the
 * remaining arguments.
 */
public final class SecretProbeJob {
    private SecretProbeJob() {}

    public static void main(String[] args) throws Exception {
        String out = null;
        String password = "";
        String[] keys = new String[0];
        List<String> rest = new ArrayList<>();
        for (String arg : args) {
            if (arg.startsWith("--probe-out=")) {
                out = arg.substring("--probe-out=".length());
            } else if (arg.startsWith("--probe-password=")) {
                password = arg.substring("--probe-password=".length());
            } else if (arg.startsWith("--probe-keys=")) {
                keys = arg.substring("--probe-keys=".length()).split(",");
            } else {
                rest.add(arg);
            }
        }
        ReadableConfig config = StreamExecutionEnvironment.getExecutionEnvironment().getConfiguration();
        StringBuilder line = new StringBuilder("password=").append(sha256(password));
        for (String key : keys) {
            String value = config.get(ConfigOptions.key(key).stringType().defaultValue(""));
            line.append(' ').append(key).append('=').append(sha256(value));
        }
        if (out != null) {
            Files.writeString(
                    Path.of(out),
                    line.append('\n').toString(),
                    StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
        }
        CountingJob.main(rest.toArray(new String[0]));
    }

    private static String sha256(String text) throws Exception {
        MessageDigest digest = MessageDigest.getInstance("SHA-256");
        StringBuilder hex = new StringBuilder();
        for (byte b : digest.digest(text.getBytes(StandardCharsets.UTF_8))) {
            hex.append(String.format("%02x", b));
        }
        return hex.toString();
    }
}
