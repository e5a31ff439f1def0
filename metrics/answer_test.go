package metrics

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
)

func TestExtractAnswer(t *testing.T) {
	cases := []struct {
		text    string
		choices []string
		want    string
	}{
		// The form commonsense-170k's outputs teach.
		{"the correct answer is answer2", QAAnswers, "answer2"},
		{"the correct answer is true", BoolQAnswers, "true"},
		{"the correct answer is option2</s>", WinoGrandeAnswers, "option2"},
		// Case: tokens in any case, returned as spelt in the set.
		{"The Correct Answer Is TRUE", BoolQAnswers, "true"},
		// The phrase wins over an earlier mention.
		{"answer1 looks right but the correct answer is answer3", QAAnswers, "answer3"},
		// Without the phrase (or nothing after it): the first token.
		{"ending4, I think; not ending1", HellaSwagAnswers, "ending4"},
		{"answer3 — the correct answer is", QAAnswers, "answer3"},
		// Whole tokens only.
		{"answer10 is not an option, answer1 is", QAAnswers, "answer1"},
		{"untrue, so false", BoolQAnswers, "false"},
		{"solution1_alt or solution2", PIQAAnswers, "solution2"},
		{"(solution1)", PIQAAnswers, "solution1"},
		// Letters: exact case, whole tokens.
		{"Apple pie; a fine choice is C.", LetterAnswers, "C"},
		{"the correct answer is (B)", LetterAnswers, "B"},
		// An echoed prompt is skipped.
		{"### Instruction:\nanswer1 or answer2?\n### Response:\nthe correct answer is answer2", QAAnswers, "answer2"},
		{"### Instruction:\nanswer1?\n### Response:\n", QAAnswers, ""},
		// Nothing recognisable.
		{"I do not know", QAAnswers, ""},
		{"", BoolQAnswers, ""},
		{"véritable true", BoolQAnswers, "true"},
		{"éfalse true", BoolQAnswers, "true"}, // é is a letter: "false" is inside a word
	}
	for _, c := range cases {
		got, ok := ExtractAnswer(c.text, c.choices)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("ExtractAnswer(%q) = %q, %v; want %q", c.text, got, ok, c.want)
		}
	}
}

func TestAnswerSet(t *testing.T) {
	for gold, want := range map[string][]string{
		"answer3": QAAnswers, "True": BoolQAnswers, "solution2": PIQAAnswers, "ending1": HellaSwagAnswers,
		" option2 ": WinoGrandeAnswers, "D": LetterAnswers,
	} {
		if got, ok := AnswerSet(gold); !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("AnswerSet(%q) = %v, %v; want %v", gold, got, ok, want)
		}
	}
	for _, gold := range []string{"d", "answer6", "yes", ""} {
		if got, ok := AnswerSet(gold); ok {
			t.Errorf("AnswerSet(%q) = %v, want none", gold, got)
		}
	}
}

func TestAnswerAccuracy(t *testing.T) {
	gold := []string{"answer2", "true", "option1", "ending3"}
	gen := []string{"the correct answer is answer2", "the correct answer is false", "option1", "no idea"}
	if a, err := AnswerAccuracy(gold, gen); err != nil || a != 0.5 {
		t.Errorf("AnswerAccuracy = %v, %v; want 0.5", a, err)
	}
	if _, err := AnswerAccuracy([]string{"maybe"}, []string{"maybe"}); !errors.Is(err, ErrInput) {
		t.Errorf("unknown gold: %v", err)
	}
	if _, err := AnswerAccuracy(nil, nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty: %v", err)
	}
}

// TestCommonsenseTestdataOutputsScorePerfectly reads the data package's synthetic
// commonsense file: every record's output must yield its answer.
func TestCommonsenseTestdataOutputsScorePerfectly(t *testing.T) {
	raw, err := os.ReadFile("../data/testdata/commonsense_tiny.json")
	if err != nil {
		t.Fatal("data/testdata/commonsense_tiny.json is committed with the data package:", err)
	}
	var recs []struct{ Output, Answer string }
	if err := json.Unmarshal(raw, &recs); err != nil {
		t.Fatal(err)
	}
	var gold, gen []string
	for _, r := range recs {
		gold, gen = append(gold, r.Answer), append(gen, r.Output)
	}
	if a, err := AnswerAccuracy(gold, gen); err != nil || a != 1 {
		t.Errorf("accuracy of the gold outputs = %v, %v; want 1", a, err)
	}
}
