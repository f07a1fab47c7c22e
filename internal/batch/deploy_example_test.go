package batch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKubernetesExampleLoads loads the accounts file of the Kubernetes
// example Secret (deploy/kubernetes/secret.example.yaml) as the Job's pod
// would, so that the example cannot drift from what Load accepts.
func TestKubernetesExampleLoads(t *testing.T) {
	text, err := os.ReadFile("../../deploy/kubernetes/secret.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{} // the stringData blocks: key -> content
	var key string
	for _, line := range strings.Split(string(text), "\n") {
		switch {
		case strings.HasPrefix(line, "  ") && strings.HasSuffix(line, ": |"):
			key = strings.TrimSuffix(strings.TrimSpace(line), ": |")
		case key != "" && strings.HasPrefix(line, "    "):
			files[key] += strings.TrimPrefix(line, "    ") + "\n"
		default:
			key = ""
		}
	}
	csv, ok := files["accounts.csv"]
	if !ok {
		t.Fatal("no accounts.csv in the example Secret")
	}
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("ALICE_IMAP_PASSWORD", "x")
	t.Setenv("BOB_POP3_PASSWORD", "y")
	accounts, err := Load(filepath.Join(dir, "accounts.csv"), Defaults{})
	if err != nil {
		t.Fatalf("the example accounts file does not load: %v\n%s", err, csv)
	}
	if len(accounts) != strings.Count(strings.TrimSpace(csv), "\n") {
		t.Errorf("%d accounts from\n%s", len(accounts), csv)
	}
}
