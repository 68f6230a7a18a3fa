#!/usr/bin/env bash
# fuzz.sh - run every Go fuzz target in the repository, one after another.
#
# Usage: scripts/fuzz.sh [-j N] [-r REGEX] DURATION [PKG...]
#
#   DURATION  passed to -fuzztime (e.g. 5s, 10m, 1000x)
#   PKG       package patterns (./protocol, ./servent/..., gnutella/transfer);
#             default ./... (every package)
#   -j N      run N targets at once (default 1)
#   -r REGEX  only the targets whose name matches REGEX (grep -E)
#
# It finds every `func FuzzXxx(f *testing.F)` in the packages' _test.go
# files and runs each with
#   go test -run '^$' -fuzz '^FuzzXxx$' -fuzztime DURATION \
#       -parallel ${FUZZ_PARALLEL:-1} PKG
# printing per target its exec count (from go's last "fuzz: elapsed: ...,
# execs: N" line) and its result, then a summary table. It exits 1 if any
# target failed, naming the crasher file (PKGDIR/testdata/fuzz/FuzzXxx/...),
# or failed to build or run (ERROR); 2 on bad usage. A target that fails
# with a bare "context deadline exceeded" at the end of -fuzztime and writes
# no input (a Go 1.26 coordinator race, go.dev/issue/75804) is run again, and
# if that happens twice it is reported as FLAKE without failing the run. Works from any directory (it cd's to the repository root).
#
# Environment: FUZZ_PARALLEL (fuzz workers per target, default 1),
# FUZZ_TIMEOUT (go test -timeout, default 0: go's fuzzer flags hanging
# inputs itself), FUZZ_LOG_DIR (keep each target's full output there;
# default a temporary directory removed at exit unless a target failed).
set -u -o pipefail

usage() {
	echo "usage: $0 [-j N] [-r REGEX] DURATION [PKG...]" >&2
	exit 2
}

