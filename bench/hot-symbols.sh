#!/bin/sh
# Rewrites bench/hot-symbols.txt, the order in which the release link lays out repro's code.
#
# Why: the kernel maps an installed binary's code in large page-cache folios, so a fault on one
# function makes the megabytes around it resident. Laid out in link order, the ~2 MB of code
# repro actually runs is spread over the whole 24 MB text: a 10,000-point sweep had ~23 MB of
# code resident. Laid out first and together (lld's --symbol-ordering-file, see Package.swift),
# ~8 MB. The list is the functions that ran (callgrind) in everyday commands, the cache hit's
# first. Stale or missing names are harmless (the link ignores them; a function not listed is
# only laid out with the cold code), so rerun this after large changes, not every commit.
#   bench/hot-symbols.sh      (needs valgrind; ~1 min after the release build)
set -eu
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
[ -x /opt/swift/usr/bin/swift ] && PATH="/opt/swift/usr/bin:$PATH"
command -v valgrind >/dev/null || { echo "hot-symbols.sh: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
swift build -c release --static-swift-stdlib --product repro >&2
BIN="$(swift build -c release --static-swift-stdlib --show-bin-path)"
WORK="$(mktemp -d /tmp/repro-hot.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
# valgrind cannot read the DWARF 5 debug info; the symbol table is enough.
strip --strip-debug -o "$WORK/repro" "$BIN/repro"
R="$WORK/repro"
mkdir "$WORK/w" && cd "$WORK/w"
git init -q -b main . && git config user.email hot@example.org && git config user.name hot
printf 'name: hot-true\ncommand: [/bin/true]\nseed: 1\nsolver: {rtol: 1e-6, atol: 1e-9}\n' > true.yaml
printf 'name: hot-point\ncommand: [true]\nparams: {i: 0}\nseed: 1\n' > point.yaml
python3 -c 'print("base: point.yaml\ngrid: {params.i: [%s]}" % ", ".join(map(str, range(1000))))' > sweep1k.yaml
python3 -c 'print("base: point.yaml\ngrid: {params.i: [%s]}" % ", ".join(map(str, range(5000, 5300))))' > sweepnew.yaml
git add . && git commit -qm hot
"$R" run true.yaml >/dev/null 2>&1
N=0
profile() {
  N=$((N + 1))
  valgrind --tool=callgrind --demangle=no -q --callgrind-out-file="$WORK/cg.$N" "$R" "$@" >/dev/null 2>&1 || true
}
profile run true.yaml                       # the cache hit first: its code is laid out first
profile --version
sqlite3 .repro/store.sqlite "UPDATE runs SET invalidated_reason = 'hot' WHERE invalidated_reason IS NULL"
profile run true.yaml                       # a miss
profile run --no-cache true.yaml
profile sweep sweepnew.yaml --jobs 2        # a sweep that runs its points
"$R" sweep sweep1k.yaml >/dev/null 2>&1
profile sweep sweep1k.yaml                  # a no-op sweep
profile sweep sweep1k.yaml --dry-run
profile hooks install
git commit -q --allow-empty -m another
profile cache refresh --hook post-commit --
profile status
profile log
profile cache status
profile audit true.yaml
profile run --help
profile run missing.yaml
cd "$ROOT"
python3 - "$WORK" "$N" > bench/hot-symbols.txt <<'PY'
import re, sys
work, count = sys.argv[1], int(sys.argv[2])
seen = {}
for k in range(1, count + 1):
    objects, functions, current = {}, {}, None
    for line in open(f"{work}/cg.{k}", errors="replace"):
        m = re.match(r"^(c?)(ob|fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not m:
            continue
        callee, kind, ident, name = m.groups()
        table = objects if kind == "ob" else functions
        if name is not None:
            table[ident] = name
        if callee:
            continue
        if kind == "ob":
            current = objects.get(ident)
        elif current == f"{work}/repro":
            fn = re.sub(r"'\d+$", "", functions.get(ident, ""))  # callgrind's recursion suffix
            if fn and not fn.startswith(("0x", "(")) and fn not in seen:
                seen[fn] = True
print("\n".join(seen))
PY
echo "bench/hot-symbols.txt: $(wc -l < bench/hot-symbols.txt) functions" >&2
