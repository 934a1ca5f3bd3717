#!/usr/bin/env bash
# The flash-sale matrix of docs/benchmarks.md: hold strategy (batched, naive)
# x store (SQLite, PostgreSQL) x nodes (1, 3) x Redis soft-locks (off, on).
# Each cell starts its own servers on a fresh database, measures the HTTP
# ceiling (`baseline`, GET /healthz) and then a flash sale, both against the
# same nodes, and writes the JSON reports to OUT/<cell>/.
#
# usage: docs/bench/matrix.sh OUT [SEATS] [USERS]
# needs: target/release/boxoffice (cargo build --release -p boxoffice),
#        PostgreSQL on 127.0.0.1:5432 (user postgres), Redis on 127.0.0.1:6379
#        (cells with Redis use its database 15 and flush it first).
set -euo pipefail
OUT=${1:?usage: matrix.sh OUT [SEATS] [USERS]}
SEATS=${2:-50000}
USERS=${3:-500}
BIN=${BIN:-target/release/boxoffice}
SALE_CAP=${SALE_CAP:-60}
BASE_PORT=18100
ADMIN=(BOXOFFICE_ADMIN_EMAIL=bench@example.com BOXOFFICE_ADMIN_PASSWORD=benchbench)
mkdir -p "$OUT"
PIDS=()

stop_nodes() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
trap stop_nodes EXIT

for store in sqlite postgres; do
  for nodes in 1 3; do
    for redis in off on; do
      for strategy in batched naive; do
        cell="$store-${nodes}n-redis-$redis-$strategy"
        dir="$OUT/$cell"; mkdir -p "$dir"
        if [ "$store" = sqlite ]; then
          tmp=$(mktemp -d); db="sqlite://$tmp/bench.db"
        else
          name="bench_$(date +%s)_$RANDOM"
          psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $name"
          db="postgres://postgres@127.0.0.1:5432/$name"
        fi
        env_redis=()
        if [ "$redis" = on ]; then
          redis-cli -n 15 FLUSHDB > /dev/null
          env_redis=(REDIS_URL=redis://127.0.0.1:6379/15)
        fi
        urls=()
        for i in $(seq 1 "$nodes"); do
          port=$((BASE_PORT + i))
          # Rate limits off: the load generator is one address sending
          # thousands of requests a second (ADR 0013).
          env "${ADMIN[@]}" "${env_redis[@]}" DATABASE_URL="$db" BOXOFFICE_RATE_LIMITS=off \
            BOXOFFICE_HOLD_STRATEGY="$strategy" BOXOFFICE_LISTEN="127.0.0.1:$port" RUST_LOG=warn \
            "$BIN" serve > "$dir/node$i.out" 2> "$dir/node$i.err" &
          PIDS+=($!)
          for _ in $(seq 1 100); do
            grep -q "listening" "$dir/node$i.out" && break
            sleep 0.1
          done
          grep -q "listening" "$dir/node$i.out" || { echo "node $i of $cell did not start" >&2; cat "$dir/node$i.err" >&2; exit 1; }
          urls+=("http://127.0.0.1:$port")
        done
        url_list=$(IFS=,; echo "${urls[*]}")
        common=(--url "$url_list" --admin-email bench@example.com --admin-password benchbench
                --server-pid "${PIDS[0]}" --json --seed 1)
        echo "== $cell: baseline"
        "$BIN" loadtest "${common[@]}" --scenario baseline --duration-seconds 5 > "$dir/baseline.json" 2> "$dir/baseline.err"
        echo "== $cell: flash-sale"
        "$BIN" loadtest "${common[@]}" --scenario flash-sale --seats "$SEATS" --users "$USERS" \
          --sale-cap-seconds "$SALE_CAP" > "$dir/flash-sale.json" 2> "$dir/flash-sale.err"
        stop_nodes
        if [ "$store" = sqlite ]; then rm -rf "$tmp"; else
          psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE $name WITH (FORCE)"; fi
      done
    done
  done
done
python3 "$(dirname "$0")/matrix_table.py" "$OUT"
