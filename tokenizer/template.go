package tokenizer

import (
	"fmt"
	"slices"
	"strings"
)

// Message is one turn of a conversation. Role is "system", "user" or "assistant"; the
// alpaca template also takes an "input" message after the user's instruction.
type Message struct {
	Role    string
	Content string
}

// Template renders conversations in one model family's prompt format, in Go rather than
// by running the Jinja chat_template of tokenizer_config.json. The rendered text contains
// the BOS token where the official template writes it, so encode it with
// Encode(text, false).
type Template struct {
	Name   string
	render func(msgs []Message, addGenerationPrompt bool) (string, error)
}

// Render formats msgs. With addGenerationPrompt the text ends with the header that starts
// the assistant's reply (for llama2 and alpaca-style formats the prompt already does).
func (t Template) Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	s, err := t.render(msgs, addGenerationPrompt)
	if err != nil {
		return "", fmt.Errorf("tokenizer: template %s: %w", t.Name, err)
	}
	return s, nil
}

// PromptCompletion splits a conversation that ends with an assistant message into the
// prompt (everything before the reply, generation header included) and the completion
// (the reply and its end marker), the two parts fine-tuning masks differently; their
// concatenation is Render(msgs, false).
func (t Template) PromptCompletion(msgs []Message) (prompt, completion string, err error) {
	if len(msgs) == 0 || msgs[len(msgs)-1].Role != "assistant" {
		return "", "", fmt.Errorf("tokenizer: template %s: %w: the last message must be the assistant's", t.Name, ErrBadMessages)
	}
	if prompt, err = t.Render(msgs[:len(msgs)-1], true); err != nil {
		return "", "", err
	}
	full, err := t.Render(msgs, false)
	if err != nil {
		return "", "", err
	}
	if !strings.HasPrefix(full, prompt) {
		return "", "", fmt.Errorf("tokenizer: template %s: the prompt is not a prefix of the conversation", t.Name)
	}
	return prompt, full[len(prompt):], nil
}

var templates = map[string]func([]Message, bool) (string, error){
	"alpaca": renderAlpaca,
	"llama3": renderLlama3,
	"chatml": func(m []Message, g bool) (string, error) { return renderChatML(m, g, "") },
	"qwen2":  func(m []Message, g bool) (string, error) { return renderChatML(m, g, "You are a helpful assistant.") },
	"llama2": renderLlama2,
	"phi3":   renderPhi3,
}

// TemplateByName returns one of the templates listed by TemplateNames.
func TemplateByName(name string) (Template, error) {
	r, ok := templates[name]
	if !ok {
		return Template{}, fmt.Errorf("%w %q (known: %s)", ErrBadTemplate, name, strings.Join(TemplateNames(), ", "))
	}
	return Template{Name: name, render: r}, nil
}

