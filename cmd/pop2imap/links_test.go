package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryLinksNoTestHelpers: the shipped binary links the demo and the
// two in-process servers it runs, and none of the packages that exist only
// for tests (docs/DESIGN.md, "What the binary links").
func TestBinaryLinksNoTestHelpers(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the binary's packages")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	const mod = "github.com/pop2imap/pop2imap/"
	for _, p := range []string{mod + "internal/demo", mod + "internal/pop3test", mod + "internal/imaptest"} {
		if !deps[p] {
			t.Errorf("the binary does not link %s", p)
		}
	}
	for _, p := range []string{
		"testing",
		mod + "internal/testcert", mod + "internal/testnet", mod + "internal/testservers",
		mod + "internal/dovecottest", mod + "internal/oauthtest", mod + "internal/faultloop",
		mod + "internal/faultproxy", mod + "internal/delayproxy", mod + "internal/tcprelay",
	} {
		if deps[p] {
			t.Errorf("the binary links %s, which exists for tests only", p)
		}
	}
}
