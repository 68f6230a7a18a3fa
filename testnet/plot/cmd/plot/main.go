// Command plot draws the PNG and SVG plots of search experiments from the results.json that
// `gnutella testnet experiment --out DIR` wrote, into the same directory:
//
//	go run ./testnet/plot/cmd/plot DIR...
package main

import (
	"fmt"
	"os"

	"gnutella/testnet/plot"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: plot DIR... (each DIR holds the results.json of an experiment)")
		os.Exit(2)
	}
	for _, dir := range os.Args[1:] {
		if err := plot.Dir(dir); err != nil {
			fmt.Fprintln(os.Stderr, "plot:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "wrote the plots of %s\n", dir)
	}
}
