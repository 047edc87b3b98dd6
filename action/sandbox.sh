#!/usr/bin/env bash
# The GitHub Action's work (action.yml at the repository's root calls it):
# downloads a released `tokportal`, pinned by version and checked against its
# `.sha256`, starts `tokportal sandbox` in the background, waits until it
# answers GET /_sandbox/health as a sandbox, and hands its address to the
# job's later steps (TOKPORTAL_BASE_URL in $GITHUB_ENV, the `base-url`,
# `pid` and `log` outputs, the binary's folder on $GITHUB_PATH).
#
# Its inputs come as environment variables, never spliced into the script:
#   INPUT_VERSION     the release, 1.2.3 (required; no `latest`, no `v`)
#   INPUT_PORT        the port, 0 for a free one (8787)
#   INPUT_STATE       a SQLite state file (--state)
#   INPUT_FIXTURES    fixture files, one a line (--fixtures, each)
#   INPUT_CREDITS     credits each new key starts with (--credits)
#   INPUT_FAULT_RATE  a share of requests answered with a fault (--fault-rate)
#   INPUT_SEED        the seed of those faults (--seed)
#   INPUT_CLOCK       `frozen` (standing still now) or an RFC 3339 time:
#                     INPUT_API_KEY's clock, set once the sandbox answers
#   INPUT_API_KEY     the key the clock is set for (sk_test_sandbox)
# and the runner's: RUNNER_OS, RUNNER_ARCH, RUNNER_TEMP, GITHUB_ENV,
# GITHUB_OUTPUT, GITHUB_PATH. TOKPORTAL_RELEASE_BASE_URL replaces the
# releases' address (a mirror, or the tests' server on 127.0.0.1); the
# archive is still checked against the `.sha256` found there.
set -euo pipefail

# A failure as the runner's error annotation: %, CR and LF escaped as it
# reads them, so that no input can start a workflow command of its own.
fail() {
  local message=${1//%/%25}
  message=${message//$'\r'/%0D}
  message=${message//$'\n'/%0A}
  echo "::error title=tokportal sandbox::$message" >&2
  exit 1
}

# --- The inputs, checked before anything is fetched or started.
version=${INPUT_VERSION:-}
port=${INPUT_PORT:-8787}
state=${INPUT_STATE:-}
fixtures=${INPUT_FIXTURES:-}
credits=${INPUT_CREDITS:-}
fault_rate=${INPUT_FAULT_RATE:-}
seed=${INPUT_SEED:-}
clock=${INPUT_CLOCK:-}
api_key=${INPUT_API_KEY:-sk_test_sandbox}

[[ -n $version ]] || fail "the input \`version\` is required: a released version such as 0.2.0"
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] \
  || fail "the input \`version\` ($version) is not a version such as 0.2.0: pin a release (no \`latest\`, no leading v)"
if ! [[ $port =~ ^[0-9]{1,5}$ ]] || ((10#$port > 65535)); then
  fail "the input \`port\` ($port) is not a port number (0 to 65535; 0 takes a free one)"
fi
port=$((10#$port))
[[ -z $credits || $credits =~ ^[0-9]+(\.[0-9]+)?$ ]] \
  || fail "the input \`credits\` ($credits) is not a number of credits such as 1000"
[[ -z $fault_rate || $fault_rate =~ ^(0(\.[0-9]+)?|1(\.0+)?|\.[0-9]+)$ ]] \
  || fail "the input \`fault-rate\` ($fault_rate) is not a share between 0 and 1 such as 0.1"
[[ -z $seed || $seed =~ ^[0-9]{1,19}$ ]] \
  || fail "the input \`seed\` ($seed) is not a whole number"
[[ $api_key =~ ^sk_[A-Za-z0-9_-]{1,253}$ ]] \
  || fail "the input \`api-key\` is not a sandbox key: \`sk_\` followed by letters, digits, \`_\` or \`-\`"
[[ $state != *$'\n'* && $state != *$'\r'* ]] \
  || fail "the input \`state\` is a path with a line break in it"
case $clock in
  "" | frozen) ;;
  *)
    [[ $clock =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$ ]] \
      || fail "the input \`clock\` ($clock) is neither \`frozen\` nor an RFC 3339 time such as 2026-06-01T00:00:00Z"
    ;;
esac
fixture_args=()
while IFS= read -r line; do
  line=${line#"${line%%[![:space:]]*}"}
  line=${line%"${line##*[![:space:]]}"}
  [[ -z $line ]] && continue
  fixture_args+=(--fixtures "$line")
done <<<"$fixtures"
for needed in RUNNER_TEMP GITHUB_ENV GITHUB_OUTPUT GITHUB_PATH; do
  [[ -n ${!needed:-} ]] || fail "$needed is not set: this script runs as a step of a GitHub Actions job"
done

# --- The release archive of this runner.
exe=""
archive_ext="tar.gz"
case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
  Linux/X64) target=x86_64-unknown-linux-gnu ;;
  Linux/ARM64) target=aarch64-unknown-linux-gnu ;;
  macOS/X64) target=x86_64-apple-darwin ;;
  macOS/ARM64) target=aarch64-apple-darwin ;;
  Windows/X64)
    target=x86_64-pc-windows-msvc
    archive_ext=zip
    exe=.exe
    ;;
  *) fail "no tokportal release is built for ${RUNNER_OS:-an unknown OS} on ${RUNNER_ARCH:-an unknown architecture} (there are Linux and macOS on X64 and ARM64, and Windows on X64)" ;;
