package tokenizer_test

import (
	"fmt"

	"github.com/lrtrain/lrtrain/tokenizer"
)

func Example() {
	tok, err := tokenizer.Load("testdata/llama3/tokenizer.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	ids, err := tok.Encode("Hello world 2024", true)
	if err != nil {
		fmt.Println(err)
		return
	}
	text, _ := tok.Decode(ids, true)
	bos, _ := tok.BOS()
	fmt.Println(ids, bos)
	fmt.Printf("%q\n", text)

	tpl, _ := tokenizer.TemplateByName("chatml")
	prompt, _ := tpl.Render([]tokenizer.Message{{Role: "user", Content: "Hi"}}, true)
	fmt.Printf("%q\n", prompt)
	// Output:
	// [578 325 320 220 17 323 19] 578
	// "Hello world 2024"
	// "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
}

// A BERT-style file: BertNormalizer (lower case, accents stripped), BertPreTokenizer,
// WordPiece and the [CLS] ... [SEP] template.
func Example_wordPiece() {
	tok, err := tokenizer.Load("testdata/hf/bert-uncased/tokenizer.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	ids, err := tok.Encode("Retokenized: UNBELIEVABLY Café!", true)
	if err != nil {
		fmt.Println(err)
		return
	}
	var pieces []string
	for _, id := range ids {
		s, _ := tok.Token(id)
		pieces = append(pieces, s)
	}
	text, _ := tok.Decode(ids, true)
	fmt.Println(pieces)
	fmt.Printf("%q\n", text)
	// Output:
	// [[CLS] re ##to ##k ##en ##ize ##d : u ##n ##b ##el ##i ##e ##v ##ab ##ly cafe ! [SEP]]
	// "retokenized : unbelievably cafe!"
}
