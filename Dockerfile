# shardid as the only file of a FROM scratch image.
#
#   make                                   # builds zig-out/bin/shardid (static, musl)
#   docker build -t shardid .
#   docker run -d --name shardid-1 -p 7001:7001 -v shardid-1:/var/lib/shardid \
#       -e SHARD_ID=1 -e TOTAL_SHARDS=3 shardid
#
# The binary is fully static and reads nothing from /etc, /proc or /dev: the
# image holds /shardid and the (empty) state directory, nothing else. The
# premise is tested without a Docker engine by tests/blackbox/test_ops.py
# (test_runs_as_only_file_in_empty_root): the binary alone in an empty chroot,
# as uid 65532, serves requests and writes its journal.
FROM scratch

COPY zig-out/bin/shardid /shardid

# 65532 = "nonroot" of the distroless images; numeric, because scratch has no
# /etc/passwd to resolve a name against.
USER 65532:65532

# Created by the USER above (BuildKit, Docker's default builder, creates a missing
# WORKDIR owned by the current USER), so a fresh named volume mounted here
# inherits uid 65532 and is writable. For a bind mount, chown the host
# directory to 65532:65532 yourself.
WORKDIR /var/lib/shardid
ENV DATA_DIR=/var/lib/shardid
VOLUME ["/var/lib/shardid"]

EXPOSE 7001
# SIGTERM: stop accepting, answer what is in flight (<= 5 s), deregister from
# Consul, exit 0. Give it that long: docker stop's default 10 s is enough.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/shardid"]
