package flinkops.examples;

import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.admin.Admin;
import org.apache.flink.kafka.shaded.org.apache.kafka.clients.admin.AdminClientConfig;

/**
 * Checks, before a job is built, that the Kafka topics it reads or writes exist.
 *
 * <p>Why in {@code main()}: a KafkaSource on a missing topic idles or fails inside a running task, and a
 * KafkaSink fails on its first write; either way the job restarts over and over and the real cause sits deep in
 * a task manager log. Failing in {@code main()} makes the submission itself fail with a one-line cause that
 * flinkops (and Flink's REST API) report as is. The examples never create topics themselves: partition counts
 * and retention are decisions for whoever owns the topic.
 *
 * <p>The admin client is the one shaded into the Kafka connector fat jar ({@code flink-sql-connector-kafka}),
 * which is on the cluster classpath wherever these jobs run; no extra kafka-clients jar is needed.
 */
final class KafkaTopics {
    /** How long to wait for the broker to answer the topic listing. */
    private static final long TIMEOUT_SECONDS = 30L;

    private KafkaTopics() {}

    /**
     * Throws {@link IllegalStateException} naming the first missing topic, or the broker that did not answer.
     *
     * @param bootstrap the {@code bootstrap.servers} list of the cluster
     * @param topics the topics that must exist
     */
    static void requireTopics(String bootstrap, String... topics) {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Long.toString(TIMEOUT_SECONDS * 1000L));
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "flinkops-examples-topic-check");
        Set<String> existing;
        try (Admin admin = Admin.create(props)) {
            existing = admin.listTopics().names().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            throw new IllegalStateException(
                    "Cannot list the Kafka topics on " + bootstrap + ": " + cause, cause);
        } catch (TimeoutException e) {
            throw new IllegalStateException(
                    "Kafka on " + bootstrap + " did not answer a topic listing within " + TIMEOUT_SECONDS + " s",
                    e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("Interrupted while listing the Kafka topics on " + bootstrap, e);
        }
        List<String> missing = new ArrayList<>();
        for (String topic : topics) {
            if (!existing.contains(topic)) {
                missing.add(topic);
            }
        }
        if (!missing.isEmpty()) {
            throw new IllegalStateException(
                    "Kafka topic '" + missing.get(0) + "' does not exist on " + bootstrap + "; create it first");
        }
    }
}
