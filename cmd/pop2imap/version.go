package main

import "runtime/debug"

// version reports the module version this binary was built from, as set by
// `go install ...@version`, or "(devel)" for a local build.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