jobs_max=1
filter=.
while getopts "j:r:h" opt; do
	case $opt in
	j) jobs_max=$OPTARG ;;
	r) filter=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[[ $# -ge 1 ]] || usage
[[ $jobs_max =~ ^[1-9][0-9]*$ ]] || usage
duration=$1
shift
pkgs=("$@")
[[ ${#pkgs[@]} -gt 0 ]] || pkgs=(./...)
parallel=${FUZZ_PARALLEL:-1}
timeout=${FUZZ_TIMEOUT:-0}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) || exit 2
root=$(cd "$script_dir/.." && pwd) || exit 2
cd "$root" || exit 2
[[ -f go.mod ]] || {
	echo "fuzz.sh: no go.mod in $root" >&2
	exit 2
}

keep_logs=0
if [[ -n ${FUZZ_LOG_DIR:-} ]]; then
	logdir=$FUZZ_LOG_DIR
	mkdir -p "$logdir" || exit 2
	keep_logs=1
else
	logdir=$(mktemp -d "${TMPDIR:-/tmp}/fuzz.XXXXXX") || exit 2
fi
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	if [[ $keep_logs -eq 0 ]]; then
		rm -rf "$logdir"
	fi
}
trap cleanup EXIT
trap 'echo "fuzz.sh: interrupted" >&2; kill $(jobs -p) 2>/dev/null; exit 130' INT TERM

# Targets as "DIR TARGET" lines, DIR relative to the root.
mapfile -t dirs < <(go list -f '{{.Dir}}' "${pkgs[@]}") || exit 2
targets=()
for dir in "${dirs[@]}"; do
	rel=./${dir#"$root"/}
	[[ $dir == "$root" ]] && rel=.
	shopt -s nullglob
	files=("$dir"/*_test.go)
	shopt -u nullglob
	[[ ${#files[@]} -gt 0 ]] || continue
	while read -r name; do
		targets+=("$rel $name")
	done < <(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(f \*testing\.F).*/\1/p' "${files[@]}" | sort -u | grep -E -- "$filter")
done
if [[ ${#targets[@]} -eq 0 ]]; then
	echo "fuzz.sh: no fuzz targets in ${pkgs[*]}" >&2
	exit 2
fi
echo "fuzz.sh: ${#targets[@]} targets, -fuzztime $duration, -parallel $parallel, $jobs_max at a time"

# run_one IDX DIR TARGET: fuzz one target, writing its output to
# $logdir/IDX.log and "RESULT EXECS CRASHER" to $logdir/IDX.res.
run_one() {
	local idx=$1 dir=$2 name=$3 log=$logdir/$1.log res execs crasher rc try
	for try in 1 2; do
		go test -run '^$' -fuzz "^${name}\$" -fuzztime "$duration" \
			-parallel "$parallel" -timeout "$timeout" "$dir" >"$log" 2>&1
		rc=$?
		# Go 1.26's coordinator can fail a target at the -fuzztime boundary
		# with a bare "context deadline exceeded" and no input written
		# (go.dev/issue/75804): run such a target once more.
		if [[ $rc -ne 0 ]] && ! grep -q 'Failing input written to' "$log" &&
			grep -q '^    context deadline exceeded$' "$log"; then
			if [[ $try -eq 1 ]]; then
				echo "fuzz.sh: $dir $name: deadline race at the end of -fuzztime, no input written; running it again" >&2
				continue
			fi
			rc=75 # twice: reported as FLAKE, not as a failure
		fi
		break
	done
	execs=$(grep -o 'fuzz: elapsed: [^,]*, execs: [0-9]*' "$log" | tail -n 1 | sed 's/.*execs: //')
	[[ -n $execs ]] || execs=-
	crasher=$(sed -n 's/.*Failing input written to \(testdata\/fuzz\/[^ ]*\).*/\1/p' "$log" | tail -n 1)
	if [[ $rc -eq 0 ]]; then
		res=ok
	elif [[ $rc -eq 75 ]]; then
		res=FLAKE
	elif [[ -n $crasher ]]; then
		res=FAIL
		crasher=${dir#./}/$crasher
		crasher=${crasher#./}
	else
		res=ERROR
	fi
	[[ -n $crasher ]] || crasher=-
	echo "$res $execs $crasher" >"$logdir/$idx.res"
	printf '%-40s %-8s execs=%-12s %s\n' "$dir $name" "$res" "$execs" \
		"$([[ $crasher != - ]] && echo "crasher: $crasher")"
	if [[ $res != ok && $res != FLAKE ]]; then
		sed 's/^/    | /' "$log" | tail -n 40
	fi
}

running=0
for i in "${!targets[@]}"; do
	read -r dir name <<<"${targets[$i]}"
	if [[ $jobs_max -eq 1 ]]; then
		run_one "$i" "$dir" "$name"
		continue
	fi
	run_one "$i" "$dir" "$name" &
	running=$((running + 1))
	if [[ $running -ge $jobs_max ]]; then
		wait -n
		running=$((running - 1))
	fi
done
wait

failed=0
echo
echo "Summary (-fuzztime $duration):"
printf '%-4s %-24s %-30s %-6s %12s  %s\n' "#" "PACKAGE" "TARGET" "RESULT" "EXECS" "CRASHER"
for i in "${!targets[@]}"; do
	read -r dir name <<<"${targets[$i]}"
	res=ERROR execs=- crasher=-
	if [[ -f $logdir/$i.res ]]; then
		read -r res execs crasher <"$logdir/$i.res"
	fi
	[[ $res == ok || $res == FLAKE ]] || failed=$((failed + 1))
	printf '%-4s %-24s %-30s %-6s %12s  %s\n' "$((i + 1))" "$dir" "$name" "$res" "$execs" \
		"$([[ $crasher != - ]] && echo "$crasher")"
done
echo "${#targets[@]} targets, $failed failed"
if [[ $failed -gt 0 ]]; then
	keep_logs=1
	echo "full logs kept in $logdir"
	exit 1
fi
exit 0
