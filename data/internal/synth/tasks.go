package synth

import (
	"fmt"
	"strings"
)

var words = []string{
	"apple", "river", "garden", "stone", "cloud", "window", "forest", "candle", "market",
	"silver", "bridge", "planet", "rabbit", "pencil", "harbor", "winter", "lemon", "tiger",
	"castle", "meadow", "rocket", "violet", "anchor", "butter",
}

var opposites = [][2]string{
	{"hot", "cold"}, {"big", "small"}, {"fast", "slow"}, {"up", "down"}, {"early", "late"},
	{"light", "dark"}, {"full", "empty"}, {"open", "closed"}, {"young", "old"}, {"wet", "dry"},
	{"loud", "quiet"}, {"hard", "soft"}, {"high", "low"}, {"rich", "poor"}, {"happy", "sad"},
}

// alpacaRecord draws one of five small tasks; the opposites task has no input.
func alpacaRecord(r *rng) Instruction {
	switch r.intn(5) {
	case 0:
		a, b := r.intn(50), r.intn(50)
		return Instruction{Instruction: "Add the two numbers.", Input: fmt.Sprintf("%d + %d", a, b),
			Output: fmt.Sprint(a + b)}
	case 1:
		w := pick(r, words)
		return Instruction{Instruction: "Reverse the letters of the word.", Input: w, Output: reverse(w)}
	case 2:
		w := pick(r, words)
		return Instruction{Instruction: "Write the word in capital letters.", Input: w, Output: upper(w)}
	case 3:
		w := pick(r, words)
		return Instruction{Instruction: "Count the vowels in the word.", Input: w,
			Output: fmt.Sprint(strings.Count(w, "a") + strings.Count(w, "e") + strings.Count(w, "i") +
				strings.Count(w, "o") + strings.Count(w, "u"))}
	default:
		pair := opposites[r.intn(len(opposites))]
		if r.intn(2) == 1 {
			pair[0], pair[1] = pair[1], pair[0]
		}
		return Instruction{Instruction: fmt.Sprintf("What is the opposite of %q?", pair[0]), Output: pair[1]}
	}
}

// commonsenseRecord is a two-choice question in the commonsense-170k style: the answer
// choices in the instruction, an empty input, "the correct answer is X" as output and X as
// answer.
func commonsenseRecord(r *rng) Instruction {
	a, b := r.intn(100), r.intn(100)
	for a == b {
		b = r.intn(100)
	}
	question, correct := "Which number is larger?", 1
	if r.intn(2) == 1 {
		question = "Which number is smaller?"
		if a > b {
			correct = 2
		}
	} else if b > a {
		correct = 2
	}
	answer := fmt.Sprintf("answer%d", correct)
	return Instruction{
		Instruction: fmt.Sprintf("Please choose the correct answer to the question: %s\n\n"+
			"Answer1: %d Answer2: %d\n\nAnswer format: answer1/answer2", question, a, b),
		Output: "the correct answer is " + answer,
		Answer: answer,
	}
}

var (
	subjects     = []string{"movie", "meal", "concert", "book", "hotel", "game", "lecture", "trip", "show", "service"}
	positiveAdjs = []string{"wonderful", "delightful", "excellent", "charming", "superb", "pleasant", "brilliant"}
	negativeAdjs = []string{"awful", "boring", "dreadful", "tedious", "terrible", "dull", "disappointing"}
	intensifiers = []string{"", "really ", "truly ", "quite ", "very "}
)

// sentimentRecord is "the <subject> was [not] <adjective>", labelled by the adjective's
// polarity, flipped by "not".
func sentimentRecord(r *rng) Sentiment {
	positive := r.intn(2) == 1
	adj := pick(r, negativeAdjs)
	if positive {
		adj = pick(r, positiveAdjs)
	}
	negated := r.intn(5) == 0
	not := ""
	if negated {
		not = "not "
		positive = !positive
	}
	label := "negative"
	if positive {
		label = "positive"
	}
	text := fmt.Sprintf("the %s was %s%s%s", pick(r, subjects), not, pick(r, intensifiers), adj)
	return Sentiment{Text: text, Label: label}
}
