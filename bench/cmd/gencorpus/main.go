// Command gencorpus writes a deterministic benchmark corpus, one file per
// message (000001.eml, ...), to a directory.
//
//	go run ./bench/cmd/gencorpus -seed 1 -n 2000 -huge 20,100 -out /tmp/corpus
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pop2imap/pop2imap/bench/corpus"
)

func main() {
	seed := flag.Uint64("seed", 1, "corpus seed: the same seed gives the same bytes")
	n := flag.Int("n", 2000, "number of messages in the usual size mix")
	huge := flag.String("huge", "", "comma-separated sizes in MB of extra single-attachment messages (e.g. 20,100)")
	out := flag.String("out", "", "directory to write into (created)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gencorpus: -out is required")
		os.Exit(2)
	}
	specs := make([]corpus.Spec, 0, *n)
	for i := 0; i < *n; i++ {
		specs = append(specs, corpus.SpecFor(*seed, i))
	}
	for _, f := range strings.Split(*huge, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		mb, err := strconv.Atoi(f)
		if err != nil || mb <= 0 {
			fmt.Fprintf(os.Stderr, "gencorpus: -huge: %q is not a size in MB\n", f)
			os.Exit(2)
		}
		specs = append(specs, corpus.HugeSpec(len(specs), int64(mb)<<20))
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "gencorpus:", err)
		os.Exit(1)
	}
	var total int64
	for _, s := range specs {
		f, err := os.Create(filepath.Join(*out, fmt.Sprintf("%06d.eml", s.Index+1)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "gencorpus:", err)
			os.Exit(1)
		}
		size, err := corpus.Write(f, *seed, s)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "gencorpus:", err)
			os.Exit(1)
		}
		total += size
	}
	fmt.Printf("%d messages, %.1f MB, seed %d, in %s\n", len(specs), float64(total)/1e6, *seed, *out)
}