// TemplateNames lists the known templates: alpaca, chatml, llama2, llama3, phi3, qwen2.
func TemplateNames() []string {
	names := make([]string, 0, len(templates))
	for n := range templates {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// DetectTemplate guesses the template from the markers of a Jinja chat_template text (as
// returned by Tokenizer.ChatTemplate). Mistral's [INST] format is reported as llama2,
// which differs from it in spacing and system-prompt handling.
func DetectTemplate(chatTemplate string) (Template, bool) {
	for _, c := range []struct{ marker, name string }{
		{"<|start_header_id|>", "llama3"}, {"<|im_start|>", "chatml"}, {"<|user|>", "phi3"},
		{"[INST]", "llama2"}, {"### Instruction", "alpaca"},
	} {
		if strings.Contains(chatTemplate, c.marker) {
			t, _ := TemplateByName(c.name)
			return t, true
		}
	}
	return Template{}, false
}

func badRole(i int, m Message) error {
	return fmt.Errorf("%w: message %d has role %q", ErrBadMessages, i, m.Role)
}

// Alpaca preambles (Taori et al., 2023), used when the conversation has no system message.
const (
	alpacaPreamble      = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
	alpacaPreambleInput = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n"
)

// renderAlpaca takes [system] user [input] [assistant]:
//
//	{preamble}### Instruction:\n{user}\n\n### Input:\n{input}\n\n### Response:\n{assistant}
func renderAlpaca(msgs []Message, gen bool) (string, error) {
	var system, user, input, reply *string
	for i := range msgs {
		m := &msgs[i]
		switch {
		case m.Role == "system" && i == 0:
			system = &m.Content
		case m.Role == "user" && user == nil:
			user = &m.Content
		case m.Role == "input" && user != nil && input == nil && reply == nil:
			input = &m.Content
		case m.Role == "assistant" && user != nil && reply == nil && i == len(msgs)-1:
			reply = &m.Content
		default:
			return "", badRole(i, *m)
		}
	}
	if user == nil {
		return "", fmt.Errorf("%w: alpaca needs a user instruction", ErrBadMessages)
	}
	var sb strings.Builder
	switch {
	case system != nil:
		if *system != "" {
			sb.WriteString(*system + "\n\n")
		}
	case input != nil:
		sb.WriteString(alpacaPreambleInput)
	default:
		sb.WriteString(alpacaPreamble)
	}
	sb.WriteString("### Instruction:\n" + *user + "\n\n")
	if input != nil {
		sb.WriteString("### Input:\n" + *input + "\n\n")
	}
	if gen || reply != nil {
		sb.WriteString("### Response:\n")
	}
	if reply != nil {
		sb.WriteString(*reply)
	}
	return sb.String(), nil
}

func checkRoles(msgs []Message, roles ...string) error {
	for i, m := range msgs {
		if !slices.Contains(roles, m.Role) {
			return badRole(i, m)
		}
	}
	return nil
}

// renderLlama3: <|begin_of_text|> then per message
// <|start_header_id|>{role}<|end_header_id|>\n\n{content, trimmed}<|eot_id|>.
func renderLlama3(msgs []Message, gen bool) (string, error) {
	if err := checkRoles(msgs, "system", "user", "assistant"); err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.WriteString("<|begin_of_text|>")
	for _, m := range msgs {
		sb.WriteString("<|start_header_id|>" + m.Role + "<|end_header_id|>\n\n" + strings.TrimSpace(m.Content) + "<|eot_id|>")
	}
	if gen {
		sb.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
	}
	return sb.String(), nil
}

// renderChatML: <|im_start|>{role}\n{content}<|im_end|>\n per message, after a default
// system message when one is given and the conversation has none (Qwen2).
func renderChatML(msgs []Message, gen bool, defaultSystem string) (string, error) {
	if err := checkRoles(msgs, "system", "user", "assistant"); err != nil {
		return "", err
	}
	var sb strings.Builder
	if defaultSystem != "" && (len(msgs) == 0 || msgs[0].Role != "system") {
		sb.WriteString("<|im_start|>system\n" + defaultSystem + "<|im_end|>\n")
	}
	for _, m := range msgs {
		sb.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
	}
	if gen {
		sb.WriteString("<|im_start|>assistant\n")
	}
	return sb.String(), nil
}

// renderLlama2: <s>[INST] {user} [/INST] {assistant} </s> per exchange, the system
// message folded into the first instruction as <<SYS>>\n{system}\n<</SYS>>\n\n. Users and
// assistants must alternate, starting with a user.
func renderLlama2(msgs []Message, _ bool) (string, error) {
	system, hasSystem := "", false
	if len(msgs) > 0 && msgs[0].Role == "system" {
		system, hasSystem, msgs = msgs[0].Content, true, msgs[1:]
	}
	var sb strings.Builder
	for i, m := range msgs {
		want := "user"
		if i%2 == 1 {
			want = "assistant"
		}
		if m.Role != want {
			return "", fmt.Errorf("%w: roles must alternate user/assistant, message %d is %q", ErrBadMessages, i, m.Role)
		}
		content := m.Content
		if i == 0 && hasSystem {
			content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content
		}
		if m.Role == "user" {
			sb.WriteString("<s>[INST] " + strings.TrimSpace(content) + " [/INST]")
		} else {
			sb.WriteString(" " + strings.TrimSpace(content) + " </s>")
		}
	}
	return sb.String(), nil
}

// renderPhi3: <|{role}|>\n{content}<|end|>\n per message.
func renderPhi3(msgs []Message, gen bool) (string, error) {
	if err := checkRoles(msgs, "system", "user", "assistant"); err != nil {
		return "", err
	}
	var sb strings.Builder
	for _, m := range msgs {
		sb.WriteString("<|" + m.Role + "|>\n" + m.Content + "<|end|>\n")
	}
	if gen {
		sb.WriteString("<|assistant|>\n")
	}
	return sb.String(), nil
}
