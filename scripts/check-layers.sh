#!/usr/bin/env bash
# Fails when a file under src/ includes a header of a layer it may not use.
# The rule is written once, in docs/design.md: the ```layers block lists each
# layer and the layers below it that it may include (its own always).
set -euo pipefail
cd "$(dirname "$0")/.."
rules=$(awk '/^```layers$/{on=1; next} /^```$/{on=0} on' docs/design.md)
[[ -n "$rules" ]] || { echo "check-layers: no \`\`\`layers block in docs/design.md" >&2; exit 1; }
declare -A allowed
while IFS=: read -r layer uses; do
    layer=$(echo "$layer" | tr -d ' ')
    [[ -n "$layer" ]] && allowed[$layer]=" $layer $uses "
done <<< "$rules"
bad=0
for f in $(find src -name '*.[ch]' | sort); do
    rel=${f#src/}
    layer=${rel%%/*}
    [[ "$rel" == */* ]] || layer=${rel%.c} # src/main.c is the layer "main"
    if [[ -z "${allowed[$layer]+x}" ]]; then
        echo "$f: layer '$layer' is not in the layers block of docs/design.md" >&2
        bad=1
        continue
    fi
    while IFS= read -r line; do
        used=${line#*\"}
        used=${used%%/*}
        if [[ "${allowed[$layer]}" != *" $used "* ]]; then
            echo "$f: includes \"${line#*\"} — $layer may not use $used (docs/design.md, Layers)" >&2
            bad=1
        fi
    done < <(grep -o '#include "[a-z_]*/[^"]*"' "$f" || true)
done
if ((bad)); then
    exit 1
fi
echo "layers: every include goes to the same or a lower layer"
