// Package faultloop holds the fault loop and the hostile-server tests, which
// run the real pop2imap binary against a real Dovecot (internal/dovecottest)
// through internal/faultproxy, and the corpus they copy: the bad mail of
// testdata/badmail and a seeded, deterministic set of ordinary messages.
//
// The tests are in this package's _test.go files:
//
//   - TestFaultLoop cuts connections at random byte offsets and kills the
//     binary with SIGKILL at random moments, reruns until the migration is
//     complete, and after every run checks that nothing was lost, duplicated
//     or altered. It runs only when POP2IMAP_FAULTLOOP is set, for example
//     POP2IMAP_FAULTLOOP=cuts:10,kills:10.
//   - TestHostileServers points the binary at servers that misbehave (an
//     endless line, an endless reply, a huge -ERR, a garbage greeting, a
//     message cut off, an IMAP server that never answers) and checks that
//     each run ends with a clear error, the right exit code and bounded
//     memory.
//   - TestDovecotBadMail copies the bad mail through a real Dovecot, and
//     TestDovecotRecoversLostReply loses the reply to each bad message's
//     APPEND and checks that the retry finds the stored copy.
package faultloop
