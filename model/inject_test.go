package model_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/testkit/tensortest"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/model"
)

// moduleNames lists the adapters' names.
func moduleNames(ads []*lrlora.Adapter) []string {
	var out []string
	for _, a := range ads {
		out = append(out, a.Name())
	}
	return out
}

func TestInjectOrderAndParameterCount(t *testing.T) {
	cases := []struct {
		arch    string
		targets string
		want    []string // per layer, module order
		layers  int
	}{
		{"llama", "all-linear", []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
			"self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}, 2},
		{"qwen2", "q_proj,v_proj", []string{"self_attn.q_proj", "self_attn.v_proj"}, 2}, // tied head
		{"phi3", "all-linear", []string{"self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj", "mlp.down_proj"}, 2},
		{"mistral", `re:model\.layers\.1\.mlp\..*`, []string{"mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}, 1},
		{"roberta", "all-linear", []string{"attention.self.query", "attention.self.key", "attention.self.value",
			"attention.output.dense", "intermediate.dense", "output.dense"}, 2},
		{"bert", "query,value", []string{"attention.self.query", "attention.self.value"}, 2},
	}
	for _, c := range cases {
		t.Run(c.arch, func(t *testing.T) {
			m := mustLoad(t, writeTiny(t, c.arch))
			targets, err := adapter.ParseTargets(c.targets)
			if err != nil {
				t.Fatal(err)
			}
			const r, k = 4, 50
			ads, err := m.Inject(specOf(targets, r), rand.New(rand.NewPCG(1, 1)))
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			first := 0
			if c.layers == 1 {
				first = 1
			}
			for l := first; l < 2; l++ {
				for _, n := range c.want {
					prefix := fmt.Sprintf("model.layers.%d.", l)
					if c.arch == "roberta" || c.arch == "bert" {
						prefix = fmt.Sprintf("%s.encoder.layer.%d.", c.arch, l)
					}
					want = append(want, prefix+n)
				}
			}
			if got := moduleNames(ads); !slices.Equal(got, want) {
				t.Fatalf("adapters\n%v\nwant\n%v", got, want)
			}
			if got := moduleNames(m.Adapters()); !slices.Equal(got, want) {
				t.Errorf("Adapters() = %v", got)
			}
			// docs/method.md §1: r·(d_in + d_out) + 2K per adapted module.
			var formula int64
			for _, l := range m.Linears() {
				if slices.Contains(want, l.Name) {
					formula += int64(r*(l.DIn+l.DOut) + 2*k)
				}
			}
			pc, err := m.CountParameters()
			if err != nil {
				t.Fatal(err)
			}
			t.Log(pc)
			if pc.Adapter != formula {
				t.Errorf("adapter parameters %d, formula gives %d", pc.Adapter, formula)
			}
			if !strings.Contains(pc.String(), fmt.Sprintf("trainable params: %d", pc.Trainable())) {
				t.Errorf("summary %q", pc)
			}
			var listed int64
			for _, nt := range m.TrainableTensors() {
				if nt.Trainable {
					n := int64(1)
					for _, d := range must(nt.Tensor.Size()) {
						n *= d
					}
					listed += n
				}
			}
			if listed != pc.Trainable() {
				t.Errorf("TrainableTensors hold %d elements, CountParameters says %d", listed, pc.Trainable())
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestInjectNeverAdaptsHeads(t *testing.T) {
	for arch, head := range map[string]string{"llama": "lm_head", "roberta": "classifier.out_proj", "bert": "classifier"} {
		m := mustLoad(t, writeTiny(t, arch))
		_, err := m.Inject(specOf(adapter.Targets{Names: []string{head}}, 2), rand.New(rand.NewPCG(1, 1)))
		if !errors.Is(err, model.ErrTarget) || !strings.Contains(err.Error(), head) {
			t.Errorf("%s: targeting %s: error %v, want ErrTarget naming it", arch, head, err)
		}
		ads, err := m.Inject(specOf(adapter.Targets{AllLinear: true}, 2), rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range ads {
			if a.Name() == head || strings.HasPrefix(a.Name(), "classifier") || strings.Contains(a.Name(), "pooler") {
				t.Errorf("%s: all-linear adapted the head %s", arch, a.Name())
			}
		}
	}
}

func TestInjectTwiceFailsAndKeepsModel(t *testing.T) {
	m := mustLoad(t, writeTiny(t, "llama"))
	rng := rand.New(rand.NewPCG(1, 1))
	if _, err := m.Inject(specOf(adapter.Targets{Names: []string{"q_proj"}}, 2), rng); err != nil {
		t.Fatal(err)
	}
	_, err := m.Inject(specOf(adapter.Targets{Names: []string{"q_proj", "v_proj"}}, 2), rng)
	if !errors.Is(err, model.ErrTarget) || !strings.Contains(err.Error(), "already has an adapter") {
		t.Errorf("second injection: %v", err)
	}
	if n := len(m.Adapters()); n != 2 {
		t.Errorf("%d adapters after the failed injection, want the 2 q_proj ones", n)
	}
	_, err = m.Inject(specOf(adapter.Targets{Names: []string{"k_proj"}}, 0), rng)
	if !errors.Is(err, lrlora.ErrConfig) {
		t.Errorf("rank 0: %v, want lrlora.ErrConfig", err)
	}
}

// TestAdaptersStartAsIdentity checks that injecting adapters (ΔW = 0 at
// initialisation) leaves the logits unchanged.
func TestAdaptersStartAsIdentity(t *testing.T) {
	m := mustLoad(t, writeTiny(t, "qwen2"))
	ids, _ := model.Int64Tensor([]int64{4, 8, 15, 16, 23, 42}, 2, 3)
	before, err := m.Forward(model.Inputs{InputIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Inject(specOf(adapter.Targets{AllLinear: true}, 4), rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatal(err)
	}
	after, err := m.Forward(model.Inputs{InputIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	checkClose(t, "logits with fresh adapters", tensortest.Values(t, after), tensortest.Values(t, before), 0)
}
