#!/usr/bin/env bash
# Regenerate the README gallery (docs/*.png) from the command lines of every package.
# Usage: docs/make_figures.sh [PYTHON]   (make figures calls it with the venv's python)
# Intermediate files (data, models, predictions) go to $FIG_WORK (default build/figures).
# About 5-6 minutes of CPU time on a 2-core machine (measured: 5 min 15 s user); FIGURES_QUICK=1 shrinks every run
# (a smoke test of the commands: the figures then show under-trained models).
set -euo pipefail
PY=${1:-.venv/bin/python}
DOCS=docs
WORK=${FIG_WORK:-build/figures}
SHARED=${SCIML_SHARED_DATA:-../shared/data}
mkdir -p "$DOCS" "$WORK"
if [[ "${FIGURES_QUICK:-0}" == 1 ]]; then
  PINN_STEPS="--set adam.steps=200 --set qn.steps=50"; NTRAIN=64; NTEST=16; EPOCHS=5; MEMBERS=2; CAL_EPOCHS=5
  AMP_STEPS=6; CK_LENS=64,128; EXP=(--quick); BOOT=10
else
  PINN_STEPS=""; NTRAIN=512; NTEST=128; EPOCHS=60; MEMBERS=4; CAL_EPOCHS=40
  AMP_STEPS=20; CK_LENS=64,128,256; EXP=(--quick --steps 150); BOOT=100
fi
step() { echo "figures: $*" >&2; }

step "workbench: preset solutions and the convergence study"
"$PY" -m workbench figures --out "$DOCS"

step "pdes: Burgers PINN (fast preset) against Cole-Hopf"
# shellcheck disable=SC2086
"$PY" -m pdes solve burgers --method pinn --preset fast $PINN_STEPS --no-progress \
  --out "$WORK/burgers_pinn.nc" --plot "$DOCS/burgers_pinn.png"

step "operators: FNO on operator Burgers, evaluated zero-shot on a 4x finer grid"
"$PY" -m operators generate burgers --n-train "$NTRAIN" --n-test "$NTEST" --nx 1024 --no-progress \
  --out "$WORK/fno_data.nc"
"$PY" -m operators train "$WORK/fno_data.nc" --nx 256 --epochs "$EPOCHS" --width 32 --batch-size 16 \
  --no-progress --out "$WORK/fno_model"
"$PY" -m operators evaluate "$WORK/fno_model" "$WORK/fno_data.nc" --nx 256 1024 \
  --plot "$DOCS/fno_burgers_samples.png"

step "uncertainty: FNO deep ensemble, calibration report"
"$PY" -m uncertainty run fno --method ensemble --members "$MEMBERS" --epochs "$CAL_EPOCHS" --no-progress \
  --out "$WORK/fno_ensemble.nc"
"$PY" -m uncertainty report "$WORK/fno_ensemble.nc" --out "$WORK/calibration"
cp "$WORK/calibration/reliability.png" "$DOCS/calibration_reliability.png"

step "scaling: Chinchilla refit (Epoch AI's extracted points) and our own experiment"
if [[ -f "$SHARED/chinchilla_svg_extracted.csv" ]]; then
  "$PY" -m scaling fit "$SHARED/chinchilla_svg_extracted.csv" --form chinchilla --drop-highest 5 \
    --bootstrap "$BOOT" --no-progress --plot "$WORK/chinchilla"
  cp "$WORK/chinchilla/fit_chinchilla.png" "$DOCS/scaling_chinchilla.png"
else
  echo "figures: $SHARED/chinchilla_svg_extracted.csv not found (set SCIML_SHARED_DATA): skipping the refit" >&2
fi
"$PY" -m scaling experiment "${EXP[@]}" --no-progress --out "$WORK/scaling_experiment"
cp "$WORK/scaling_experiment/loss_vs_params.png" "$DOCS/scaling_loss_vs_params.png"

step "efficiency: bf16 autocast vs fp32, gradient checkpointing"
"$PY" -m efficiency amp --preset tiny --steps "$AMP_STEPS" --no-progress --plot "$DOCS/efficiency_amp.png"
"$PY" -m efficiency checkpoint --preset tiny --seq-lens "$CK_LENS" --no-progress --plot "$DOCS/efficiency_checkpointing.png"

step "sizes (each should stay under 300 KB)"
ls -l "$DOCS"/*.png >&2
