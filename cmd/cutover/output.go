package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/cutover/cutover/internal/words"
)

// formatsAnnotation is the flag annotation that lists the formats -o takes.
const formatsAnnotation = "cutover_formats"

// addOutputFlag declares -o/--output, the format of what the command
// prints: formats[0] is the default. Every command that prints a result
// has it, with text and json at least.
func addOutputFlag(c *cobra.Command, formats ...string) {
	c.Flags().StringP("output", "o", formats[0], "output format: "+words.OrList(formats))
	_ = c.Flags().SetAnnotation("output", formatsAnnotation, formats)
	_ = c.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
}

// checkOutput checks the value of -o (from a flag, CUTOVER_OUTPUT or the
// config file) against the formats of cmd.
func checkOutput(cmd *cobra.Command, v *viper.Viper) error {
	f := cmd.Flags().Lookup("output")
	if f == nil {
		return nil
	}
	formats := f.Annotations[formatsAnnotation]
	if len(formats) == 0 {
		return nil
	}
	o := v.GetString("output")
	for _, want := range formats {
		if o == want {
			return nil
		}
	}
	err := fmt.Errorf("-o %q: want %s", o, words.OrList(formats))
	if cmd.Flags().Lookup("out") != nil && strings.ContainsAny(o, "/.") {
		// lab export used to take the file with -o.
		err = fmt.Errorf("-o %q: want %s (-o is the output format; write a file with --out %s)", o, words.OrList(formats), o)
	}
	return usageErr(err)
}

// output is the format -o asks for.
func (a *app) output() string { return a.v.GetString("output") }

// jsonOut reports whether -o asks for JSON.
func (a *app) jsonOut() bool { return a.output() == "json" }

// writeJSON writes v to standard output as indented JSON.
func (a *app) writeJSON(v any) error {
	enc := json.NewEncoder(a.out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// commandResult is the JSON result of a command that answers with a line
// (pause, resume, step, confirm, reconcile).
type commandResult struct {
	Command string `json:"command"`
	Result  string `json:"result"`
	// Point and Go: confirm.
	Point string `json:"point,omitempty"`
	Go    *bool  `json:"go,omitempty"`
	// Decision: reconcile.
	Decision string `json:"decision,omitempty"`
}

// result prints a command's answer: the line, or with -o json the result.
func (a *app) result(r commandResult) error {
	if a.jsonOut() {
		return a.writeJSON(r)
	}
	_, err := fmt.Fprintln(a.out, r.Result)
	return err
}

// logLines is a writer that turns each line written to it into a log
// record: progress that a package writes as lines goes to the log stream
// (standard error, in the log's format) when standard output holds JSON.
type logLines struct {
	log zerolog.Logger

	mu      sync.Mutex
	pending []byte
}

func (w *logLines) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, p...)
	for {
		i := bytes.IndexByte(w.pending, '\n')
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(string(w.pending[:i])); line != "" {
			w.log.Info().Msg(line)
		}
		w.pending = w.pending[i+1:]
	}
	return len(p), nil
}

// flush logs a last line that lacked its newline.
func (w *logLines) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if line := strings.TrimSpace(string(w.pending)); line != "" {
		w.log.Info().Msg(line)
	}
	w.pending = nil
}
