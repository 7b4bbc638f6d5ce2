// Opens a signed note with the Go team's golang.org/x/mod/sumdb/note
// (Debian's golang-golang-x-mod-dev) under one verifier key, and prints how
// many signatures it verified and how many it ignored as unknown: a
// checkpoint carrying witness cosignatures must still open under the log's
// own key. Used by sealog's witness tests; GO111MODULE=off, GOPATH at
// /usr/share/gocode.
package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/mod/sumdb/note"
)

func main() {
	msg, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Println("read:", err)
		os.Exit(2)
	}
	v, err := note.NewVerifier(os.Args[1])
	if err != nil {
		fmt.Println("verifier:", err)
		os.Exit(2)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	fmt.Printf("verified %d unverified %d\n", len(n.Sigs), len(n.UnverifiedSigs))
}
