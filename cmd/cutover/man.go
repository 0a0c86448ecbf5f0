package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newGenManCmd writes the man pages (make man). The pages are generated
// from the commands, so they say what --help says; the date is
// SOURCE_DATE_EPOCH's when it is set, for reproducible pages.
func newGenManCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "gen-man DIR",
		Short:   "Write a man page for every command into DIR (section 1)",
		Hidden:  true,
		Example: `  cutover gen-man bin/man/man1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			h := &doc.GenManHeader{Section: "1", Source: "cutover", Manual: "cutover manual"}
			if err := doc.GenManTree(cmd.Root(), h, dir); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			return nil
		},
	}
}
