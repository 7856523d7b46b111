# syntax=docker/dockerfile:1
#
# The Flink image the dev Kubernetes node runs (`flinkops dev up kubernetes --node`), written as a Dockerfile so
# that you can see how a job image is made. flinkops builds the same image without Docker or a registry
# (flinkops.dev.node.image: debootstrap for the Debian layer, its own OCI packer, `ctr images import`); this file
# and that code follow the same steps and are checked against each other by tests/unit/test_flink_image_recipe.py.
#
# Build from the repository root:
#
#   docker build -f deploy/docker/flink.Dockerfile -t flink:2.2 .
#
# A job image adds its jar on top, where standalone application mode looks for it:
#
#   FROM flink:2.2
#   COPY --chown=flink:flink target/my-job.jar /opt/flink/usrlib/my-job.jar
#
# The commands (jobmanager, standalone-job, taskmanager, or anything else run as given, as native Kubernetes mode
# does with kubernetes-jobmanager.sh) and environment variables (FLINK_PROPERTIES, ENABLE_BUILT_IN_PLUGINS, ...)
# are those of the official image; see the header of src/flinkops/dev/node/docker-entrypoint.sh.

ARG FLINK_VERSION=2.2.1

# ---------------------------------------------------------------------------------------------- the distribution
# Flink's binary distribution is what the apache-flink-libraries package on PyPI carries under pyflink/.
FROM python:3.11-slim AS distribution
ARG FLINK_VERSION
RUN pip install --no-cache-dir --no-deps --target /dist "apache-flink-libraries==${FLINK_VERSION}" \
 && mkdir -p /opt/flink/usrlib /opt/flink/log \
 && cd /dist/pyflink && cp -r bin conf lib opt plugins licenses /opt/flink/

# ---------------------------------------------------------------------------------------------- the image
FROM debian:bookworm-slim
ARG FLINK_VERSION
# The JRE, envsubst for the entrypoint, jemalloc (the default allocator) and snappy for Flink, ps for its scripts.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      openjdk-17-jre-headless gettext-base libjemalloc2 libsnappy1v5 procps \
 && rm -rf /var/lib/apt/lists/*
# The official image's user: uid and gid 9999, so `runAsUser: 9999` in a pod matches the files' owner.
RUN groupadd --system --gid 9999 flink \
 && useradd --system --no-create-home --home-dir /opt/flink --uid 9999 --gid 9999 --shell /bin/bash flink
ENV FLINK_HOME=/opt/flink \
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \
    PATH=/opt/flink/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8
COPY --from=distribution --chown=9999:9999 /opt/flink /opt/flink
# The S3 filesystem plugins, where ENABLE_BUILT_IN_PLUGINS finds them. Fetch them into the build context first
# through your own Maven settings (the newest patch release of the plugins that Maven Central has for your Flink
# minor version; for Flink 2.2.1 that is 2.2.0, which flinkops.flink.jars picks the same way), e.g.
#   mvn dependency:copy -Dartifact=org.apache.flink:flink-s3-fs-presto:2.2.0 -DoutputDirectory=build/flink-opt
#   mvn dependency:copy -Dartifact=org.apache.flink:flink-s3-fs-hadoop:2.2.0 -DoutputDirectory=build/flink-opt
COPY --chown=9999:9999 build/flink-opt/ /opt/flink/opt/
# Servers listen on every interface of the pod; each TaskManager finds its own host (the official image's edits).
RUN /opt/flink/bin/config-parser-utils.sh /opt/flink/conf /opt/flink/bin /opt/flink/lib \
      -repKV rest.address,localhost,0.0.0.0 -repKV rest.bind-address,localhost,0.0.0.0 \
      -repKV jobmanager.bind-host,localhost,0.0.0.0 -repKV taskmanager.bind-host,localhost,0.0.0.0 \
      -rmKV taskmanager.host=localhost
COPY --chmod=0755 src/flinkops/dev/node/docker-entrypoint.sh /docker-entrypoint.sh
# Class-data sharing: a JobManager and a TaskManager started once, on 127.0.0.1, each recording the classes it
# loads until the TaskManager has registered (-XX:ArchiveClassesAtExit, written when SIGTERM stops them). The
# entrypoint hands /opt/flink/cds/<component>.jsa to the JVM, which then starts faster; FLINK_CDS=off turns it off.
RUN mkdir -p /opt/flink/cds && chown 9999:9999 /opt/flink/cds && cd /opt/flink \
 && setpriv --reuid=9999 --regid=9999 --init-groups env HOME=/opt/flink bash -c ' \
      common="-D jobmanager.rpc.address=127.0.0.1 -D cluster.registration.error-delay=500ms"; \
      FLINK_ENV_JAVA_OPTS_JM=-XX:ArchiveClassesAtExit=/opt/flink/cds/jobmanager.jsa bin/jobmanager.sh \
        start-foreground $common -D jobmanager.bind-host=127.0.0.1 -D rest.bind-address=127.0.0.1 \
        -D jobmanager.memory.process.size=1g > /tmp/jobmanager.out 2>&1 & jm=$!; \
      FLINK_ENV_JAVA_OPTS_TM=-XX:ArchiveClassesAtExit=/opt/flink/cds/taskmanager.jsa bin/taskmanager.sh \
        start-foreground $common -D taskmanager.bind-host=127.0.0.1 -D taskmanager.host=127.0.0.1 \
        -D taskmanager.memory.process.size=1g > /tmp/taskmanager.out 2>&1 & tm=$!; \
      for i in $(seq 1 960); do grep -q "Successful registration at resource manager" /tmp/taskmanager.out && break; \
        sleep 0.5; done; \
      sleep 2; kill -TERM $tm $jm; wait $tm $jm; true' \
 && test -s /opt/flink/cds/jobmanager.jsa && test -s /opt/flink/cds/taskmanager.jsa \
 && rm -f /tmp/jobmanager.out /tmp/taskmanager.out /opt/flink/log/*
WORKDIR /opt/flink
EXPOSE 6123 8081
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["help"]
