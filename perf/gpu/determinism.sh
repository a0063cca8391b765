#!/usr/bin/env bash
# determinism.sh SDD DEVICE PRESET STEPS DATA OUT: trains PRESET for STEPS steps on DEVICE twice from the same seed,
# then once more stopped at STEPS/2 and resumed; the three checkpoints must be byte-identical (weights, AdamW
# moments, step and data position), and so must the losses in the three logs. Exit 1 when any differs.
set -uo pipefail
sdd="$1" device="$2" preset="$3" steps="$4" data="$5" out="$6"
common=(--device "$device" --data "$data" --cache-dir "$out/cache" --quiet)
rm -rf "$out/a" "$out/b" "$out/c"
"$sdd" train --preset "$preset" --steps "$steps" --out "$out/a" --eval-every 0 --eval-batches 1 "${common[@]}" | tail -1 || exit 1
"$sdd" train --preset "$preset" --steps "$steps" --out "$out/b" --eval-every 0 --eval-batches 1 "${common[@]}" | tail -1 || exit 1
"$sdd" train --preset "$preset" --steps "$steps" --stop-at $((steps / 2)) --out "$out/c" --eval-every 0 --eval-batches 1 "${common[@]}" | tail -1 || exit 1
"$sdd" train --resume "$out/c" "${common[@]}" | tail -1 || exit 1
losses() { grep -o '"loss":[^,]*' "$1/log.jsonl"; }
bad=0
for run in b c; do
  what="$([[ $run == b ]] && echo "a second run" || echo "a run stopped at step $((steps / 2)) and resumed")"
  if cmp -s "$out/a/checkpoint.safetensors" "$out/$run/checkpoint.safetensors" && [[ "$(losses "$out/a")" == "$(losses "$out/$run")" ]]; then
    echo "determinism: $preset, $steps steps on $device: $what gives byte-identical checkpoints and losses"
  else
    echo "determinism: $preset, $steps steps on $device: $what DIFFERS ($(cmp "$out/a/checkpoint.safetensors" "$out/$run/checkpoint.safetensors" 2>&1 | head -1))"
    diff <(losses "$out/a") <(losses "$out/$run") | head -6
    bad=1
  fi
done
exit $bad
