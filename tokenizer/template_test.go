package tokenizer

import (
	"errors"
	"slices"
	"testing"
)

var conversation = []Message{
	{"system", "Be brief."},
	{"user", "Hi there "},
	{"assistant", "Hello!"},
}

// The expected strings are written out by hand from each family's official format.
func TestTemplatesRender(t *testing.T) {
	cases := []struct {
		name string
		msgs []Message
		gen  bool
		want string
	}{
		{"llama3", conversation, false,
			"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"},
		{"llama3", conversation[1:2], true,
			"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>" +
				"<|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"chatml", conversation, false,
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there <|im_end|>\n" +
				"<|im_start|>assistant\nHello!<|im_end|>\n"},
		{"qwen2", conversation[1:2], true,
			"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" +
				"<|im_start|>user\nHi there <|im_end|>\n<|im_start|>assistant\n"},
		{"llama2", conversation, false,
			"<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi there [/INST] Hello! </s>"},
		{"llama2", append(slices.Clone(conversation[1:]), Message{"user", "More"}), true,
			"<s>[INST] Hi there [/INST] Hello! </s><s>[INST] More [/INST]"},
		{"phi3", conversation[1:], false,
			"<|user|>\nHi there <|end|>\n<|assistant|>\nHello!<|end|>\n"},
		{"phi3", conversation[1:2], true, "<|user|>\nHi there <|end|>\n<|assistant|>\n"},
		{"alpaca", []Message{{"user", "Add the numbers."}, {"input", "2 3"}, {"assistant", "5"}}, false,
			"Below is an instruction that describes a task, paired with an input that provides further context. " +
				"Write a response that appropriately completes the request.\n\n" +
				"### Instruction:\nAdd the numbers.\n\n### Input:\n2 3\n\n### Response:\n5"},
		{"alpaca", []Message{{"system", ""}, {"user", "Say hi."}}, true,
			"### Instruction:\nSay hi.\n\n### Response:\n"},
	}
	for _, c := range cases {
		tpl, err := TemplateByName(c.name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tpl.Render(c.msgs, c.gen)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s Render:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

func TestTemplatePromptCompletion(t *testing.T) {
	for _, name := range TemplateNames() {
		tpl, _ := TemplateByName(name)
		msgs := conversation[1:]
		full, err := tpl.Render(msgs, false)
		if err != nil {
			t.Fatal(err)
		}
		prompt, completion, err := tpl.PromptCompletion(msgs)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if prompt+completion != full || completion == "" || prompt == "" {
			t.Errorf("%s: prompt %q + completion %q != %q", name, prompt, completion, full)
		}
	}
}

func TestTemplateErrors(t *testing.T) {
	if _, err := TemplateByName("vicuna"); !errors.Is(err, ErrBadTemplate) {
		t.Errorf("unknown name: %v", err)
	}
	bad := map[string][]Message{
		"llama2": {{"assistant", "x"}},
		"llama3": {{"tool", "x"}},
		"alpaca": {{"assistant", "x"}},
		"phi3":   {{"user", "x"}, {"narrator", "y"}},
	}
	for name, msgs := range bad {
		tpl, _ := TemplateByName(name)
		if _, err := tpl.Render(msgs, false); !errors.Is(err, ErrBadMessages) {
			t.Errorf("%s: err = %v, want ErrBadMessages", name, err)
		}
	}
	tpl, _ := TemplateByName("chatml")
	if _, _, err := tpl.PromptCompletion(conversation[:2]); !errors.Is(err, ErrBadMessages) {
		t.Errorf("PromptCompletion without a reply: %v", err)
	}
}

// A rendered conversation encodes its markers as single special tokens.
func TestTemplateTokensAreSpecial(t *testing.T) {
	tok := loadFamily(t, "llama3")
	tpl, ok := DetectTemplate(tok.ChatTemplate())
	if !ok || tpl.Name != "llama3" {
		t.Fatalf("DetectTemplate = %q, %v", tpl.Name, ok)
	}
	text, _ := tpl.Render(conversation, false)
	ids, err := tok.Encode(text, false)
	if err != nil {
		t.Fatal(err)
	}
	bos, _ := tok.BOS()
	eot, _ := tok.EOS()
	if ids[0] != bos || ids[len(ids)-1] != eot {
		t.Errorf("ids %v do not start with BOS %d and end with <|eot_id|> %d", ids, bos, eot)
	}
}
