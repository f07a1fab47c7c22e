package demo

import "testing"

// TestCheckBeforeMigrating: the servers start with every sample message on
// POP3 and none in the folder, and Check does not call that a pass.
func TestCheckBeforeMigrating(t *testing.T) {
	s, err := Start(Account{"alice", "p1"}, Account{"alice@example.com", "p2"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Mail) < 8 {
		t.Fatalf("%d sample messages, want the whole sample mailbox", len(s.Mail))
	}
	r := s.Check("Migrated")
	want := Result{InFolder: 0, Identical: 0, Total: len(s.Mail), LeftOnPOP3: len(s.Mail)}
	if r != want || r.Passed() {
		t.Errorf("Check = %+v (passed %v), want %+v and no pass", r, r.Passed(), want)
	}
}