esac
name="tokportal-v$version-$target"
asset="$name.$archive_ext"
base=${TOKPORTAL_RELEASE_BASE_URL:-https://github.com/tokportal/tokportal-rs/releases/download}
base=${base%/}
curl_args=(--fail --silent --show-error --location --retry 3 --connect-timeout 20 --max-time 600)
if [[ -z ${TOKPORTAL_RELEASE_BASE_URL:-} ]]; then
  # GitHub's releases, and every redirect from them, over HTTPS only.
  curl_args+=(--proto "=https" --proto-redir "=https")
fi

work="$RUNNER_TEMP/tokportal-action"
mkdir -p "$work"
download=$(mktemp -d "$work/download.XXXXXX")
echo "Downloading $asset (tokportal v$version)"
curl "${curl_args[@]}" --output "$download/$asset" "$base/v$version/$asset" \
  || fail "could not download $base/v$version/$asset: is v$version released, with an archive for $target?"
curl "${curl_args[@]}" --output "$download/$asset.sha256" "$base/v$version/$asset.sha256" \
  || fail "could not download $base/v$version/$asset.sha256, the archive's checksum: nothing is run unchecked"

# --- The checksum: `shasum -a 256` wrote "HASH  NAME" (or "HASH *NAME").
read -r expected listed _ <"$download/$asset.sha256" || true
[[ ${expected:-} =~ ^[0-9a-fA-F]{64}$ ]] \
  || fail "$asset.sha256 does not hold a SHA-256 (64 hexadecimal digits): nothing is run unchecked"
[[ ${listed#\*} == "$asset" ]] \
  || fail "$asset.sha256 is the checksum of ${listed:-no file}, not of $asset: nothing is run unchecked"
if command -v sha256sum >/dev/null 2>&1; then
  actual=$(sha256sum "$download/$asset" | cut -d' ' -f1)
else
  actual=$(shasum -a 256 "$download/$asset" | cut -d' ' -f1)
fi
# Compared in lower case: the sum is hexadecimal, whoever wrote it.
lower() { tr '[:upper:]' '[:lower:]' <<<"$1"; }
if [[ $(lower "$actual") != "$(lower "$expected")" ]]; then
  rm -rf "$download"
  fail "$asset does not match its .sha256 (expected $expected, got $actual): refused, nothing was started"
fi
echo "Checked $asset against $asset.sha256 ($actual)"

# --- Unpacked beside the other runs of this job, then started.
rm -rf "${work:?}/$name"
case $archive_ext in
  tar.gz) tar -xzf "$download/$asset" -C "$work" ;;
  zip)
    if command -v unzip >/dev/null 2>&1; then unzip -q -o "$download/$asset" -d "$work"; else 7z x -y -bd "-o$work" "$download/$asset" >/dev/null; fi
    ;;
esac
rm -rf "$download"
bin_dir="$work/$name"
binary="$bin_dir/tokportal$exe"
[[ -f $binary ]] || fail "$asset holds no $name/tokportal$exe"
chmod +x "$binary"

args=(sandbox --port "$port")
[[ -n $state ]] && args+=(--state "$state")
# (Spelled so for macOS's bash 3.2, where an empty array is unset.)
args+=(${fixture_args[@]+"${fixture_args[@]}"})
[[ -n $credits ]] && args+=(--credits "$credits")
[[ -n $fault_rate ]] && args+=(--fault-rate "$fault_rate")
[[ -n $seed ]] && args+=(--seed "$seed")

run=$(mktemp -d "$work/sandbox.XXXXXX")
log="$run/sandbox.log"
echo "Starting tokportal ${args[*]}"
nohup "$binary" "${args[@]}" >"$log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$run/sandbox.pid"

stop() {
  kill "$pid" 2>/dev/null || true
  echo "--- the sandbox's log ($log):" >&2
  cat "$log" >&2 || true
}

# --- Ready: it printed `listening on URL`, and URL/_sandbox/health answers
# as a sandbox. At most 300 tries, 0.1 s apart (about 30 s).
url=""
ready=""
for _ in $(seq 1 300); do
  if ! kill -0 "$pid" 2>/dev/null; then
    stop
    fail "tokportal sandbox stopped before it was ready (its log is above)"
  fi
  if [[ -z $url ]]; then
    while IFS= read -r line; do
      line=${line%$'\r'}
      if [[ $line == "listening on http://"* ]]; then
        url=${line#listening on }
        break
      fi
    done <"$log"
  fi
  if [[ -n $url ]]; then
    health=$(curl --silent --fail --max-time 2 "$url/_sandbox/health" 2>/dev/null || true)
    if [[ $health == *'"sandbox":true'* ]]; then
      ready=yes
      break
    fi
  fi
  sleep 0.1
done
if [[ -z $ready ]]; then
  stop
  fail "tokportal sandbox did not answer ${url:-anything}/_sandbox/health within 30 s (its log is above)"
fi

# --- The clock of the key, through the sandbox's own command (the key in
# the environment, never on a command line).
if [[ -n $clock ]]; then
  clock_args=(sandbox clock set --base-url "$url")
  [[ $clock != frozen ]] && clock_args+=(--at "$clock")
  if ! TOKPORTAL_API_KEY=$api_key "$binary" "${clock_args[@]}"; then
    stop
    fail "the clock could not be set to $clock (the sandbox's answer is above)"
  fi
fi

# --- For the later steps (on Windows, the runner reads Windows paths).
if [[ -n $exe ]] && command -v cygpath >/dev/null 2>&1; then
  bin_dir=$(cygpath -w "$bin_dir")
  log=$(cygpath -w "$log")
fi
echo "TOKPORTAL_BASE_URL=$url" >>"$GITHUB_ENV"
{
  echo "base-url=$url"
  echo "pid=$pid"
  echo "log=$log"
} >>"$GITHUB_OUTPUT"
echo "$bin_dir" >>"$GITHUB_PATH"
echo "tokportal sandbox v$version is listening on $url (pid $pid, log $log); TOKPORTAL_BASE_URL is set for the next steps"
echo "try: TOKPORTAL_API_KEY=sk_test_sandbox tokportal get-current-user"
