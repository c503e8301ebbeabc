# passim-batch.sh — sourced (not run) by the contrib wrappers: apt-passim, dnf-passim,
# passim-ci-fetch. Queue files by sha256, fetch the whole queue with ONE
# `passim fetch --from - -o STAGE --json` (LAN peers first, then each file's URL; every file
# verified; passim publishes what it fetched to the local daemon), move each file into place, and
# fetch whatever passim did not deliver (passim missing, too old for --from, or a file it could not
# get) with curl + sha256sum instead. Nothing unverified ever gets a final name.
#
#   pb_init ME                 once, first: a temp dir and an EXIT trap (pb_on_exit PATH adds
#                              paths the trap removes; call pb_cleanup yourself before `exec`)
#   pb_verified SHA256 PATH    true if PATH is a file with that sha256
#   pb_add SHA256 URL PATH     queue a file for PATH (its directory is created when it arrives)
#   pb_run [STAGE_PARENT]      fetch the queue: each PATH that arrived on stdout, in queue order;
#                              pb_count = how many; returns 0, 4 when some source served wrong
#                              bytes for a file, else 1 when some file could not be fetched.
#                              STAGE_PARENT (default: the first PATH's directory) holds the
#                              staging dir; on the same file system as the PATHs a move is a rename.
# Two queued files with the same basename cannot share the one staging dir: the second comes by curl.
# Env: PASSIM (the command, default passim), PASSIM_FETCH_ARGS (extra words for `passim fetch`),
# pb_fetch_args (the same, set by the wrapper), PASSIM_CDN_CA (extra CA PEM for the URLs, curl too).
# shellcheck shell=sh

pb_init() {
  pb_me=$1
  pb_passim=${PASSIM:-passim}
  pb_have_passim=false
  command -v "$pb_passim" >/dev/null 2>&1 && pb_have_passim=true
  pb_tab=$(printf '\t')
  pb_tmp=$(mktemp -d "${TMPDIR:-/tmp}/$pb_me.XXXXXX")
  pb_queue=$pb_tmp/queue
  : >"$pb_queue"
  pb_extra_paths=
  pb_count=0
  pb_fetch_args=${pb_fetch_args:-}
  trap pb_cleanup EXIT
  trap 'pb_cleanup; trap - EXIT; exit 130' INT TERM
}

pb_on_exit() {
  pb_extra_paths="$pb_extra_paths
$1"
}

pb_cleanup() {
  [ -z "${pb_tmp:-}" ] || rm -rf -- "$pb_tmp"
  pb_tmp=
  printf '%s\n' "$pb_extra_paths" | while IFS= read -r pb_p; do [ -z "$pb_p" ] || rm -rf -- "$pb_p"; done
  pb_extra_paths=
}

pb_sha256() { sha256sum -- "$1" | cut -d' ' -f1; }

pb_verified() { [ -f "$2" ] && [ "$(pb_sha256 "$2")" = "$1" ]; }

pb_add() {
  pb_s=$1
  case $pb_s in *[A-F]*) pb_s=$(printf '%s' "$pb_s" | tr 'A-F' 'a-f') ;; esac
  case $2 in *"$pb_tab"*|*'
'*) echo "$pb_me: odd URL '$2'; skipped" >&2; return 1 ;; esac
  printf '%s\t%s\t%s\n' "$pb_s" "$2" "$3" >>"$pb_queue"
}

# pb_curl URL SHA256 OUT: the mirror without passim; 0 ok, 4 wrong bytes, 1 failed
pb_curl() {
  command -v curl >/dev/null 2>&1 || { echo "$pb_me: neither passim nor curl could fetch $1" >&2; return 1; }
  pb_d=$(dirname -- "$3")
  [ -d "$pb_d" ] || mkdir -p -- "$pb_d" || return 1
  pb_part=$pb_d/.$pb_me.$$.partial
  pb_on_exit "$pb_part"
  if [ -n "${PASSIM_CDN_CA:-}" ]; then
    curl -fsSL --retry 3 --proto '=https,http' --cacert "$PASSIM_CDN_CA" -o "$pb_part" -- "$1" </dev/null || { rm -f -- "$pb_part"; return 1; }
  else
    curl -fsSL --retry 3 --proto '=https,http' -o "$pb_part" -- "$1" </dev/null || { rm -f -- "$pb_part"; return 1; }
  fi
  pb_got=$(pb_sha256 "$pb_part")
  if [ "$pb_got" != "$2" ]; then
    rm -f -- "$pb_part"
    echo "$pb_me: $1 has sha256 $pb_got, expected $2" >&2
    return 4
  fi
  mv -f -- "$pb_part" "$3" || return 1
  if $pb_have_passim; then
    # shellcheck disable=SC2086
    "$pb_passim" publish "$3" $pb_fetch_args </dev/null >/dev/null 2>&1 || true
  fi
  return 0
}

