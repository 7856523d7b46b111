#!/usr/bin/env bash
# Entrypoint of the flinkops Flink image (/docker-entrypoint.sh), written for this project. It accepts the
# commands of the official Flink image:
#
#   jobmanager [args]       a session JobManager           (bin/jobmanager.sh start-foreground)
#   standalone-job [args]   an application-mode JobManager (bin/standalone-job.sh start-foreground)
#   taskmanager [args]      a TaskManager                  (bin/taskmanager.sh start-foreground)
#   history-server          Flink's history server
#   help                    this text
#   anything else           run as given; native Kubernetes mode runs
#                           `bash -c "kubernetes-jobmanager.sh ..."` / `kubernetes-taskmanager.sh ...` this way
#
# and their environment variables:
#
#   FLINK_PROPERTIES            lines of `key: value` (or `key:value`), added to conf/config.yaml
#   JOB_MANAGER_RPC_ADDRESS     jobmanager.rpc.address (default: this container's host name)
#   TASK_MANAGER_NUMBER_OF_TASK_SLOTS
#   ENABLE_BUILT_IN_PLUGINS     jar names from $FLINK_HOME/opt separated by ';' (e.g. flink-s3-fs-presto-2.2.1.jar),
#                               each linked into $FLINK_HOME/plugins/<name>/
#   DISABLE_JEMALLOC=true       use glibc's allocator instead of jemalloc
#   FLINK_CDS=off               start the JVM without the image's class-data sharing archives
#                               ($FLINK_HOME/cds/jobmanager.jsa, taskmanager.jsa: Flink's classes recorded when
#                               the image was built, mapped at start instead of parsed from the jars)
#
# Started as root, Flink runs as the user flink (uid/gid 9999); started as any other user it runs as that user.
# When conf/ is read-only (a mounted ConfigMap, as in native mode), the configuration is used as it is.

FLINK_HOME="${FLINK_HOME:-/opt/flink}"
CONF_DIR="$FLINK_HOME/conf"

usage() {
    echo "Usage: $(basename "$0") (jobmanager|standalone-job|taskmanager|history-server|help) [args...]"
    echo "   or: $(basename "$0") COMMAND [args...]   (run as given, e.g. kubernetes-jobmanager.sh)"
    echo "jemalloc is the memory allocator unless DISABLE_JEMALLOC=true."
}

as_flink() {
    if [ "$(id -u)" = "0" ]; then
        exec setpriv --reuid=9999 --regid=9999 --init-groups env HOME="$FLINK_HOME" "$@"
    fi
    exec "$@"
}

use_jemalloc() {
    [ "${DISABLE_JEMALLOC:-false}" = "true" ] && return 0
    local lib
    for lib in "/usr/lib/$(uname -m)-linux-gnu/libjemalloc.so.2" /usr/lib/x86_64-linux-gnu/libjemalloc.so.2; do
        if [ -f "$lib" ]; then
            export LD_PRELOAD="${LD_PRELOAD:+$LD_PRELOAD:}$lib"
            return 0
        fi
    done
    echo "jemalloc not found: using glibc's allocator"
}

enable_plugins() {
    [ -n "${ENABLE_BUILT_IN_PLUGINS:-}" ] || return 0
    local jar name
    for jar in $(echo "$ENABLE_BUILT_IN_PLUGINS" | tr ';' ' '); do
        name="${jar%.jar}"
        if [ ! -e "$FLINK_HOME/opt/$jar" ]; then
            echo "Plugin $jar does not exist in $FLINK_HOME/opt. Exiting." >&2
            exit 1
        fi
        mkdir -p "$FLINK_HOME/plugins/$name" && ln -fs "$FLINK_HOME/opt/$jar" "$FLINK_HOME/plugins/$name/"
        echo "Enabled plugin $jar"
    done
}

