package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"gnutella/protocol"
)

func decodeCommand() *cli.Command {
	return &cli.Command{
		Name:      "decode",
		Usage:     "print every handshake block and descriptor of a raw Gnutella byte stream",
		ArgsUsage: "FILE",
		Description: "Reads FILE as one direction of a Gnutella TCP connection (handshake blocks\n" +
			"ending with an empty line, then 23-byte-header descriptors) and prints each\n" +
			"descriptor: type, GUID, TTL, hops and its decoded fields (GGEP keys, URNs).\n" +
			"Exits with status 1 and the offset of the first bad byte if the stream is malformed.",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("decode needs exactly one FILE; try: gnutella decode protocol/testdata/gtk-gnutella/leaf-to-ultrapeer.bin", 2)
			}
			f, err := os.Open(c.Args().First())
			if err != nil {
				return cli.Exit(fmt.Sprintf("cannot open %s: %v", c.Args().First(), err), 1)
			}
			defer f.Close()
			if err := protocol.Dump(os.Stdout, f); err != nil {
				return cli.Exit(fmt.Sprintf("%s: %v", c.Args().First(), err), 1)
			}
			return nil
		},
	}
}
