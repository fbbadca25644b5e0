#!/usr/bin/env bash
# aarch64 smoke test: `python -m edge_runtime --json` on real images from ../shared/data, run by Debian's arm64
# Python 3.11 (the Python of Raspberry Pi OS Bookworm) under qemu-user-static with the aarch64 wheels of numpy,
# Pillow and ai-edge-litert, once per Pi CPU profile; checks that every label equals the x86 run's and every
# P(ai) agrees within the model variant's tolerance, and prints the wall times (of emulation: they say nothing
# about a real Pi's speed).
#
#   bash benchmarks/aarch64_smoke.sh   # needs qemu-user-static (installed when run as root), apt-get and pip;
#                                      # the first run downloads from Debian's mirror and PyPI, then all is cached
#   bash benchmarks/aarch64_smoke.sh --model paper   # a bundled model by name (or a .tflite path)
#
# Environment:
#   DATA          the dataset (default ../shared/data)
#   AARCH64_WORK  sysroot, wheels and outputs, kept between runs (default build/aarch64)
#   AARCH64_IMAGES  how many images (default 8: the first of each source, AI and human alternately)
#   AARCH64_CPUS  qemu CPU models (default "cortex-a72 cortex-a76": Pi 4 and Pi 5)
#   AARCH64_TTA   always (default: every test-time view of every image is compared), adaptive or never
#   AARCH64_MODEL the model both runs use, as edge_runtime's --model (default: default); --model NAME wins
#   TOLERANCE     largest |P(ai) difference| allowed (default 0.02 for an int8 model, 0.002 otherwise)
#   PY            the x86 Python with the project installed (default .venv/bin/python, else python3)
# Labels are the model's (--ignore-metadata), so a file's generator metadata cannot make them agree.
#
# Nothing arm64 is installed system-wide: apt, with a private state folder and arm64 as its only architecture,
# downloads the arm64 .debs, which are unpacked into a sysroot that qemu is pointed at with -L. Two things the
# run needs (../shared/notes/aarch64-qemu.md): a pinned CPU model (qemu's default "max" CPU makes LiteRT answer
# wrongly, with exit status 0), and an ARM /proc/cpuinfo in the sysroot (LiteRT's CPU detection crashes on the
# host's x86 one).
set -euo pipefail

MODEL=${AARCH64_MODEL:-default}
while [ $# -gt 0 ]; do
    case $1 in
        --model) [ $# -ge 2 ] || { echo "aarch64_smoke: --model needs a name or path" >&2; exit 2; }
                 MODEL=$2; shift 2 ;;
        *) echo "usage: bash benchmarks/aarch64_smoke.sh [--model NAME_OR_PATH]" >&2; exit 2 ;;
    esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
DATA=${DATA:-$REPO/../shared/data}
WORK=${AARCH64_WORK:-$REPO/build/aarch64}
IMAGES=${AARCH64_IMAGES:-8}
TTA=${AARCH64_TTA:-always}
CPUS=${AARCH64_CPUS:-cortex-a72 cortex-a76}
PY=${PY:-$REPO/.venv/bin/python}
[ -x "$PY" ] || PY=python3
if ! "$PY" -c "import edge_runtime.detector" 2>/dev/null; then
    echo "aarch64_smoke: $PY cannot run edge_runtime; set PY, or: make venv-edge" >&2
    exit 1
fi
SYSROOT=$WORK/sysroot
OUT=$WORK/out
QEMU=qemu-aarch64-static
# Debian bookworm's arm64 Python 3.11 and the shared libraries it and the wheels load.
DEBS="python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libgcc-s1 libstdc++6 zlib1g libexpat1
      libssl3 libffi8 libbz2-1.0 liblzma5 libsqlite3-0 libncursesw6 libtinfo6 libreadline8 libuuid1 libcrypt1
      libdb5.3 libnsl2 libtirpc3 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libcom-err2 libkeyutils1"

