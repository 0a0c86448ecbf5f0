package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
)

// TestExamples walks the command tree: every command a person can run has
// an Example, and every line of it that runs cutover is a command line
// this cutover takes: the command exists, its flags parse, its arguments
// are valid (for ValidArgs, one of them), -o names one of its formats, and
// a runbook it names exists. At least one line runs the command itself
// (for a group such as lab, one of its subcommands).
func TestExamples(t *testing.T) {
	root := newRootCmd(newApp())
	walk(root, func(c *cobra.Command) {
		if c.Hidden && c.Name() != "gen-man" || !c.Runnable() && c != root {
			return
		}
		t.Run(c.CommandPath(), func(t *testing.T) {
			if strings.TrimSpace(c.Example) == "" {
				t.Fatalf("%s has no Example", c.CommandPath())
			}
			self := false
			for _, line := range strings.Split(c.Example, "\n") {
				args := exampleArgs(line)
				if args == nil {
					continue
				}
				path, err := checkExample(args)
				if err != "" {
					t.Errorf("example %q: %s", strings.TrimSpace(line), err)
				}
				// A group's examples run its subcommands.
				self = self || path == c.CommandPath() || c.HasSubCommands() && strings.HasPrefix(path, c.CommandPath()+" ")
			}
			if !self {
				t.Errorf("no example runs %s:\n%s", c.CommandPath(), c.Example)
			}
		})
	})
}

// checkExample parses args (after "cutover") as cutover would and returns
// the command's path, or what is wrong.
func checkExample(args []string) (path, problem string) {
	root := newRootCmd(newApp())
	c, rest, err := root.Find(args)
	if err != nil {
		return "", err.Error()
	}
	if err := c.ParseFlags(rest); err != nil {
		return c.CommandPath(), err.Error()
	}
	pos := c.Flags().Args()
	if c.HasSubCommands() && len(pos) > 0 {
		return c.CommandPath(), "unknown command " + pos[0]
	}
	if err := c.ValidateArgs(pos); err != nil {
		return c.CommandPath(), err.Error()
	}
	if len(c.ValidArgs) > 0 && len(pos) > 0 && !slices.Contains(c.ValidArgs, pos[0]) {
		return c.CommandPath(), pos[0] + " is not one of " + strings.Join(c.ValidArgs, ", ")
	}
	v := viper.New()
	_ = v.BindPFlags(c.Flags())
	if err := checkOutput(c, v); err != nil {
		return c.CommandPath(), err.Error()
	}
	for _, a := range pos {
		if strings.HasPrefix(a, "runbooks/") {
			if _, err := os.Stat(filepath.Join("..", "..", a)); err != nil {
				return c.CommandPath(), err.Error()
			}
		}
	}
	return c.CommandPath(), ""
}

// exampleArgs returns the arguments of an example line that runs cutover
// (with or without sudo), up to a pipe, a redirection, && or a comment;
// nil for other lines.
func exampleArgs(line string) []string {
	words := shellWords(line)
	if len(words) > 0 && words[0] == "sudo" {
		words = words[1:]
	}
	if len(words) == 0 || words[0] != "cutover" {
		return nil
	}
	return words[1:]
}

// shellWords splits a line into words as a shell would for the simple
// lines of examples: quotes group, and an unquoted |, >, &, ; or # (or a
// word such as 2>file) ends the command.
func shellWords(line string) []string {
	var (
		words []string
		cur   strings.Builder
		inW   bool
		quote rune
	)
	rs := []rune(strings.TrimSpace(line))
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inW = r, true
		case r == ' ' || r == '\t':
			if inW {
				words = append(words, cur.String())
				cur.Reset()
				inW = false
			}
		case strings.ContainsRune("|>&;#", r) && !inW,
			r == '>' && inW && cur.String() == "2":
			return words
		default:
			cur.WriteRune(r)
			inW = true
		}
	}
	if inW {
		words = append(words, cur.String())
	}
	return words
}

func TestShellWords(t *testing.T) {
	for _, tt := range []struct {
		line string
		want []string
	}{
		{`  cutover lab vtysh edge -c "show bgp summary"`, []string{"cutover", "lab", "vtysh", "edge", "-c", "show bgp summary"}},
		{`cutover lab http 10.64.0.10              # from hosp`, []string{"cutover", "lab", "http", "10.64.0.10"}},
		{`cutover report -o html > report.html`, []string{"cutover", "report", "-o", "html"}},
		{`cutover lab up -o json 2>lab-up.log | jq .controller`, []string{"cutover", "lab", "up", "-o", "json"}},
		{`cutover step && cutover status --watch`, []string{"cutover", "step"}},
		{`cutover plan -o json rb.yaml | jq '.batches[]'`, []string{"cutover", "plan", "-o", "json", "rb.yaml"}},
	} {
		if got := shellWords(tt.line); !slices.Equal(got, tt.want) {
			t.Errorf("shellWords(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

// TestCheckExample: the checks of TestExamples catch what they should.
func TestCheckExample(t *testing.T) {
	for _, tt := range []struct {
		line, path, problem string
	}{
		{"cutover reconcile adopt", "cutover reconcile", ""},
		{"cutover lab fault vm-down --addrs 10.64.0.10 -o json", "cutover lab fault", ""},
		{"cutover lab up --bogus", "cutover lab up", "unknown flag: --bogus"},
		{"cutover status -o yaml", "cutover status", `-o "yaml": want text or json`},
		{"cutover confirm a b", "cutover confirm", "accepts at most 1 arg(s), received 2"},
		{"cutover lab fault meteor", "cutover lab fault", "meteor is not one of vm-down, target-down, slow-vm, http-5xx, bgp-reset, link-down, daemon-kill"},
		{"cutover plan runbooks/nope.yaml", "cutover plan", "stat ../../runbooks/nope.yaml: no such file or directory"},
		{"cutover lab stauts", "cutover lab", "unknown command stauts"},
		{"cutover rollback --batch x", "cutover rollback", `invalid argument "x" for "--batch" flag: strconv.ParseInt: parsing "x": invalid syntax`},
	} {
		path, problem := checkExample(exampleArgs(tt.line))
		if path != tt.path || problem != tt.problem {
			t.Errorf("%s: %q, %q; want %q, %q", tt.line, path, problem, tt.path, tt.problem)
		}
	}
}
