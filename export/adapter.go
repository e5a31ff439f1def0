package export

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/adapterio"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/safetensors"
)

// Adapter-only export file names, as PEFT's save_pretrained writes them.
const (
	AdapterWeightsFile = adapterio.WeightsFile
	AdapterConfigFile  = adapterio.ConfigFile
)

// PEFTPrefix starts every tensor name in adapter_model.safetensors, as in PEFT
// (base_model.model.<module path>.lora_A.weight).
const PEFTPrefix = adapterio.Prefix

// AdapterFormatVersion is the version of the "lrlora" block of adapter_config.json.
const AdapterFormatVersion = adapterio.LRLoRABlockVersion

// AdapterConfig is adapter_config.json (package adapterio): every key of PEFT's
// LoraConfig, and for adapters with φ an "lrlora" block with what PEFT has no key for.
type AdapterConfig = adapterio.Config

// LRLoRABlock is lrtrain's part of adapter_config.json (see adapterio.LRLoRABlock).
type LRLoRABlock = adapterio.LRLoRABlock

// AdapterOnly writes the adapters of m (and its trainable classification head) into
// out: adapter_model.safetensors with every tensor of m.TrainableTensors() and
// Options.Extra under PEFTPrefix (lora_A and lora_B as <module>.lora_A.weight and
// <module>.lora_B.weight, φ as <module>.phi.*, head tensors under their Hugging Face
// names), and adapter_config.json (AdapterConfig). Adapters must share one
// configuration. Like Merged it writes through a temporary directory.
func AdapterOnly(m *model.Model, out string, o Options) (*Result, error) {
	ads := m.Adapters()
	if len(ads) == 0 {
		return nil, ErrNoAdapters
	}
	dt, torchName, err := outputDType(o.DType, "float32")
	if err != nil {
		return nil, err
	}
	if err := checkOutput(filepath.Clean(out), o.Overwrite); err != nil {
		return nil, err
	}
	cfg, err := adapterConfig(m, o)
	if err != nil {
		return nil, err
	}
	cfgJSON, err := cfg.JSON()
	if err != nil {
		return nil, err
	}
	res := &Result{Dir: out, DType: torchName, Merged: adaptedModules(m)}
	var tensors []safetensors.Tensor
	for _, nt := range append(m.TrainableTensors(), o.Extra...) {
		st, err := encodeTensor(adapterio.FileName(nt.Name), nt.Tensor, dt)
		if err != nil {
			return nil, err
		}
		tensors = append(tensors, st)
		res.Bytes += int64(len(st.Data))
	}
	res.Tensors = len(tensors)
	err = writeDir(out, o.Overwrite, func(tmp string) error {
		if err := safetensors.Write(filepath.Join(tmp, AdapterWeightsFile), tensors, o.metadata()); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		return writeFileSync(filepath.Join(tmp, AdapterConfigFile), cfgJSON)
	})
	if err != nil {
		return nil, err
	}
	if res.Files, err = listFiles(out); err != nil {
		return nil, err
	}
	return res, nil
}

// adaptedModules lists the adapted module paths in module order.
func adaptedModules(m *model.Model) []string {
	var modules []string
	for _, ad := range m.Adapters() {
		modules = append(modules, ad.Name())
	}
	return modules
}

// adapterConfig builds adapter_config.json for m's adapters: PEFT's LoraConfig with
// its defaults where lrtrain has nothing to say, peft_type LORA for plain LoRA (the
// file then holds exactly PEFT's keys), LRLORA and the lrlora block for adapters
// with φ.
func adapterConfig(m *model.Model, o Options) (*AdapterConfig, error) {
	ads := m.Adapters()
	c := ads[0].Spec()
	for _, ad := range ads[1:] {
		if !reflect.DeepEqual(ad.Spec(), c) {
			return nil, fmt.Errorf("%w: adapters %s and %s have different configurations; adapter_config.json holds one",
				ErrConfig, ads[0].Name(), ad.Name())
		}
	}
	base, _ := o.baseDir(m)
	cfg := adapterio.DefaultConfig()
	cfg.TaskType = "CAUSAL_LM"
	if isClassifier(m.Config()) {
		cfg.TaskType = "SEQ_CLS"
	}
	cfg.BaseModelNameOrPath, cfg.InferenceMode = base, true
	cfg.R, cfg.LoraAlpha, cfg.LoraDropout, cfg.UseRSLoRA = c.R, c.Alpha, adapterio.Float(c.Dropout), c.RSLoRA
	cfg.TargetModules = adapterio.TargetModules{Names: targetModules(m)}
	cfg.ModulesToSave = modulesToSave(m)
	if c.Method != adapter.LoRA {
		cfg.PEFTType = adapterio.TypeLRLoRA
		cfg.LRLoRA = &LRLoRABlock{
			FormatVersion: AdapterFormatVersion, Method: string(c.Method),
			K: c.K, L: c.L, Grid: string(c.Grid), Basis: string(c.Basis), Share: string(c.Share),
			Center: c.Center, Residual: c.Residual, SineOmega: c.SineOmega, Scaling: ads[0].Scaling(), Modules: adaptedModules(m),
		}
	}
	return &cfg, nil
}

// targetModules returns the shortest module-name suffixes that select exactly the
// adapted layers under PEFT's rule (a path matches a name when it equals it or ends
// with "." + name), checked against every linear layer and head module of m.
func targetModules(m *model.Model) []string {
	adapted := map[string]bool{}
	var all []string
	for _, l := range m.Linears() {
		all = append(all, l.Name)
		if l.Adapter() != nil {
			adapted[l.Name] = true
		}
	}
	for _, h := range m.HeadTensors() {
		all = append(all, strings.TrimSuffix(strings.TrimSuffix(h.Name, ".weight"), ".bias"))
	}
	all = append(all, "lm_head")
	var out []string
	for _, l := range m.Linears() {
		if !adapted[l.Name] {
			continue
		}
		parts := strings.Split(l.Name, ".")
		for n := 1; n <= len(parts); n++ {
			suffix := strings.Join(parts[len(parts)-n:], ".")
			if onlyAdapted(suffix, all, adapted) {
				if !slices.Contains(out, suffix) {
					out = append(out, suffix)
				}
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

func onlyAdapted(suffix string, all []string, adapted map[string]bool) bool {
	t := adapter.Targets{Names: []string{suffix}}
	for _, name := range all {
		if t.Match(name) && !adapted[name] {
			return false
		}
	}
	return true
}

// modulesToSave names the trainable head modules as PEFT's modules_to_save does: the
// top-level module ("classifier"), or the full path for a head inside the base model
// (BERT's "bert.pooler.dense").
func modulesToSave(m *model.Model) []string {
	var out []string
	for _, h := range m.HeadTensors() {
		mod := strings.TrimSuffix(strings.TrimSuffix(h.Name, ".weight"), ".bias")
		if first, _, ok := strings.Cut(mod, "."); ok && first != m.Config().ModelType {
			mod = first
		}
		if !slices.Contains(out, mod) {
			out = append(out, mod)
		}
	}
	return out
}
