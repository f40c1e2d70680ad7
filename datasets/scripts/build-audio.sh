#!/bin/sh
# Render the spoken digits 0-9 for the audio challenge into datasets/audio/.
#
#   sh datasets/scripts/build-audio.sh
#
# Needs Debian's espeak-ng and sox (apt-get install espeak-ng sox). For each
# language and voice variant, espeak-ng speaks the digit, and sox trims the
# leading and trailing silence, peak-normalises to -1 dBFS and writes 16-bit
# mono WAV at 11025 Hz to datasets/audio/<lang>/<digit>-<variant>.wav.
#
# Idempotent: each language directory's WAV files are replaced as a whole, and
# both tools are deterministic here (sox -R seeds its generators, -D turns
# dither off), so a rerun with the same package versions gives the same bytes.
set -eu

for tool in espeak-ng sox; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "build-audio: '$tool' not found; install it with: apt-get install espeak-ng sox" >&2
        exit 1
    fi
done

out_dir="$(cd "$(dirname "$0")/.." && pwd)/audio"
rate=11025
languages="en de fr es"
# variant name, espeak-ng voice variant, words per minute, base pitch (0-99)
variants="m1 m1 145 45
f2 f2 160 55
m3 m3 135 35
f4 f4 170 62"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT INT TERM

for lang in $languages; do
    mkdir -p "$work/$lang"
    echo "$variants" | while read -r name voice speed pitch; do
        for digit in 0 1 2 3 4 5 6 7 8 9; do
            raw="$work/raw.wav"
            espeak-ng -v "$lang+$voice" -s "$speed" -p "$pitch" -w "$raw" "$digit"
            # silence 1 ... reverse silence 1 ... reverse: trim both ends.
            sox -R -D "$raw" -r "$rate" -b 16 -c 1 "$work/$lang/$digit-$name.wav" \
                silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse gain -n -1
        done
    done
    mkdir -p "$out_dir/$lang"
    rm -f "$out_dir/$lang"/*.wav
    mv "$work/$lang"/*.wav "$out_dir/$lang/"
done

echo "build-audio: wrote $(find "$out_dir" -name '*.wav' | wc -l) clips to $out_dir ($(du -sh "$out_dir" | cut -f1))"
