package metrics

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The answer tokens of the commonsense-170k tasks (LLM-Adapters' layout): the gold
// "answer" field of a record is one of them, and a well-trained model's output reads
// "the correct answer is <token>".
var (
	BoolQAnswers      = []string{"true", "false"}                                       // BoolQ
	PIQAAnswers       = []string{"solution1", "solution2"}                              // PIQA
	QAAnswers         = []string{"answer1", "answer2", "answer3", "answer4", "answer5"} // SIQA, ARC-e, ARC-c, OBQA
	HellaSwagAnswers  = []string{"ending1", "ending2", "ending3", "ending4"}            // HellaSwag
	WinoGrandeAnswers = []string{"option1", "option2"}                                  // WinoGrande
	LetterAnswers     = []string{"A", "B", "C", "D", "E"}                               // letter-labelled multiple choice
)

var answerSets = [][]string{BoolQAnswers, PIQAAnswers, QAAnswers, HellaSwagAnswers, WinoGrandeAnswers, LetterAnswers}

// AnswerSet returns the answer tokens of the task that gold belongs to (QAAnswers for
// "answer3", BoolQAnswers for "true", …), matched as ExtractAnswer matches tokens; false
// when gold is none of them.
func AnswerSet(gold string) ([]string, bool) {
	g := strings.TrimSpace(gold)
	for _, set := range answerSets {
		for _, c := range set {
			if sameToken(g, c) {
				return append([]string(nil), set...), true
			}
		}
	}
	return nil, false
}

// sameToken compares case-insensitively, except single characters (letters), which must
// match exactly.
func sameToken(s, choice string) bool {
	if utf8.RuneCountInString(choice) == 1 {
		return s == choice
	}
	return strings.EqualFold(s, choice)
}

const (
	responseMarker = "### Response:"
	answerPhrase   = "the correct answer is"
)

// ExtractAnswer finds which of choices a generated text answers, and returns the choice as
// spelt in choices. The rules, in order:
//
//  1. If the text contains "### Response:" (the prompt was echoed), only what follows its
//     first occurrence is read, as LLM-Adapters' evaluation does.
//  2. If the text contains "the correct answer is" (any case), the first choice after its
//     first occurrence is the answer.
//  3. Otherwise (or when nothing follows the phrase), the first choice anywhere in the text.
//
// A choice is found only as a whole token: not preceded or followed by a letter, digit or
// underscore, so "answer1" is not found in "answer10", "true" not in "untrue" and "A" not in
// "Apple". Choices of more than one character match in any case ("True" is "true");
// single characters (A–E) must match exactly, so the article "a" is not answer "A" (the
// capitalised article at the start of a sentence still is: prefer option tokens where the
// data offers them). When two choices start at the same place the longer wins.
//
// LLM-Adapters' extract_answer takes the first case-sensitive substring match of the
// task's tokens anywhere in the response. On the outputs the commonsense-170k training data
// teaches ("the correct answer is answer2") both give the same token; they differ on
// "untrue", "True", or a text naming a wrong option before the phrase.
func ExtractAnswer(text string, choices []string) (string, bool) {
	if _, after, ok := strings.Cut(text, responseMarker); ok {
		text = after
	}
	if i := indexFold(text, answerPhrase); i >= 0 {
		if c, ok := firstChoice(text[i+len(answerPhrase):], choices); ok {
			return c, true
		}
	}
	return firstChoice(text, choices)
}

// indexFold is strings.Index ignoring ASCII case (the phrase is ASCII, so byte offsets
// in text stay valid).
func indexFold(text, phrase string) int {
	n := len(phrase)
	for i := 0; i+n <= len(text); i++ {
		if strings.EqualFold(text[i:i+n], phrase) {
			return i
		}
	}
	return -1
}

// firstChoice returns the choice with the leftmost whole-token occurrence in text.
func firstChoice(text string, choices []string) (string, bool) {
	best, bestAt := "", -1
	for _, c := range choices {
		at := tokenIndex(text, c)
		if at >= 0 && (bestAt < 0 || at < bestAt || (at == bestAt && len(c) > len(best))) {
			best, bestAt = c, at
		}
	}
	return best, bestAt >= 0
}

// tokenIndex returns the byte offset of the first whole-token occurrence of choice in text.
func tokenIndex(text, choice string) int {
	if choice == "" {
		return -1
	}
	hay, needle := text, choice
	if utf8.RuneCountInString(choice) > 1 {
		hay, needle = strings.ToLower(text), strings.ToLower(choice)
		if len(hay) != len(text) { // lower-casing changed byte lengths: compare exactly instead
			hay, needle = text, choice
		}
	}
	for from := 0; from <= len(hay)-len(needle); {
		i := strings.Index(hay[from:], needle)
		if i < 0 {
			return -1
		}
		at := from + i
		before, _ := utf8.DecodeLastRuneInString(hay[:at])
		after, _ := utf8.DecodeRuneInString(hay[at+len(needle):])
		if !wordRune(before) && !wordRune(after) {
			return at
		}
		from = at + 1
	}
	return -1
}

func wordRune(r rune) bool {
	return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_')
}

// AnswerAccuracy is the fraction of generated texts whose extracted answer equals the gold
// answer; each text is read with the answer set of its gold (AnswerSet), so datasets that
// mix tasks, as commonsense-170k does, are scored per task. A text with no recognisable
// answer counts as wrong. A gold answer outside every set is ErrInput.
func AnswerAccuracy(gold, generated []string) (float64, error) {
	if err := pair(len(gold), len(generated)); err != nil {
		return 0, fmt.Errorf("answer accuracy: %w", err)
	}
	right := 0
	for i := range gold {
		set, ok := AnswerSet(gold[i])
		if !ok {
			return 0, fmt.Errorf("answer accuracy: %w: gold answer %d, %q, is not a commonsense-170k answer token", ErrInput, i, gold[i])
		}
		if got, ok := ExtractAnswer(generated[i], set); ok && sameToken(strings.TrimSpace(gold[i]), got) {
			right++
		}
	}
	return float64(right) / float64(len(gold)), nil
}
