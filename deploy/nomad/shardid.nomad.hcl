# shardid on Nomad with Consul: 3 shards, each registering itself in the
# Consul agent of its node and holding its shard lock there.
#
#   make && docker build -t shardid .      # the FROM scratch image of ../../Dockerfile
#   nomad job run deploy/nomad/shardid.nomad.hcl
#
# SHARD_ID=auto: each allocation claims the lowest shard whose Consul lock
# is free (its DATA_DIR, when kept, claims the shard it belongs to). Nomad
# may run a replacement beside the allocation it replaces: it stands by
# until the old one lets go of the shard. TOTAL_SHARDS must equal count;
# a new count is `shardid reshard --total M` first (README "Scaling out").
# Consul holds each shard's state, so a shard may move to another node and
# its local DATA_DIR may be lost. Checked by tests/blackbox/test_deploy.py.
job "shardid" {
  datacenters = ["dc1"]
  type        = "service"

  group "shard" {
    count = 3

    # Shards on different nodes, so that one node down costs one shard.
    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    network {
      port "http" {}
    }

    # Kept and moved with the allocation when possible; losing it is safe
    # because the state is merged back from Consul.
    ephemeral_disk {
      sticky  = true
      migrate = true
      size    = 300
    }

    update {
      max_parallel     = 1
      min_healthy_time = "10s"
      healthy_deadline = "2m"
    }

    # Deployment health for Nomad only: shardid registers itself in Consul
    # (with its own /health check), so this service stays in Nomad.
    service {
      provider = "nomad"
      name     = "shardid-shard"
      port     = "http"

      check {
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "shardid" {
      driver = "docker"

      config {
        image = "shardid:latest"
        # The host's network: shardid listens on the allocated port and
        # advertises the node's address to Consul, and reaches the local agent.
        network_mode = "host"
      }

      env {
        SHARD_ID     = "auto"
        TOTAL_SHARDS = "3"
        SERVICE_PORT = "${NOMAD_PORT_http}"
        BIND_ADDR    = "${NOMAD_IP_http}"
        CONTAINER_IP = "${NOMAD_IP_http}"
        CONSUL_URL   = "http://127.0.0.1:8500"
        DATA_DIR     = "${NOMAD_ALLOC_DIR}/data"
      }

      # SIGTERM drains for at most 5 s and deregisters from Consul.
      kill_signal  = "SIGTERM"
      kill_timeout = "15s"

      resources {
        cpu        = 200
        memory     = 64
        memory_max = 128
      }
    }
  }
}