use_cds() {
    # The archive of the component this container starts, given to every JVM through JAVA_TOOL_OPTIONS (so the
    # JVM options of Flink's configuration stay as they are). -Xshare:auto: an archive the JVM cannot map (other
    # options, another JRE) costs the speed-up only; the CDS log is quiet either way.
    [ "${FLINK_CDS:-on}" = "off" ] && return 0
    local archive="$FLINK_HOME/cds/$1.jsa"
    [ -f "$archive" ] || return 0
    export JAVA_TOOL_OPTIONS="${JAVA_TOOL_OPTIONS:+$JAVA_TOOL_OPTIONS }-XX:SharedArchiveFile=$archive -Xshare:auto -Xlog:cds=off,cds+dynamic=off"
}

cds_component() {
    # Which archive a container's command starts: Flink's own commands, its Kubernetes scripts named directly, or
    # (native mode) run through "bash -c 'kubernetes-jobmanager.sh ...'". Nothing for any other command (a shell, a
    # java -version): a script that merely mentions a Flink script is not a Flink component.
    local first="${1:-}"
    case "$first" in
        jobmanager|standalone-job) echo jobmanager; return 0 ;;
        taskmanager) echo taskmanager; return 0 ;;
        bash|sh|/bin/bash|/bin/sh)
            [ "${2:-}" = "-c" ] || return 0
            first="${3:-}"; first="${first#exec }"; first="${first%% *}" ;;
    esac
    case "${first##*/}" in
        kubernetes-jobmanager.sh) echo jobmanager ;;
        kubernetes-taskmanager.sh) echo taskmanager ;;
    esac
}

trim() {
    local text="$1"
    text="${text#"${text%%[![:space:]]*}"}"
    printf '%s' "${text%"${text##*[![:space:]]}"}"
}

configure() {
    if [ ! -w "$CONF_DIR" ] || [ ! -w "$CONF_DIR/config.yaml" ]; then
        echo "$CONF_DIR is read-only: using the configuration as mounted"
        return 0
    fi
    local params=("-Djobmanager.rpc.address=${JOB_MANAGER_RPC_ADDRESS:-$(hostname -f)}"
                  "-Dblob.server.port=6124" "-Dquery.server.port=6125")
    if [ -n "${TASK_MANAGER_NUMBER_OF_TASK_SLOTS:-}" ]; then
        params+=("-Dtaskmanager.numberOfTaskSlots=$TASK_MANAGER_NUMBER_OF_TASK_SLOTS")
    fi
    local line key value
    if [ -n "${FLINK_PROPERTIES:-}" ]; then
        while IFS= read -r line || [ -n "$line" ]; do
            line="$(trim "$line")"
            case "$line" in ""|"#"*) continue ;; esac
            key="$(trim "${line%%:*}")"
            value="$(trim "${line#*:}")"
            params+=("-D$key=$value")
        done <<< "$FLINK_PROPERTIES"
    fi
    "$FLINK_HOME/bin/config-parser-utils.sh" "$CONF_DIR" "$FLINK_HOME/bin" "$FLINK_HOME/lib" "${params[@]}" >/dev/null \
        || echo "warning: could not update $CONF_DIR/config.yaml" >&2
    # Values may name environment variables (${VAR}), as in the official image.
    if envsubst < "$CONF_DIR/config.yaml" > "$CONF_DIR/config.yaml.tmp"; then
        mv "$CONF_DIR/config.yaml.tmp" "$CONF_DIR/config.yaml"
    fi
}

command="${1:-help}"
if [ "$command" = "help" ]; then
    usage
    exit 0
fi
use_jemalloc
enable_plugins
configure
component="$(cds_component "$@")"
[ -n "$component" ] && use_cds "$component"
case "$command" in
    jobmanager) shift; echo "Starting Job Manager"; as_flink "$FLINK_HOME/bin/jobmanager.sh" start-foreground "$@" ;;
    standalone-job) shift; echo "Starting Job Manager"; as_flink "$FLINK_HOME/bin/standalone-job.sh" start-foreground "$@" ;;
    taskmanager) shift; echo "Starting Task Manager"; as_flink "$FLINK_HOME/bin/taskmanager.sh" start-foreground "$@" ;;
    history-server) shift; echo "Starting History Server"; as_flink "$FLINK_HOME/bin/historyserver.sh" start-foreground "$@" ;;
    *) as_flink "$@" ;;
esac
