// Package adapter is the one description of an adapter: the settings of the config
// file's adapter section, their defaults, their checks and the target-module rule.
// It is pure Go (no libtorch), so the configuration, the trainer's manifests and the
// libtorch packages all hold the same Spec value:
//
//	config (YAML) ──decodes into──▶ Spec ──embedded in──▶ train.Options (manifest JSON)
//	                                 │
//	                                 ├──▶ model.Inject (TargetModules.Match picks layers)
//	                                 ├──▶ lrlora.New (Method, R, α, Phi; φ tensors, scaling)
//	                                 │       └──▶ phiop.Apply (Basis, Phi.BasisScale)
//	                                 └──▶ export (adapter_config.json)
//
// Settings (YAML keys of the adapter section; docs/method.md states the equations):
//
//	method          lrlora | lora | sinelora                       (lrlora)
//	r               rank, ≥ 1                                       (8)
//	alpha           α; 0 means 2r, filled in by Resolved            (2r)
//	rslora          s = α/√r instead of α/r                         (false)
//	dropout         on the adapter input, in [0, 1)                 (0)
//	target_modules  names (PEFT suffix rule), regex:…, all-linear   (q,k,v,o,gate,up,down _proj)
//	modules_to_save heads trained in full                           (none)
//	phi.k, phi.l    K ≥ 2 grid points on [−L, L], L > 0             (50, 3)
//	phi.grid        uniform | chebyshev                             (uniform)
//	phi.basis       sinc | gaussian | bspline                       (sinc)
//	phi.share       none | grid | bandwidth | all                   (none)
//	phi.center      ΔW = s·(φ(M) − φ(0))                            (false)
//	phi.residual    φ(x) = x + Σ a_k (f(t) − f(t₀)), centred        (false)
//	phi.init        zero | small | identity (a's initial value)     (zero)
//	phi.init_value  a_k under init small, > 0                       (0.01)
//	phi.lr_scale    learning-rate multiplier of a and β, > 0        (1)
//	phi.fixed_bandwidth  β stays at b = 1, not trained                (false)
//	sine_omega      SineLoRA's ω, > 0                               (200)
//
// phi.center without phi.residual needs init small or identity (at a = 0 and B = 0
// every gradient of φ(M) − φ(0) vanishes), and init identity excludes phi.residual
// (it would start at φ ≈ 2x); both are reported by Problems.
//
// Default is the only place these defaults are written; Resolved derives α = 2r;
// Problems checks every setting once and names each bad key by its config path
// ("adapter.phi.k"). The enumerated settings are string types whose constants are
// the names the config file uses, so a value read from a file or a manifest is used
// as it is: nothing downstream parses it again. ParseMethod, ParseGrid, ParseBasis
// and ParseSharing are for names a person types elsewhere (flags, experiment lists).
package adapter
