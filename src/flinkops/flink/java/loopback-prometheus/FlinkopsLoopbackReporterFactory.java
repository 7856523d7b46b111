/*
 * flinkops' Prometheus reporter for Flink processes on one machine: Flink's own reporter (the same registry, so
 * the same metric names and labels), with its HTTP server bound to 127.0.0.1 instead of every interface.
 *
 * Flink 2.2.1's PrometheusReporter opens its server on new InetSocketAddress(port), the wildcard address; it has
 * no host option. In a pod that is right; on a developer's machine it would publish every local JobManager's and
 * TaskManager's metrics to the network. flinkops' local runtime configures this factory in place of
 * PrometheusReporterFactory (flinkops.provisioning.local); the Kubernetes renderer keeps Flink's.
 *
 * The class lives in Flink's package because AbstractPrometheusReporter keeps its registry package-private:
 * flinkops packs it with Flink's flink-metrics-prometheus classes into one plugin jar (flinkops.flink.loopback),
 * so both are loaded by the same plugin class loader, and javac checks the field against the very jar it runs with.
 */
package org.apache.flink.metrics.prometheus;

import io.prometheus.client.exporter.HTTPServer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.Iterator;
import java.util.Properties;
import org.apache.flink.metrics.reporter.MetricReporter;
import org.apache.flink.metrics.reporter.MetricReporterFactory;
import org.apache.flink.util.PortRange;

/** Creates a {@link LoopbackReporter} on the first free port of {@code metrics.reporter.<name>.port}. */
public class FlinkopsLoopbackReporterFactory implements MetricReporterFactory {

    /** The only address the server listens on: a literal, so no name is resolved. */
    static final String HOST = "127.0.0.1";

    @Override
    public MetricReporter createMetricReporter(Properties properties) {
        // Flink's default port, as PrometheusReporterFactory reads it (one port, a range, or a list of both).
        return new LoopbackReporter(new PortRange(properties.getProperty("port", "9249")));
    }

    /** Flink's Prometheus reporter, serving its registry at http://127.0.0.1:port/metrics. */
    static final class LoopbackReporter extends AbstractPrometheusReporter {
        private final HTTPServer server;

        LoopbackReporter(PortRange ports) {
            HTTPServer started = null;
            Iterator<Integer> candidates = ports.getPortsIterator();
            while (started == null && candidates.hasNext()) {
                int port = candidates.next();
                try {
                    started = new HTTPServer(new InetSocketAddress(HOST, port), registry);
                    log.info("Started the Prometheus reporter's HTTP server on {}:{} (flinkops, loopback only).", HOST,
                            port);
                } catch (IOException e) {
                    log.debug("Could not start the Prometheus reporter's HTTP server on {}:{}.", HOST, port, e);
                }
            }
            if (started == null) {
                throw new RuntimeException(
                        "Could not start the Prometheus reporter's HTTP server on " + HOST + " at any port of " + ports);
            }
            server = started;
        }

        @Override
        public void close() {
            server.stop();
            super.close();
        }
    }
}
