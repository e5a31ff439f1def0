// Package optim holds the optimizer and gradient clipping of lrtrain's training
// loop, written against gotch tensors without gotch's nn.VarStore:
//
//   - AdamW: torch.optim.AdamW (β1 = 0.9, β2 = 0.999, ε = 1e-8 by default, decoupled
//     weight decay, PyTorch's bias correction) over named parameters, with its state
//     (step, exp_avg, exp_avg_sq per parameter) exposed by name so a checkpoint can
//     save and restore it exactly. A step is one native multi-tensor call
//     (phiop.AdamW) per dtype/device group: one parallel loop on the CPU, one kernel
//     launch on a CUDA device, instead of 8 libtorch ops per parameter.
//   - ClipGradNorm: torch.nn.utils.clip_grad_norm_ over the same list.
//   - Schedule: the learning rate per step, linear warmup then linear, cosine or
//     constant (transformers' get_*_schedule_with_warmup), under one of two
//     step-counting conventions (Counting) so every caller keeps its exact rates.
//
// The parameter list is the trainable list that lrlora derives from its adapters'
// Tensors, so the optimizer, the checkpoint and the parameter count see the same set.
//
// Updates run under no-grad and in place: AdamW's through the native call (the
// libtorch-op path remains for parameters it does not take, such as non-contiguous
// ones), clipping and zeroing through libtorch's out= kernels; they free every
// temporary. Grad mode in libtorch is per OS thread: keep the training
// goroutine on one thread (runtime.LockOSThread).
package optim
