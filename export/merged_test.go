package export_test

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/export"
	"github.com/lrtrain/lrtrain/internal/testkit/tensortest"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/safetensors"
)

// The merged model, loaded fresh, computes what the adapted model computes.
//
// Tolerance: the adapted forward pass builds W_eff = W0 + ΔW in float32 with the same
// DeltaWeight and the same add that export's merge uses, and the merged model's layer
// then runs the same torch linear on the same W_eff bits; float32 on disk stores those
// bits exactly. So the logits agree to the last bit — the test allows 1e-6·max|logit|
// only so that a libtorch that picks a different matmul kernel for a tensor loaded
// from disk (contiguity, alignment) would not fail it. The unadapted base differs by
// far more, which shows ΔW was merged.
func TestMergedLogitsEqualAdaptedLogits(t *testing.T) {
	cases := []struct {
		arch, targets string
		method        adapter.Method
	}{
		{"llama", "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", adapter.LRLoRA},
		{"qwen2", "all-linear", adapter.SineLoRA},
		{"roberta", "query,value,intermediate.dense", adapter.LoRA},
	}
	for _, c := range cases {
		t.Run(c.arch+"-"+c.method.String(), func(t *testing.T) {
			base := writeBase(t, c.arch)
			m := adapted(t, base, c.targets, c.method)
			want := tensortest.Logits(t, m)

			out := filepath.Join(t.TempDir(), "merged")
			res, err := export.Merged(m, out, export.Options{DType: "float32"})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Merged) != len(m.Adapters()) {
				t.Fatalf("merged %d layers, model has %d adapters", len(res.Merged), len(m.Adapters()))
			}
			fresh, err := model.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			defer fresh.Close()
			got := tensortest.Logits(t, fresh)
			tol := 1e-6 * tensortest.MaxAbs(want)
			if d := tensortest.MaxAbsDiff(got, want); d > tol {
				t.Errorf("merged vs adapted logits: max |Δ| = %g > %g", d, tol)
			} else {
				t.Logf("merged vs adapted logits: max |Δ| = %g (max |logit| %.3g)", d, tensortest.MaxAbs(want))
			}

			plain, err := model.Load(base)
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close()
			if c.arch == "roberta" {
				return // the base's classifier head is drawn afresh; nothing to compare
			}
			if d := tensortest.MaxAbsDiff(tensortest.Logits(t, plain), want); d < 1e3*tol {
				t.Errorf("base and adapted logits differ by only %g: the adapters did nothing", d)
			}
		})
	}
}

// A bfloat16 export loads, stores exactly the bfloat16 rounding of the float32 merge,
// says so in config.json, and gives logits within bfloat16's precision.
func TestMergedBFloat16(t *testing.T) {
	base := writeBase(t, "llama")
	m := adapted(t, base, "all-linear", adapter.LRLoRA)
	want := tensortest.Logits(t, m)
	dir := t.TempDir()
	f32, bf16 := filepath.Join(dir, "f32"), filepath.Join(dir, "bf16")
	if _, err := export.Merged(m, f32, export.Options{DType: "float32"}); err != nil {
		t.Fatal(err)
	}
	res, err := export.Merged(m, bf16, export.Options{DType: "bf16"})
	if err != nil {
		t.Fatal(err)
	}
	if res.DType != "bfloat16" {
		t.Errorf("result dtype %q", res.DType)
	}
	a, err := safetensors.OpenIndex(f32)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := safetensors.OpenIndex(bf16)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !slices.Equal(a.Names(), b.Names()) {
		t.Fatalf("tensor names differ: %v vs %v", a.Names(), b.Names())
	}
	for _, name := range b.Names() {
		info, _ := b.Info(name)
		if info.DType != safetensors.BF16 {
			t.Fatalf("%s is %s", name, info.DType)
		}
		full, _ := a.Float32s(name)
		raw, _ := b.Bytes(name)
		for i, x := range full {
			if got := uint16(raw[2*i]) | uint16(raw[2*i+1])<<8; got != safetensors.Float32ToBF16(x) {
				t.Fatalf("%s[%d]: bf16 bits %#04x, want the rounding of %g (%#04x)", name, i, got, x, safetensors.Float32ToBF16(x))
			}
		}
	}
	cfg, err := model.ReadConfig(bf16)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TorchDType != "bfloat16" {
		t.Errorf("config torch_dtype %q, want bfloat16", cfg.TorchDType)
	}
	fresh, err := model.Load(bf16)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	// Each weight carries a relative rounding error of at most 2⁻⁹; through two tiny
	// layers the logits move by a few per cent of their scale, far less than the
	// adapters' effect checked above.
	if d, tol := tensortest.MaxAbsDiff(tensortest.Logits(t, fresh), want), 0.05*tensortest.MaxAbs(want); d > tol {
		t.Errorf("bf16 merged vs adapted logits: max |Δ| = %g > %g", d, tol)
	}
}

