package bridge

import (
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestClassifyAppendClientErrors: the errors imapappend's Client returns
// (see its tests for when it returns each) are classified as the pipeline
// needs. A refusal is certain; a BYE or a timeout leaves the outcome unknown.
func TestClassifyAppendClientErrors(t *testing.T) {
	bye := &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Server shutting down."}
	tests := []struct {
		name      string
		err       error
		kind      errKind
		certain   bool
		temporary bool
	}{
		{"BYE then close", fmt.Errorf("%w (%w)", bye, io.ErrUnexpectedEOF), errTemporary, false, true},
		{"no tagged reply", fmt.Errorf("no reply within 1s: %w", os.ErrDeadlineExceeded), errTemporary, false, true},
		{"refused before the literal", &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate}, errTryCreate, true, false},
		{"over APPENDLIMIT", &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig}, errRefused, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, certain := classifyAppendError(tt.err)
			if kind != tt.kind || certain != tt.certain {
				t.Errorf("classified as %v, certain %v; want %v, %v", kind, certain, tt.kind, tt.certain)
			}
			if tt.temporary && !isTemporary(tt.err) {
				t.Error("a dropped connection should be retried")
			}
		})
	}
}