# pb_batch STAGE_PARENT: one `passim fetch --from -` for the first file of each basename;
# fills $pb_stage; $pb_tmp/plan gets "batch|curl<TAB>SHA<TAB>URL<TAB>PATH" per queued file
pb_batch() {
  # what `passim fetch --from` accepts (lib/fetch/batch-list.ts): one bad line would fail the whole
  # list, so a file passim would refuse goes to curl alone; C locale: length() counts bytes
  LC_ALL=C awk -F '\t' -v have="$pb_have_passim" -v input="$pb_tmp/input" '
    { n = $3; sub(/.*\//, "", n)
      ok = have == "true" && length($1) == 64 && $1 !~ /[^0-9a-f]/ && n != "" && n != "." && n != ".." && n !~ /[[:space:][:cntrl:]]/ && length(n) <= 190 &&
        $2 ~ /^[Hh][Tt][Tt][Pp][Ss]?:\/\/[^\/]/ && $2 !~ /[[:space:][:cntrl:]]/
      if (ok && !(n in seen)) { seen[n] = 1; print $1, n, $2 > input; print "batch\t" $0 }
      else print "curl\t" $0 }' "$pb_queue" >"$pb_tmp/plan"
  pb_stage=
  [ -s "$pb_tmp/input" ] || return 0
  pb_parent=$1
  [ -d "$pb_parent" ] || mkdir -p -- "$pb_parent" || return 0
  pb_stage=$(mktemp -d "$pb_parent/.$pb_me.XXXXXX") || { pb_stage=; return 0; }
  pb_on_exit "$pb_stage"
  pb_rc=0
  # PASSIM_FETCH_ARGS and pb_fetch_args are split into words on purpose
  # shellcheck disable=SC2086
  "$pb_passim" fetch --from - -o "$pb_stage" --json $pb_fetch_args ${PASSIM_FETCH_ARGS:-} \
    <"$pb_tmp/input" >"$pb_tmp/json" || pb_rc=$?
  # the files passim could not get: "SHA256 REASON" (a checksum mismatch is not retried by curl)
  awk '/"error"[ \t]*:/ {
      s = ""; e = ""
      if (match($0, /"sha256"[ \t]*:[ \t]*"[0-9a-fA-F]+"/)) { s = substr($0, RSTART, RLENGTH); sub(/.*:[ \t]*"/, "", s); sub(/"$/, "", s) }
      if (match($0, /"error"[ \t]*:[ \t]*"([^"\\]|\\.)*"/)) { e = substr($0, RSTART, RLENGTH); sub(/^"error"[ \t]*:[ \t]*"/, "", e); sub(/"$/, "", e) }
      if ($0 ~ /CHECKSUM_MISMATCH|"(exit|exitCode|code)"[ \t]*:[ \t]*4[ \t]*[,}]/ && e !~ /[Mm]ismatch/) e = "checksum mismatch: " e
      if (s != "") print tolower(s), e }' "$pb_tmp/json" >"$pb_tmp/errors"
  [ "$pb_rc" -eq 0 ] || echo "$pb_me: passim fetch --from exited $pb_rc" >&2
}

pb_run() {
  pb_count=0
  pb_status=0
  [ -s "$pb_queue" ] || return 0
  pb_first=$(head -n 1 "$pb_queue" | cut -f3)
  pb_batch "${1:-$(dirname -- "$pb_first")}"
  while IFS=$pb_tab read -r pb_how pb_sha pb_url pb_out; do
    pb_name=${pb_out##*/}
    pb_rc=0
    if [ "$pb_how" = batch ] && [ -n "$pb_stage" ] && [ -f "$pb_stage/$pb_name" ]; then
      pb_d=${pb_out%/*}
      [ "$pb_d" != "$pb_out" ] || pb_d=.
      [ -d "$pb_d" ] || mkdir -p -- "$pb_d" || pb_rc=1
      [ "$pb_rc" -ne 0 ] || mv -f -- "$pb_stage/$pb_name" "$pb_out" || pb_rc=1
    else
      pb_why=
      [ "$pb_how" != batch ] || [ ! -s "$pb_tmp/errors" ] || pb_why=$(awk -v s="$pb_sha" '$1 == s { sub(/^[^ ]* /, ""); print; exit }' "$pb_tmp/errors")
      case $pb_why in
        *[Mm]ismatch*|*"wrong bytes"*)
          echo "$pb_me: $pb_name: $pb_why" >&2
          pb_rc=4 ;;
        *)
          if [ "$pb_how" = batch ] && $pb_have_passim; then
            echo "$pb_me: passim did not fetch $pb_name${pb_why:+ ($pb_why)}; trying curl" >&2
          fi
          pb_curl "$pb_url" "$pb_sha" "$pb_out" || pb_rc=$? ;;
      esac
    fi
    if [ "$pb_rc" -eq 0 ]; then
      pb_count=$((pb_count + 1))
      printf '%s\n' "$pb_out"
    else
      echo "$pb_me: could not fetch $pb_name from $pb_url (exit $pb_rc)" >&2
      if [ "$pb_rc" -eq 4 ]; then pb_status=4; elif [ "$pb_status" -eq 0 ]; then pb_status=1; fi
    fi
  done <"$pb_tmp/plan"
  [ -z "$pb_stage" ] || rm -rf -- "$pb_stage"
  : >"$pb_queue"
  return "$pb_status"
}
