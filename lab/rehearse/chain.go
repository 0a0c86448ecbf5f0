package rehearse

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ChainOK reports whether every step of a chain ran, and ran as promised.
func ChainOK(steps []Step, results []*Result) bool {
	if len(results) != len(steps) {
		return false
	}
	for _, r := range results {
		if !r.OK {
			return false
		}
	}
	return true
}

// writeChainIndex writes dir/index.md: one line per step of the chain with
// its outcome and a link to its report.
func writeChainIndex(dir string, steps []Step, results []*Result) error {
	var b strings.Builder
	verdict := "as promised"
	if !ChainOK(steps, results) {
		verdict = "NOT as promised"
	}
	fmt.Fprintf(&b, "# Chained rehearsal: %d runbooks, %s\n\n", len(steps), verdict)
	b.WriteString("| step | runbook | outcome | as promised | took | report |\n|---|---|---|---|---|---|\n")
	for i, st := range steps {
		if i >= len(results) {
			fmt.Fprintf(&b, "| %d | %s | not run (a step before failed) | | | |\n", i+1, st.Runbook)
			continue
		}
		res := results[i]
		ok := "yes"
		if !res.OK {
			ok = "**no**: " + strings.Join(res.Problems, "; ")
		}
		link := ""
		if res.ReportDir != "" {
			rel, err := filepath.Rel(dir, res.ReportDir)
			if err != nil {
				rel = res.ReportDir
			}
			link = fmt.Sprintf("[report](%s/report.md)", filepath.ToSlash(rel))
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s |\n", i+1, st.Runbook, res.FinalOutcome(), ok,
			res.Took.Round(time.Millisecond), link)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "index.md"), []byte(b.String()), 0o644)
}
