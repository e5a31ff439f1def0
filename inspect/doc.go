// Package inspect shows what an LR-LoRA run learned, as PNG (or SVG, PDF) plots drawn
// with gonum.org/v1/plot and as tables. It takes plain Go values — stable ranks, sampled
// φ curves, singular values, metrics files — computed elsewhere (lrlora, the trainer), so
// it does not link libtorch.
//
//   - PlotStableRank: the per-layer stable rank ‖ΔW‖²_F/σ_max² by depth, attention and MLP
//     modules as two solid lines (the mean over a layer's modules of each kind), with the
//     stable rank of B·A (what plain LoRA learns with the same factors) dashed in the same
//     colours. Its rows are LayerRank values; NewLayerRank and ParseModule read the layer
//     and the kind from Hugging Face module names ("model.layers.12.self_attn.q_proj" →
//     12, attn; "roberta.encoder.layer.3.output.dense" → 3, mlp).
//   - WriteStableRankTable: the same numbers as a Markdown or plain-text table, one row per
//     module and the means per kind.
//   - PlotPhi: learned φ curves of chosen layers on x ∈ [−L−1, L+1], the grid range ±L
//     marked and the identity (LoRA's φ) for reference; the caller samples φ.
//   - PlotSpectra: singular values of ΔW and of B·A per chosen layer on a log scale.
//   - WritePhiOffsetTable: per module φ(0), the paper's φ(0), φ'(0) and the share of
//     ‖ΔW‖² in its constant part: the failure mode of a = 0, B = 0 initialisation
//     (docs/method.md §10), in the user's own run.
//   - ReadLossCurve and PlotLoss: training and evaluation loss from metrics JSONL files
//     ({"step":1,"loss":2.3,"eval_loss":…} per line), several runs in one plot.
//
// Plots are written atomically (a temporary file renamed into place) at 7×4.5 inches,
// 672×432 pixels for PNG; WithTitle and WithSize change that. Non-finite values are
// errors (ErrNotFinite) naming the series and the point rather than silently broken
// images.
package inspect