// A model larger than the shard size is sharded; the index maps every tensor to the
// shard that holds it, the shards together hold exactly the tensors of a one-file
// export with the same bytes, and the result loads.
func TestMergedShards(t *testing.T) {
	base := writeBase(t, "llama")
	m := adapted(t, base, "q_proj,v_proj", adapter.LRLoRA)
	dir := t.TempDir()
	one, sharded := filepath.Join(dir, "one"), filepath.Join(dir, "sharded")
	if _, err := export.Merged(m, one, export.Options{}); err != nil {
		t.Fatal(err)
	}
	res, err := export.Merged(m, sharded, export.Options{MaxShardBytes: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(sharded, safetensors.IndexFileName))
	if err != nil {
		t.Fatalf("no index: %v (files %v)", err, res.Files)
	}
	var idx struct {
		Metadata struct {
			TotalSize int64 `json:"total_size"`
		} `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	single, err := safetensors.Open(filepath.Join(one, safetensors.SingleFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	shards := map[string]bool{}
	for _, s := range idx.WeightMap {
		shards[s] = true
	}
	if len(shards) < 2 {
		t.Fatalf("%d shard(s) for %d bytes at 100 kB per shard", len(shards), res.Bytes)
	}
	var union []string
	var total int64
	for s := range shards {
		f, err := safetensors.Open(filepath.Join(sharded, s))
		if err != nil {
			t.Fatal(err)
		}
		if f.Metadata()["format"] != "pt" {
			t.Errorf("%s: metadata %v lacks format=pt", s, f.Metadata())
		}
		for _, name := range f.Names() {
			if idx.WeightMap[name] != s {
				t.Errorf("%s holds %s, the index says %q", s, name, idx.WeightMap[name])
			}
			got, _ := f.Bytes(name)
			want, _ := single.Bytes(name)
			if string(got) != string(want) {
				t.Errorf("%s: bytes differ from the one-file export", name)
			}
			info, _ := f.Info(name)
			total += info.ByteSize()
			union = append(union, name)
		}
		f.Close()
	}
	slices.Sort(union)
	if !slices.Equal(union, single.Names()) {
		t.Errorf("shards hold %d tensors, the one-file export %d", len(union), single.Len())
	}
	if len(idx.WeightMap) != single.Len() || idx.Metadata.TotalSize != total {
		t.Errorf("index: %d entries, total_size %d; want %d and %d", len(idx.WeightMap), idx.Metadata.TotalSize, single.Len(), total)
	}
	if _, err := os.Stat(filepath.Join(sharded, safetensors.SingleFileName)); err == nil {
		t.Error("sharded export also has model.safetensors")
	}
	fresh, err := model.Load(sharded)
	if err != nil {
		t.Fatal(err)
	}
	fresh.Close()
}

// The base model's config (torch_dtype aside), tokenizer files and generation config
// come along unchanged.
func TestMergedCopiesModelFiles(t *testing.T) {
	base := writeBase(t, "llama")
	m := adapted(t, base, "q_proj", adapter.LoRA)
	out := filepath.Join(t.TempDir(), "merged")
	res, err := export.Merged(m, out, export.Options{DType: "float16"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"} {
		want, _ := os.ReadFile(filepath.Join(base, name))
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s not copied unchanged (err %v)", name, err)
		}
	}
	var before, after map[string]any
	b, _ := os.ReadFile(filepath.Join(base, "config.json"))
	a, _ := os.ReadFile(filepath.Join(out, "config.json"))
	if err := json.Unmarshal(b, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(a, &after); err != nil {
		t.Fatal(err)
	}
	if after["torch_dtype"] != "float16" {
		t.Errorf("torch_dtype %v", after["torch_dtype"])
	}
	before["torch_dtype"] = "float16"
	bb, _ := json.Marshal(before)
	aa, _ := json.Marshal(after)
	if string(aa) != string(bb) {
		t.Errorf("config changed beyond torch_dtype:\n%s\n%s", aa, bb)
	}
	if !slices.Contains(res.Files, "model.safetensors") || !slices.Contains(res.Files, "config.json") {
		t.Errorf("files %v", res.Files)
	}
}

// An adapter whose merge is not finite fails the export with its name, and nothing is
// left behind: no output directory, no temporary directory.
func TestMergedRefusesNaNAdapter(t *testing.T) {
	base := writeBase(t, "llama")
	m := adapted(t, base, "q_proj,v_proj", adapter.LRLoRA)
	bad := m.Adapters()[2]
	for _, nt := range bad.Tensors() {
		if strings.HasSuffix(nt.Name, ".lora_B") {
			vals := tensortest.Values(t, nt.Tensor)
			vals[5] = math.NaN()
			tensortest.Set(t, nt.Tensor, vals)
		}
	}
	parent := t.TempDir()
	out := filepath.Join(parent, "merged")
	_, err := export.Merged(m, out, export.Options{})
	if !errors.Is(err, lrlora.ErrNonFinite) || !strings.Contains(err.Error(), bad.Name()) {
		t.Fatalf("err = %v, want lrlora.ErrNonFinite naming %s", err, bad.Name())
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

// An existing output is refused unless Overwrite is set; with it, the new export
// replaces the old one completely.
func TestMergedExistingOutput(t *testing.T) {
	base := writeBase(t, "llama")
	m := adapted(t, base, "q_proj", adapter.LoRA)
	parent := t.TempDir()
	out := filepath.Join(parent, "merged")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "stale.txt"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := export.Merged(m, out, export.Options{}); !errors.Is(err, export.ErrExists) {
		t.Fatalf("err = %v, want ErrExists", err)
	}
	if _, err := export.Merged(m, out, export.Options{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "stale.txt")); err == nil {
		t.Error("the old directory's file survived the overwrite")
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		t.Errorf("parent holds %d entries, want only the export", len(entries))
	}
}
