#!/usr/bin/env bash
# Fetch and push of one large blob against a local CNCF distribution
# registry (Debian's docker-registry), next to independent peers in the
# same run, interleaved:
#   fetch: repropack fetch (hash while streaming, fsync, rename into the
#          cache)  vs  curl -o FILE BLOB_URL && sha256sum FILE
#   push:  repropack push  vs  the ORAS Python SDK's push (if a venv with
#          `oras` is given as ORAS_PYTHON) and skopeo copy dir: → docker://
# Usage: benches/oci_registry.sh [SIZE_MIB] [RUNS]   (default 1024, 3)
# Needs a release build (cargo build --release) and docker-registry, curl,
# skopeo on PATH. Prints one line per run and the median ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
RUNS=${2:-3}
BIN=${REPROPACK_BIN:-${CARGO_TARGET_DIR:-target}/release/repropack}
WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/oci-bench.XXXXXX")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
cleanup() { [ -n "${RPID:-}" ] && kill "$RPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$WORK/storage"
cat > "$WORK/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/storage
  delete:
    enabled: true
http:
  addr: $REG
YML
docker-registry serve "$WORK/config.yml" >"$WORK/registry.log" 2>&1 &
RPID=$!
for _ in $(seq 100); do curl -fs "http://$REG/v2/" >/dev/null && break; sleep 0.1; done
head -c "$((SIZE_MIB << 20))" /dev/urandom > "$WORK/big.tar"
REF=$("$BIN" push "$WORK/big.tar" "oci://$REG/bench/src:v1")
HEX=${REF##*sha256=}
URL="http://$REG/v2/bench/src/blobs/sha256:$HEX"
# skopeo's source, a dir: layout written by hand so that skopeo has no
# record of where the blob already is (it would mount it instead of
# uploading); each skopeo target's blob link is deleted after its run for
# the same reason.
SRC=$WORK/skopeo-src
mkdir "$SRC"
printf 'Directory Transport Version: 1.1\n' > "$SRC/version"
curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -o "$SRC/manifest.json" "http://$REG/v2/bench/src/manifests/v1"
ln "$WORK/big.tar" "$SRC/$HEX"
printf '{}' > "$SRC/44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
ours_f=(); peer_f=(); ours_p=(); oras_p=(); skopeo_p=()
for i in $(seq "$RUNS"); do
    rm -rf "$WORK/cache" "$WORK/curl.out"; sync
    t0=$(now); "$BIN" fetch "$REF" --cache "$WORK/cache" >/dev/null; t1=$(now)
    ours_f+=("$(secs "$t0" "$t1")")
    rm -rf "$WORK/cache"; sync
    t0=$(now); curl -fsS -o "$WORK/curl.out" "$URL"; sha256sum "$WORK/curl.out" >/dev/null; t1=$(now)
    peer_f+=("$(secs "$t0" "$t1")")
    rm -f "$WORK/curl.out"; sync
    t0=$(now); "$BIN" push "$WORK/big.tar" "oci://$REG/bench/ours$i:v1" >/dev/null; t1=$(now)
    ours_p+=("$(secs "$t0" "$t1")")
    if [ -n "${ORAS_PYTHON:-}" ]; then
        t0=$(now)
        (cd "$WORK" && "$ORAS_PYTHON" -c "import sys, oras.client; oras.client.OrasClient(insecure=True).push(target=sys.argv[1], files=['big.tar'])" "$REG/bench/oras$i:v1" >/dev/null)
        t1=$(now); oras_p+=("$(secs "$t0" "$t1")")
    fi
    t0=$(now); skopeo copy -q --dest-tls-verify=false "dir:$SRC" "docker://$REG/bench/skopeo$i:v1"; t1=$(now)
    skopeo_p+=("$(secs "$t0" "$t1")")
    curl -fsS -X DELETE "http://$REG/v2/bench/skopeo$i/blobs/sha256:$HEX" >/dev/null
    echo "run $i: fetch repropack ${ours_f[-1]} s, curl+sha256sum ${peer_f[-1]} s; push repropack ${ours_p[-1]} s, oras ${oras_p[-1]:--} s, skopeo ${skopeo_p[-1]} s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mf=$(median "${ours_f[@]}"); pf=$(median "${peer_f[@]}")
mp=$(median "${ours_p[@]}"); sp=$(median "${skopeo_p[@]}")
echo "size ${SIZE_MIB} MiB, ${RUNS} runs, medians:"
echo "fetch: repropack $mf s, curl -o + sha256sum $pf s, ratio $(python3 -c "print(f'{$mf/$pf:.2f}')")x"
echo "push:  repropack $mp s, skopeo copy $sp s, ratio $(python3 -c "print(f'{$mp/$sp:.2f}')")x"
if [ ${#oras_p[@]} -gt 0 ]; then
    op=$(median "${oras_p[@]}")
    echo "push:  ORAS Python SDK $op s, ratio $(python3 -c "print(f'{$mp/$op:.2f}')")x"
fi
