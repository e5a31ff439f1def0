// Command gen writes the synthetic datasets of data/testdata:
//
//	go run ./data/internal/synth/gen -out data/testdata
package main

import (
	"flag"
	"log"

	"github.com/lrtrain/lrtrain/data/internal/synth"
)

func main() {
	out := flag.String("out", "data/testdata", "directory to write into")
	flag.Parse()
	if err := synth.Write(*out); err != nil {
		log.Fatal(err)
	}
}
