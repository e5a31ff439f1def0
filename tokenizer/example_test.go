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
