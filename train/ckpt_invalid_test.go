package train

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/safetensors"
)

// A checkpoint whose file does not match its checksum is refused, naming the file; with
// resume: auto the run falls back to the previous checkpoint and says which it skipped.
func TestCorruptCheckpointIsRefusedNamingTheFile(t *testing.T) {
	o := trainedRun(t)
	flipByte(t, filepath.Join(ckptDir(o, 6), AdapterFile))
	c := o
	c.Checkpoint.Resume = ckptDir(o, 6)
	_, err := Run(context.Background(), c, Env{Console: io.Discard})
	if !errors.Is(err, checkpoint.ErrChecksum) || !strings.Contains(err.Error(), AdapterFile) {
		t.Fatalf("err = %v, want a checksum error naming %s", err, AdapterFile)
	}
	o.Train.MaxSteps = 7
	res, err := Run(context.Background(), o, Env{Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom != ckptDir(o, 4) {
		t.Errorf("resumed from %q, want step 4", res.ResumedFrom)
	}
	log, _ := os.ReadFile(filepath.Join(o.Output.Dir, LogFile))
	if !strings.Contains(string(log), "skipped checkpoint") || !strings.Contains(string(log), AdapterFile) {
		t.Errorf("train.log does not report the skipped checkpoint")
	}
}

func flipByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-3] ^= 0x40
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Checkpoints with consistent checksums but wrong content are refused, naming the
// tensor: a missing or extra tensor, another shape, a NaN, a partial optimizer state.
func TestCheckpointTensorsAreValidated(t *testing.T) {
	o := trainedRun(t)
	src := ckptDir(o, 6)
	cases := []struct {
		name, want string
		file       string
		edit       func(map[string]safetensors.Tensor)
	}{
		{"missing", "missing tensors model.layers.1.mlp.down_proj.phi.grid", AdapterFile,
			func(m map[string]safetensors.Tensor) { delete(m, "model.layers.1.mlp.down_proj.phi.grid") }},
		{"extra", "unexpected tensors model.layers.9.lora_A", AdapterFile,
			func(m map[string]safetensors.Tensor) {
				x := m["model.layers.0.self_attn.q_proj.lora_A"]
				x.Name = "model.layers.9.lora_A"
				m[x.Name] = x
			}},
		{"shape", "model.layers.0.self_attn.q_proj.lora_B: have F32[2 64]", AdapterFile,
			func(m map[string]safetensors.Tensor) {
				x := m["model.layers.0.self_attn.q_proj.lora_B"]
				x.Shape, x.Data = []int64{2, 64}, x.Data[:2*64*4]
				m[x.Name] = x
			}},
		{"nan", "tensor model.layers.0.self_attn.q_proj.phi.amplitude has a non-finite value", AdapterFile,
			func(m map[string]safetensors.Tensor) {
				x := m["model.layers.0.self_attn.q_proj.phi.amplitude"]
				x.Data = slices.Clone(x.Data)
				float32View(x.Data)[3] = float32(math.NaN())
				m[x.Name] = x
			}},
		{"partial optimizer", "parameter model.layers.0.self_attn.k_proj.lora_A has only part of its state", OptimizerFile,
			func(m map[string]safetensors.Tensor) { delete(m, "model.layers.0.self_attn.k_proj.lora_A.exp_avg_sq") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "checkpoints")
			dir := rewriteCheckpoint(t, src, root, tc.file, tc.edit)
			c := o
			c.Checkpoint.Resume = dir
			c.Train.MaxSteps = 8
			_, err := Run(context.Background(), c, Env{Console: io.Discard})
			if !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.file) {
				t.Errorf("err = %v\nwant ErrCheckpoint naming %s and %q", err, tc.file, tc.want)
			}
		})
	}
}

// rewriteCheckpoint saves a copy of the checkpoint src under root with one file's
// tensors edited, through checkpoint.Save, so its checksums are consistent.
func rewriteCheckpoint(t *testing.T, src, root, file string, edit func(map[string]safetensors.Tensor)) string {
	t.Helper()
	c, err := checkpoint.Load(src)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := c.DecodeManifest(&fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"format", "format_version", "step", "saved_at", "files"} {
		delete(fields, k)
	}
	var files []checkpoint.File
	for _, name := range c.Names() {
		raw, err := os.ReadFile(c.Path(name))
		if err != nil {
			t.Fatal(err)
		}
		if name == file {
			f, err := safetensors.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			tensors := map[string]safetensors.Tensor{}
			for _, n := range f.Names() {
				info, _ := f.Info(n)
				b, _ := f.Bytes(n)
				tensors[n] = safetensors.Tensor{Name: n, DType: info.DType, Shape: info.Shape, Data: b}
			}
			edit(tensors)
			out := slices.Collect(maps.Values(tensors))
			files = append(files, checkpoint.File{Name: name, Write: func(w io.Writer) error { return safetensors.Encode(w, out, nil) }})
			continue
		}
		files = append(files, checkpoint.File{Name: name, Write: func(w io.Writer) error { _, err := w.Write(raw); return err }})
	}
	dir, err := checkpoint.Save(root, c.Step, files, fields)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
