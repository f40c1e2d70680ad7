#!/usr/bin/env bash
# Copy the text challenge's fonts from Debian's fonts-dejavu-core into
# datasets/fonts/, with the package's copyright file as the licence.
#
#     bash datasets/scripts/copy-fonts.sh
#
# Idempotent: the files are copied byte for byte, unmodified (the Bitstream
# Vera licence asks that modified fonts be renamed, so we do not subset them).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/../fonts"
src=/usr/share/fonts/truetype/dejavu
faces=(DejaVuSans-Bold.ttf DejaVuSerif-Bold.ttf)

if [[ ! -f "$src/${faces[0]}" ]]; then
    apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core
fi

mkdir -p "$out"
for face in "${faces[@]}"; do
    install -m 0644 "$src/$face" "$out/$face"
done
install -m 0644 /usr/share/doc/fonts-dejavu-core/copyright "$out/LICENSE"
echo "fonts-dejavu-core $(dpkg-query -W -f='${Version}' fonts-dejavu-core): ${faces[*]} -> $out"
