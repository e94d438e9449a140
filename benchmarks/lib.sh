# Shared by the server benchmarks (sourced, not run): tools, a release build, and a
# keybroker started on 127.0.0.1 with one organization and a wrapped data key to unwrap.
# shellcheck shell=bash

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Installs the Debian packages named for the commands that are missing ("command:package").
need() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair#*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    as_root apt-get update -q >&2 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
  fi
}

# KEYBROKER_BIN=path measures that keybroker binary instead (e.g. an older commit's release
# build, for a before/after with the same references and method).
build_release() {
  echo "building keybroker (release)…" >&2
  if [ -z "${KEYBROKER_BIN:-}" ]; then
    swift build -c release --product keybroker --scratch-path .build-release >&2
  fi
  swift build -c release --product rsa-reference --scratch-path .build-release >&2
  bin=${KEYBROKER_BIN:-$PWD/.build-release/release/keybroker}
  rsa_reference=$PWD/.build-release/release/rsa-reference
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rps() { awk '/Requests\/sec/ {print $2}'; }
ratio() { python3 -c "print(f'{float($1)/float($2):.2f}')"; }
median() { python3 -c 'import statistics,sys; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.2f}")' "$@"; }
run_wrk() { wrk -t2 -c"$connections" -d"${duration}s" "$@" 2>&1; }
# openssl's RSA-3072 private-key operations per second, on 1 or 2 processes.
openssl_rsa() {
  if [ "$1" = 1 ]; then
    openssl speed -seconds "$duration" rsa3072 2>/dev/null | awk '/^rsa 3072 bits/ {print $6}'
  else
    openssl speed -multi "$1" -seconds "$duration" rsa3072 2>/dev/null | awk '/^rsa 3072 bits/ {print $6}'
  fi
}

pids=()
work=$(mktemp -d)
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A token that may encrypt, decrypt and view every organization, and its hash for the config.
make_token() {
  token=$("$bin" token create --name bench --permission recording:encrypt --permission recording:decrypt --permission encryption-key:view --org '*' | sed -n 2p | tr -d ' ')
  hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
}

# A throwaway PostgreSQL cluster in $work (initdb as nobody when root, on a free loopback
# port, fsync on as in production); sets $pg_port, $pg_bin and $pg_url (database "bench").
start_postgres() {
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  [ -x "$pg_bin/initdb" ] || { echo "PostgreSQL is not installed: apt-get install postgresql" >&2; exit 1; }
  pg_port=$(free_port)
  local dir=$work/pg run=()
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chmod o+x "$work"; chown nobody "$dir"; run=(setpriv --reuid=65534 --regid=65534 --clear-groups --); fi
  "${run[@]}" "$pg_bin/initdb" -D "$dir/data" -U bench --auth=trust --locale=C -E UTF8 >/dev/null
  "${run[@]}" "$pg_bin/postgres" -D "$dir/data" -p "$pg_port" -c listen_addresses=127.0.0.1 -c unix_socket_directories="$dir" \
    -c shared_buffers=512MB -c max_connections=100 >"$work/pg.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break; sleep 0.1; done
  "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U bench bench
  pg_url="postgres://bench@127.0.0.1:$pg_port/bench?sslmode=disable"
}
pg_sql() { "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U bench -d bench -v ON_ERROR_STOP=1 -Atq "$@"; }

# Starts a server in $1 (keystores $2, cache $3, storage $4: default SQLite) and sets $port and $server_pid; writes
# $1/unwrap.lua for wrk. Not in a subshell: the server must outlive the function, and the
# EXIT trap belongs to the main shell.
start_keybroker() {
  local dir=$1
  port=$(free_port)
  mkdir -p "$dir"
  cat > "$dir/keybroker.yaml" <<YAML
server: { listen: 127.0.0.1:$port }
storage: ${4:-"{ sqlite: { path: data/keybroker.sqlite } }"}
keystores:
$2
defaults: { keystore: bench, rotation: never, keyPairSpec: RSA_3072 }
organizations: { bench: {} }
privateKeyCache: $3
audit: { destination: audit.log }
auth:
  tokens:
    - { name: bench, sha256: $hash, permissions: [recording:encrypt, recording:decrypt, encryption-key:view], orgs: ["*"] }
YAML
  "$bin" serve --config "$dir/keybroker.yaml" 2>"$dir/serve.log" &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/v1/orgs/bench/public-key" -H "Authorization: Bearer $token" > "$dir/public.json" 2>/dev/null && break
    sleep 0.1
  done
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); open(sys.argv[2],"w").write(d["publicKeyPEM"]); print(d["keyPair"]["id"])' "$dir/public.json" "$dir/public.pem" > "$dir/pair"
  head -c 32 /dev/urandom > "$dir/data.key"
  local wrapped
  wrapped=$(openssl pkeyutl -encrypt -pubin -inkey "$dir/public.pem" -in "$dir/data.key" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 | base64 -w0)
  cat > "$dir/unwrap.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"keyPairId":"$(cat "$dir/pair")","wrappedKey":"$wrapped"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA
  # One request to check the unwrap works (and returns the data key) before measuring it.
  curl -sf -X POST "http://127.0.0.1:$port/v1/orgs/bench/unwrap" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    --data "{\"keyPairId\":\"$(cat "$dir/pair")\",\"wrappedKey\":\"$wrapped\"}" \
    | python3 -c 'import base64,json,sys; sys.exit(0 if base64.b64decode(json.load(sys.stdin)["dataKey"]) == open(sys.argv[1],"rb").read() else 1)' "$dir/data.key" \
    || { echo "the unwrap in $dir does not return the data key; see $dir/serve.log" >&2; exit 1; }
}

local_keystore="  bench: { type: local-file, path: data/master.key, createIfMissing: true }"