step() { printf '== %s\n' "$*" >&2; }

start=$(date +%s)
mkdir -p "$WORK" "$OUT"

if ! command -v "$QEMU" >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "aarch64_smoke: $QEMU is missing: sudo apt-get install -y qemu-user-static" >&2
        exit 1
    fi
    step "installing qemu-user-static"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
fi

if [ ! -x "$SYSROOT/usr/bin/python3.11" ]; then
    step "arm64 sysroot from Debian's packages: $SYSROOT"
    # apt with its own state under $WORK and arm64 as its only architecture: the machine's sources, nothing
    # arm64 added to dpkg or installed system-wide, no root needed.
    rm -rf "$WORK/apt" "$SYSROOT.tmp"
    mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/cache/archives/partial" "$WORK/apt/debs" "$SYSROOT.tmp"
    apt_arm64=(apt-get -qq -o "Dir::State::Lists=$WORK/apt/lists" -o "Dir::Cache=$WORK/apt/cache"
               -o "Dir::State::status=/dev/null" -o APT::Architecture=arm64 -o APT::Architectures::=arm64
               -o APT::Sandbox::User="$(id -un)")
    "${apt_arm64[@]}" update
    (cd "$WORK/apt/debs" && "${apt_arm64[@]}" download $DEBS)
    for deb in "$WORK"/apt/debs/*.deb; do dpkg -x "$deb" "$SYSROOT.tmp"; done
    # An ARM /proc/cpuinfo (qemu -L serves it from the sysroot): four Cortex-A72 cores, as on a Pi 4.
    mkdir -p "$SYSROOT.tmp/proc"
    for core in 0 1 2 3; do
        printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n' "$core"
        printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\n'
        printf 'CPU part\t: 0xd08\nCPU revision\t: 3\n\n'
    done > "$SYSROOT.tmp/proc/cpuinfo"
    rm -rf "$SYSROOT" && mv "$SYSROOT.tmp" "$SYSROOT"
fi

# The same versions of the runtime's packages as the x86 run, as aarch64 wheels for CPython 3.11.
versions=$("$PY" - <<'EOF'
import importlib.metadata as m
names = ["numpy", "pillow"]
for runtime in ("ai-edge-litert", "tflite-runtime"):
    try:
        m.version(runtime)
        names.append(runtime)
        break
    except m.PackageNotFoundError:
        pass
print(" ".join(f"{name}=={m.version(name)}" for name in names))
EOF
)
WHEELS=$WORK/wheels/$(echo "$versions" | tr ' =' '_-')
if [ ! -f "$WHEELS/.complete" ]; then
    step "aarch64 wheels: $versions"
    rm -rf "$WHEELS"
    if ! "$PY" -m pip install -q --disable-pip-version-check --no-warn-conflicts --target "$WHEELS" \
            --platform manylinux_2_27_aarch64 --python-version 3.11 --implementation cp --abi cp311 \
            --only-binary=:all: $versions > "$WORK/pip.log" 2>&1; then
        cat "$WORK/pip.log" >&2
        exit 1
    fi
    touch "$WHEELS/.complete"
fi

# A handful of real images: the first of each source in the manifest, AI and human alternately, every format.
"$PY" - "$DATA" "$IMAGES" > "$OUT/images.txt" <<'EOF'
import csv, sys
from pathlib import Path
data, count = Path(sys.argv[1]), int(sys.argv[2])
with open(data / "manifest.csv", newline="") as f:
    rows = list(csv.DictReader(f))
firsts = {}
for row in rows:
    firsts.setdefault((row["label"], row["source"]), row)
by_label = {label: [r for (l, _), r in firsts.items() if l == label] for label in ("ai", "human")}
picked = [r for pair in zip(by_label["ai"], by_label["human"]) for r in pair][:count]
for row in picked:
    print(data / row["path"])
EOF
mapfile -t images < "$OUT/images.txt"
setup_s=$(( $(date +%s) - start ))

step "x86_64 reference: $("$PY" -c 'import platform; print(platform.python_version())'), $versions"
t0=$(date +%s%N)
"$PY" -m edge_runtime --json --model "$MODEL" --tta "$TTA" --ignore-metadata "${images[@]}" > "$OUT/x86_64.jsonl"
x86_ms=$(( ($(date +%s%N) - t0) / 1000000 ))

runs=()
for cpu in $CPUS; do
    about='import platform as p; print(p.machine(), "Python", p.python_version(), "glibc", p.libc_ver()[1])'
    step "aarch64 under qemu ($cpu): $(QEMU_CPU=$cpu $QEMU -L "$SYSROOT" "$SYSROOT/usr/bin/python3.11" -c "$about")"
    t0=$(date +%s%N)
    QEMU_CPU=$cpu PYTHONPATH="$WHEELS:$REPO" PYTHONNOUSERSITE=1 \
        $QEMU -L "$SYSROOT" "$SYSROOT/usr/bin/python3.11" -m edge_runtime --json --model "$MODEL" --tta "$TTA" \
        --ignore-metadata \
        "${images[@]}" \
        > "$OUT/aarch64-$cpu.jsonl"
    runs+=("$cpu=$(( ($(date +%s%N) - t0) / 1000000 ))")
done

"$PY" - "$OUT" "${TOLERANCE:-}" "$setup_s" "$x86_ms" "${runs[@]}" <<'EOF'
import json, sys
from pathlib import Path
out, tolerance, setup_s, runs = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[5:]
x86_s = int(sys.argv[4]) / 1000
read = lambda path: [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
x86 = read(out / "x86_64.jsonl")
variant = x86[0].get("variant", "?")
tol = float(tolerance) if tolerance else (0.02 if variant == "int8" else 0.002)
print(f"model {x86[0].get('model_version')} ({variant}), {len(x86)} images, TTA {x86[0].get('tta')}, "
      f"tolerance |dP(ai)| <= {tol} on P(ai) and on every view")
failures = 0
for run in runs:
    cpu, ms = run.split("=")
    arm = read(out / f"aarch64-{cpu}.jsonl")
    print(f"\naarch64 {cpu}: {int(ms) / 1000:.1f} s wall for {len(arm)} images in one process "
          f"(x86_64: {x86_s:.1f} s)")
    width = max(len("/".join(Path(r["path"]).parts[-3:])) for r in x86)
    print(f"  {'image':<{width}} {'x86 label':<9} {'arm label':<9} {'x86 P(ai)':>10} {'arm P(ai)':>10} {'|diff|':>8}")
    if [r["path"] for r in arm] != [r["path"] for r in x86]:
        print("  FAIL: the runs did not answer for the same images")
        failures += 1
        continue
    worst = 0.0
    for a, b in zip(x86, arm):
        diffs = [abs(a["probability"] - b["probability"])]
        diffs += [abs(p - b["view_probabilities"][v]) for v, p in a["view_probabilities"].items()
                  if v in b.get("view_probabilities", {})]
        bad = a["label"] != b["label"] or max(diffs) > tol or not b["ok"]
        worst = max(worst, *diffs)
        failures += bad
        name = "/".join(Path(a["path"]).parts[-3:])
        print(f"  {name:<{width}} {a['label']:<9} {b['label']:<9} {a['probability']:>10.6f} {b['probability']:>10.6f} "
              f"{max(diffs):>8.6f}{'  FAIL' if bad else ''}")
    print(f"  largest |dP(ai)| over all views: {worst:.6f}")
print(f"\nsetup {setup_s} s (0 when the sysroot and wheels are cached)")
print("PASS: labels equal, probabilities within tolerance" if not failures else f"FAIL: {failures} mismatches")
sys.exit(1 if failures else 0)
EOF
