// Package humanize writes quantities the way a person reads them: bytes in
// binary units with one decimal. The command's summaries and the batch
// report share it, so a size reads the same on a terminal and on a page.
package humanize

import "fmt"

// Bytes writes n bytes as "512 B", "1.5 KiB", "3.2 GiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
