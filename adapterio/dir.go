package adapterio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/safetensors"
)

// Dir is an adapter directory opened for reading: its configuration, the adapter.Spec
// that reproduces it, the adapted modules and the tensor file (memory-mapped until
// Close).
type Dir struct {
	Path   string
	Config Config
	// Unknown lists adapter_config.json keys this lrtrain does not know (a newer
	// PEFT's), which it ignores.
	Unknown []string
	// Spec is the adapter: Config.Spec, with TargetModules naming every adapted module
	// by its full path when the configuration's own target list could not be used.
	Spec adapter.Spec
	// Modules are the adapted module paths (those with lora_A and lora_B), in file order.
	Modules []string
	file    *safetensors.File
}

// Open reads dir's adapter_config.json and adapter_model.safetensors and checks that
// they agree: every tensor is under Prefix; each adapted module has lora_A.weight
// [r, d_in] and lora_B.weight [d_out, r] with the configuration's r; φ tensors only
// with peft_type LRLORA; no other "lora_" tensor (DoRA magnitudes, embedding
// adapters: ErrUnsupported). Other tensors are modules_to_save (heads) and load by
// name. The caller closes the Dir.
func Open(dir string) (*Dir, error) {
	c, unknown, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	spec, err := c.Spec()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ConfigFile), err)
	}
	path := filepath.Join(dir, WeightsFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if _, e := os.Stat(filepath.Join(dir, PickleWeightsFile)); e == nil {
			return nil, fmt.Errorf("%w: %s has %s (a pickle) but no %s; save it with safe_serialization=True",
				ErrUnsupported, dir, PickleWeightsFile, WeightsFile)
		}
		return nil, fmt.Errorf("%w: %s has no %s", ErrConfig, dir, WeightsFile)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	d := &Dir{Path: dir, Config: c, Unknown: unknown, Spec: spec, file: f}
	if err := d.scan(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if d.Spec.TargetModules.Validate() != nil {
		d.Spec.TargetModules = adapter.Targets{Names: slices.Clone(d.Modules)}
	}
	if b := c.LRLoRA; b != nil && c.PEFTType == TypeLRLoRA && len(b.Modules) > 0 && !sameSet(b.Modules, d.Modules) {
		f.Close()
		return nil, fmt.Errorf("%w: %s: lrlora.modules lists %d modules, the tensors adapt %d", ErrConfig, dir, len(b.Modules), len(d.Modules))
	}
	return d, nil
}

// Close unmaps the tensor file.
func (d *Dir) Close() error {
	if err := d.file.Close(); err != nil {
		return fmt.Errorf("adapterio: %w", err)
	}
	return nil
}

// FileName is the tensor-file name of an lrtrain trainable tensor: <module>.lora_A
// becomes base_model.model.<module>.lora_A.weight (lora_B alike); φ, shared φ and
// head tensors keep their names under Prefix.
func FileName(name string) string {
	if strings.HasSuffix(name, ".lora_A") || strings.HasSuffix(name, ".lora_B") {
		name += ".weight"
	}
	return Prefix + name
}

// phiSuffixes are the per-module φ tensors.
var phiSuffixes = []string{".phi.amplitude", ".phi.bandwidth_raw", ".phi.grid"}

// scan sorts the file's tensors into modules, φ and heads and checks their shapes.
func (d *Dir) scan() error {
	type pair struct{ a, b *safetensors.TensorInfo }
	mods := map[string]*pair{}
	for _, name := range d.file.Names() {
		info, _ := d.file.Info(name)
		rest, ok := strings.CutPrefix(name, Prefix)
		if !ok {
			return fmt.Errorf("%w: tensor %s is not under %q", ErrConfig, name, Prefix)
		}
		switch {
		case strings.HasSuffix(rest, ".lora_A.weight"), strings.HasSuffix(rest, ".lora_B.weight"):
			mod, ab := rest[:len(rest)-len(".lora_A.weight")], rest[len(rest)-len("A.weight")]
			p := mods[mod]
			if p == nil {
				p = &pair{}
				mods[mod] = p
				d.Modules = append(d.Modules, mod)
			}
			if ab == 'A' {
				p.a = &info
			} else {
				p.b = &info
			}
		case strings.Contains(rest, "lora_"):
			return fmt.Errorf("%w: tensor %s (lrtrain adapters have only lora_A.weight and lora_B.weight)", ErrUnsupported, name)
		case strings.HasPrefix(rest, "phi_shared.") || hasAnySuffix(rest, phiSuffixes):
			if d.Config.PEFTType != TypeLRLoRA {
				return fmt.Errorf("%w: φ tensor %s in an adapter of peft_type %s", ErrConfig, name, d.Config.PEFTType)
			}
		}
	}
	if len(d.Modules) == 0 {
		return fmt.Errorf("%w: no lora_A/lora_B tensors", ErrConfig)
	}
	r := int64(d.Config.R)
	for _, mod := range d.Modules {
		p := mods[mod]
		switch {
		case p.a == nil || p.b == nil:
			return fmt.Errorf("%w: module %s has only one of lora_A.weight and lora_B.weight", ErrConfig, mod)
		case len(p.a.Shape) != 2 || len(p.b.Shape) != 2:
			return fmt.Errorf("%w: module %s: lora_A%v, lora_B%v are not matrices", ErrConfig, mod, p.a.Shape, p.b.Shape)
		case p.a.Shape[0] != r || p.b.Shape[1] != r:
			return fmt.Errorf("%w: module %s: lora_A%v, lora_B%v do not have rank r = %d", ErrConfig, mod, p.a.Shape, p.b.Shape, r)
		}
	}
	return nil
}

// Shape returns the shape of the file tensor that holds the lrtrain tensor name.
func (d *Dir) Shape(name string) ([]int64, bool) {
	info, ok := d.file.Info(FileName(name))
	return info.Shape, ok
}

// ConfigOverrides returns the config overrides (section.key=value, values in YAML)
// that make a run's adapter section describe this adapter: method, r, alpha, rslora,
// dropout and target_modules, and φ's shaping settings for LRLORA adapters (φ's
// training settings — init, init_value, lr_scale — stay the run's). A training run
// started from the adapter (lrtrain train --init-adapter) applies them before its
// own --set overrides.
func (d *Dir) ConfigOverrides() []string {
	s := d.Spec
	q := func(v string) string { return strconv.Quote(v) } // a YAML double-quoted scalar
	out := []string{
		"adapter.method=" + string(s.Method),
		"adapter.r=" + strconv.Itoa(s.R),
		"adapter.alpha=" + strconv.FormatFloat(s.Alpha, 'g', -1, 64),
		"adapter.rslora=" + strconv.FormatBool(s.RSLoRA),
		"adapter.dropout=" + strconv.FormatFloat(s.Dropout, 'g', -1, 64),
		"adapter.target_modules=" + q(s.TargetModules.String()),
	}
	if s.Method != adapter.LoRA {
		out = append(out,
			"adapter.phi.k="+strconv.Itoa(s.K),
			"adapter.phi.l="+strconv.FormatFloat(s.L, 'g', -1, 64),
			"adapter.phi.grid="+string(s.Grid),
			"adapter.phi.basis="+string(s.Basis),
			"adapter.phi.share="+string(s.Share),
			"adapter.phi.center="+strconv.FormatBool(s.Center),
			"adapter.phi.residual="+strconv.FormatBool(s.Residual),
			"adapter.sine_omega="+strconv.FormatFloat(s.SineOmega, 'g', -1, 64))
		if s.Center && !s.Residual {
			out = append(out, "adapter.phi.init="+string(s.Init))
		}
	}
	return out
}

func hasAnySuffix(s string, suffixes []string) bool {
	for _, x := range suffixes {
		if strings.HasSuffix(s, x) {
			return true
		}
	}
	return false
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
