package state_test

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/pop2imap/pop2imap/state"
)

// fullDisk fails every fsync, as a full disk can.
type fullDisk struct{ state.File }

func (fullDisk) Sync() error { return syscall.ENOSPC }

// A test of the pipeline can simulate a full disk by wrapping the journal
// file. After the first failure the journal refuses every change.
func ExampleOpenWithOptions() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "test.journal")
	if j, err := state.Open(path); err == nil { // create it while the disk has room
		j.Close()
	}

	j, err := state.OpenWithOptions(path, state.Options{WrapFile: func(f *os.File) state.File {
		if f.Name() == path {
			return fullDisk{f}
		}
		return f
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer j.Close()
	_, err = j.BeginAppend(state.Entry{UIDL: "1"})
	fmt.Println(err == nil, err != nil && err.Error() == "state: fsync "+path+": no space left on device")
	_, again := j.BeginAppend(state.Entry{UIDL: "2"})
	fmt.Println(again == err)
	// Output:
	// false true
	// true
}
